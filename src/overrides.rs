//! `key=value` overrides applied to any serde config, so a mistyped key or a wrong type fails
//! with the key's name instead of being ignored.
use anyhow::{bail, Context};
use serde::{de::DeserializeOwned, Serialize};

/// Returns `config` with each `key=value` (dotted keys reach into tables) applied.
/// Values are read as TOML (`64`, `0.5`, `true`, `"lstm"`); a bare word is taken as a string.
/// `T` denies unknown fields, as every config section does: that is how a key the serialised
/// config lacks is told apart from one it leaves out at its default.
pub fn apply<T: Serialize + DeserializeOwned>(
    config: &T,
    overrides: &[String],
) -> anyhow::Result<T> {
    let mut doc = toml::Value::try_from(config).context("serialising the configuration")?;
    for item in overrides {
        let Some((key, raw)) = item.split_once('=') else {
            bail!("override `{item}` is not key=value (e.g. hidden=64)");
        };
        let (key, raw) = (key.trim(), raw.trim());
        let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
        if !digits.is_empty()
            && digits.bytes().all(|c| c.is_ascii_digit())
            && raw.parse::<i64>().is_err()
        {
            bail!(
                "invalid value in `{item}`: {raw} is beyond the integers a config holds \
                 ({} to {})",
                i64::MIN,
                i64::MAX
            );
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        // `run.total_steps=1e6`: as in config files, a float that is an integer is one.
        let value = match value {
            toml::Value::Float(f) => {
                crate::config::integral_float(f).map_or(value, toml::Value::Integer)
            }
            other => other,
        };
        let Added { keys, section } = set(&mut doc, key, value)?;
        // Checked per override so the error names the override at fault.
        T::deserialize(doc.clone()).map_err(|e| {
            let unknown = e.message().contains("unknown field");
            if let Some(unknown_section) = section.filter(|_| unknown) {
                return anyhow::anyhow!(unknown_section);
            }
            if let Some(known) = keys.filter(|_| unknown) {
                return anyhow::anyhow!("unknown key `{key}`; here: {known}");
            }
            // Unquoted values are read as TOML first, so `name=1` arrives as a number.
            let hint = match e.message().contains("expected a string") {
                true => format!(" (quote it: --set '{key}=\"{raw}\"')"),
                false => String::new(),
            };
            anyhow::anyhow!("invalid value in `{item}`: {}{hint}", e.message())
        })?;
    }
    Ok(T::deserialize(doc)?)
}

/// What [`set`] added that the config may refuse, for the caller's error message.
#[derive(Default)]
struct Added {
    /// The keys of the table a new key went into.
    keys: Option<String>,
    /// The message for the first section it created, should the config not know it.
    section: Option<String>,
}

/// Replaces the entry at dotted `key` in an existing table. A key the table lacks is added,
/// since a config leaves some keys out at their defaults (`core.stp`, `log.spectra_every`),
/// and so is a section (`[encoder]` is left out at its defaults too); what was added is
/// returned for the caller's error should the config not take it (every section refuses keys
/// it does not know when read back).
fn set(doc: &mut toml::Value, key: &str, value: toml::Value) -> anyhow::Result<Added> {
    let (path, last) = match key.rsplit_once('.') {
        Some((path, last)) => (Some(path), last),
        None => (None, key),
    };
    let mut added = Added::default();
    let mut table = doc.as_table_mut().expect("configs are tables");
    for part in path.into_iter().flat_map(|p| p.split('.')) {
        let known = listing(table);
        if !table.contains_key(part) {
            table.insert(part.to_string(), toml::Value::Table(toml::Table::new()));
            added.section.get_or_insert_with(|| {
                format!("unknown section `{part}` in `{key}`; here: {known}")
            });
        }
        table = table
            .get_mut(part)
            .and_then(toml::Value::as_table_mut)
            .with_context(|| format!("unknown section `{part}` in `{key}`; here: {known}"))?;
    }
    let known = listing(table);
    match table.get_mut(last) {
        Some(toml::Value::Table(_)) => {
            bail!("`{key}` is a section: set one of its keys, e.g. `{key}.<key>=<value>`")
        }
        Some(slot) => *slot = value,
        None => {
            table.insert(last.to_string(), value);
            added.keys = Some(known);
        }
    }
    Ok(added)
}

/// The keys of a table, for error messages.
fn listing(table: &toml::Table) -> String {
    let keys: Vec<&str> = table.keys().map(String::as_str).collect();
    keys.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use plastic_agents::CoreConfig;

    fn set(items: &[&str]) -> anyhow::Result<CoreConfig> {
        apply(
            &CoreConfig::default(),
            &items.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn typed_values_and_bare_words_apply() {
        let c = set(&["hidden=64", "kind=lstm", "modulation=\"none\"", "clip=2.5"]).unwrap();
        assert_eq!((c.hidden, c.clip), (64, 2.5));
        assert_eq!(c.kind.name(), "lstm");
    }

    /// `stp` is left out of a serialised core config at its default, and is still a key.
    #[test]
    fn keys_left_out_at_their_defaults_can_be_set() {
        let c = set(&["kind=stpn", "modulation=none", "stp=scalar"]).unwrap();
        assert_eq!(c.stp, plastic_agents::cores::StpShape::Scalar);
        let msg = set(&["stpp=scalar"]).unwrap_err().to_string();
        assert!(
            msg.contains("unknown key `stpp`") && msg.contains("hidden"),
            "{msg}"
        );
    }

    #[test]
    fn mistakes_name_the_key() {
        let msg = set(&["hiden=64"]).unwrap_err().to_string();
        assert!(msg.contains("`hiden`") && msg.contains("hidden"), "{msg}");
        let msg = format!("{:#}", set(&["hidden=lots"]).unwrap_err());
        assert!(msg.contains("hidden"), "{msg}");
        assert!(set(&["hidden"]).is_err());
        assert!(set(&["kind=transformer"]).is_err());
        let msg = set(&["hidden=18446744073709551615"])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("beyond the integers") && msg.contains("hidden="),
            "{msg}"
        );
    }
}
