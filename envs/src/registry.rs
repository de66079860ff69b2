//! Environment ids: `name` or `name:key=value,...`, looked up in the table of families and
//! turned into batched environments.
use crate::error::closest;
use crate::gym::{self, GymConfig};
use crate::{bandits, maze, tmaze, EnvError, Environment, Family, Params, VecEnv};
use std::sync::{Arc, Mutex};

/// Every native environment family, by module: a new environment module adds its `FAMILIES`.
pub const FAMILIES: &[&[Family]] = &[maze::FAMILIES, tmaze::FAMILIES, bandits::FAMILIES];

/// Families added at run time by [`register`].
static REGISTERED: Mutex<Vec<&'static Family>> = Mutex::new(Vec::new());

/// Every family: the native ones in catalogue order, then those [`register`]ed.
pub fn families() -> Vec<&'static Family> {
    let registered = REGISTERED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    FAMILIES
        .iter()
        .flat_map(|group| group.iter())
        .chain(registered.iter().copied())
        .collect()
}

/// Adds a family defined outside this crate (a user's own environment, a test's), so that
/// [`parse`], [`make`] and the checker of [`crate::testing`] know it. A name already taken
/// is refused.
pub fn register(family: Family) -> Result<(), EnvError> {
    let mut registered = REGISTERED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let taken = FAMILIES.iter().flat_map(|group| group.iter());
    if taken
        .chain(registered.iter().copied())
        .any(|f| f.name == family.name)
    {
        return Err(EnvError::NameTaken { name: family.name });
    }
    registered.push(Box::leak(Box::new(family)));
    Ok(())
}

/// Parses `name`, `name:key=value,...` or `gym:<id>`; unknown names, keys and bad values are
/// errors.
pub fn parse(id: &str) -> Result<Box<dyn Environment>, EnvError> {
    if let Some(gym) = GymConfig::parse(id)? {
        return Ok(Box::new(gym));
    }
    let mut params = Params::parse(id)?;
    let families = families();
    let Some(family) = families.iter().find(|f| f.name == params.name()) else {
        let mut known: Vec<String> = families.iter().map(|f| f.name.to_string()).collect();
        known.push(format!("{}<Gymnasium id>", gym::ID_PREFIX));
        return Err(EnvError::UnknownEnv {
            id: id.to_string(),
            suggestion: closest(params.name(), families.iter().map(|f| f.name)).map(String::from),
            known: known.join(", "),
        });
    };
    let env = (family.parse)(&mut params)?;
    params.finish()?;
    Ok(env)
}

/// Builds `num_envs` copies of the environment named by `id`.
pub fn make(id: &str, num_envs: usize) -> Result<Box<dyn VecEnv>, EnvError> {
    parse(id)?.build(num_envs)
}

/// An environment id as a config holds it: the text as written, checked and parsed once
/// when read. Serialises as the text.
#[derive(Clone)]
pub struct EnvId {
    text: String,
    env: Arc<dyn Environment>,
}

impl EnvId {
    pub fn parse(text: &str) -> Result<Self, EnvError> {
        Ok(Self {
            text: text.to_string(),
            env: Arc::from(parse(text)?),
        })
    }

    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The environment it names.
    pub fn env(&self) -> &dyn Environment {
        self.env.as_ref()
    }
}

impl std::fmt::Debug for EnvId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EnvId").field(&self.text).finish()
    }
}

impl std::fmt::Display for EnvId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for EnvId {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl serde::Serialize for EnvId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for EnvId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_known_ones() {
        let msg = make("mase", 1).err().unwrap().to_string();
        assert!(
            msg.contains("`mase`") && msg.contains("maze") && msg.contains("bandit-"),
            "{msg}"
        );
    }

    #[test]
    fn a_misspelt_name_gets_the_closest_known_one() {
        for (given, meant) in [
            ("maez", "maze"),
            ("maez:size=9", "maze"),
            ("tmase", "tmaze"),
            ("bandit-dependent-esay", "bandit-dependent-easy"),
            ("bandit-restles:len=10", "bandit-restless"),
        ] {
            let msg = make(given, 1).err().unwrap().to_string();
            assert!(
                msg.contains(&format!("(did you mean `{meant}`?)")),
                "{given}: {msg}"
            );
        }
        // Nothing close: no guess.
        for given in ["cartpole", "zz"] {
            let msg = make(given, 1).err().unwrap().to_string();
            assert!(!msg.contains("did you mean"), "{given}: {msg}");
        }
    }

    #[test]
    fn parameters_reach_the_environment() {
        let env = make("maze:size=9,len=100", 3).unwrap();
        assert_eq!(env.num_envs(), 3);
        assert_eq!(env.spec().episode_len, Some(100));
        assert!(env.spec().id.starts_with("maze:size=9,len=100"));
        assert!(make("maze:size=8", 1).is_err());
        assert!(make("maze:colour=red", 1).is_err());
        assert!(make("maze", 0).is_err());
    }
}
