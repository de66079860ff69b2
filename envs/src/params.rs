use crate::EnvError;
use std::str::FromStr;

/// The `key=value` parameters of an environment id such as `maze:size=9,len=100`.
///
/// Each environment takes the keys it knows with typed getters and then calls
/// [`finish`](Params::finish), which rejects whatever is left: a misspelt key is an error, not a
/// silently ignored setting.
#[derive(Debug, Clone)]
pub struct Params {
    env: String,
    entries: Vec<(String, String)>,
    known: Vec<&'static str>,
}

/// Splits `key=value<sep>key=value...` of environment id `id` into trimmed pairs; empty pieces
/// are skipped, a piece without `=` or a key given twice is an error.
pub(crate) fn key_values(
    id: &str,
    text: &str,
    sep: char,
) -> Result<Vec<(String, String)>, EnvError> {
    let bad = |reason: String| EnvError::BadId {
        id: id.to_string(),
        reason,
    };
    let mut entries: Vec<(String, String)> = Vec::new();
    for pair in text.split(sep).filter(|p| !p.trim().is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("`{pair}` is not key=value")))?;
        let key = key.trim().to_string();
        if entries.iter().any(|(k, _)| *k == key) {
            return Err(bad(format!("`{key}` is given twice")));
        }
        entries.push((key, value.trim().to_string()));
    }
    Ok(entries)
}

impl Params {
    /// Splits `name:key=value,...` into the name and its parameters.
    pub fn parse(id: &str) -> Result<Self, EnvError> {
        let bad = |reason: &str| EnvError::BadId {
            id: id.to_string(),
            reason: reason.to_string(),
        };
        let (env, rest) = match id.split_once(':') {
            Some((env, rest)) => (env.trim(), Some(rest)),
            None => (id.trim(), None),
        };
        if env.is_empty() {
            return Err(bad("the name is empty"));
        }
        let entries = key_values(id, rest.unwrap_or(""), ',')?;
        Ok(Self {
            env: env.to_string(),
            entries,
            known: Vec::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.env
    }

    /// Takes `key` if given, parsed as `T`; `None` when absent.
    pub fn take<T: FromStr>(&mut self, key: &'static str) -> Result<Option<T>, EnvError> {
        self.known.push(key);
        let Some(pos) = self.entries.iter().position(|(k, _)| k == key) else {
            return Ok(None);
        };
        let (_, value) = self.entries.remove(pos);
        value.parse().map(Some).map_err(|_| {
            self.invalid(
                key,
                &value,
                &format!("expected {}", std::any::type_name::<T>()),
            )
        })
    }

    /// Takes `key`, or `default` when absent.
    pub fn get<T: FromStr>(&mut self, key: &'static str, default: T) -> Result<T, EnvError> {
        Ok(self.take(key)?.unwrap_or(default))
    }

    /// An error about parameter `key` of this environment.
    pub fn invalid(&self, key: &str, value: &dyn std::fmt::Display, reason: &str) -> EnvError {
        EnvError::BadParam {
            env: self.env.clone(),
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Fails on the first parameter no getter asked for.
    pub fn finish(self) -> Result<(), EnvError> {
        match self.entries.into_iter().next() {
            None => Ok(()),
            Some((key, _)) => Err(EnvError::UnknownParam {
                env: self.env,
                key,
                known: if self.known.is_empty() {
                    "(none)".into()
                } else {
                    self.known.join(", ")
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_and_typed_values() {
        let mut p = Params::parse("maze:size=9, len=100").unwrap();
        assert_eq!(p.name(), "maze");
        assert_eq!(p.get("size", 13usize).unwrap(), 9);
        assert_eq!(p.get("len", 200usize).unwrap(), 100);
        assert_eq!(p.get("reward", 10.0f32).unwrap(), 10.0);
        p.finish().unwrap();
    }

    #[test]
    fn unknown_key_names_the_known_ones() {
        let mut p = Params::parse("maze:sise=9").unwrap();
        p.get("size", 13usize).unwrap();
        let msg = p.finish().unwrap_err().to_string();
        assert!(msg.contains("`sise`") && msg.contains("size"), "{msg}");
    }

    #[test]
    fn wrong_type_and_malformed_ids_are_errors() {
        let mut p = Params::parse("maze:size=big").unwrap();
        let msg = p.get("size", 13usize).unwrap_err().to_string();
        assert!(msg.contains("size") && msg.contains("big"), "{msg}");
        assert!(Params::parse("maze:size").is_err());
        assert!(Params::parse(":size=3").is_err());
        assert!(Params::parse("maze:size=3,size=5").is_err());
    }
}
