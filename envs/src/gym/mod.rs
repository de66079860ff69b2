//! Gymnasium environments behind the id `gym:<Gymnasium id>[?key=value&...]`, e.g.
//! `gym:CartPole-v1` or `gym:FrozenLake-v1?is_slippery=false`, stepped through an embedded
//! CPython (cargo feature `gym`). Ids may name a module to import first, as Gymnasium's own do:
//! `gym:my_package.envs:MyEnv-v0`.
use crate::params::key_values;
use crate::{EnvError, Environment, VecEnv};

#[cfg(feature = "gym")]
mod env;
#[cfg(feature = "gym")]
mod python;

#[cfg(feature = "gym")]
pub use env::GymEnv;
#[cfg(feature = "gym")]
pub use python::{bridge, mark_hosted, take_raised, use_python_path};

/// Without the bridge no Python module is imported, so there is no path to extend.
#[cfg(not(feature = "gym"))]
pub fn use_python_path(_dirs: &[std::path::PathBuf]) -> Result<(), EnvError> {
    Ok(())
}

pub const ID_PREFIX: &str = "gym:";

/// A parsed `gym:` id.
#[derive(Debug, Clone, PartialEq)]
pub struct GymConfig {
    /// Gymnasium's id, as `gymnasium.make` takes it.
    pub env_id: String,
    /// Keyword arguments for `gymnasium.make`, values as written; the bridge reads `true`,
    /// `false`, `none` and Python literals, and anything else as a string.
    pub kwargs: Vec<(String, String)>,
}

impl GymConfig {
    /// Parses an id that starts with `gym:`; other ids give `None`.
    pub fn parse(id: &str) -> Result<Option<Self>, EnvError> {
        let Some(rest) = id.trim().strip_prefix(ID_PREFIX) else {
            return Ok(None);
        };
        let bad = |reason: String| EnvError::BadId {
            id: id.to_string(),
            reason,
        };
        let (env_id, query) = match rest.split_once('?') {
            Some((env_id, query)) => (env_id.trim(), query),
            None => (rest.trim(), ""),
        };
        if env_id.is_empty() {
            return Err(bad("the Gymnasium id after `gym:` is empty".into()));
        }
        let kwargs = key_values(id, query, '&')?;
        if let Some((key, _)) = kwargs.iter().find(|(k, _)| {
            k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }) {
            return Err(bad(format!("`{key}` is not a keyword argument name")));
        }
        Ok(Some(Self {
            env_id: env_id.to_string(),
            kwargs,
        }))
    }
}

impl Environment for GymConfig {
    /// The id written back: `gym:<id>?key=value&...`.
    fn id(&self) -> String {
        let mut id = format!("{ID_PREFIX}{}", self.env_id);
        for (i, (k, v)) in self.kwargs.iter().enumerate() {
            id += if i == 0 { "?" } else { "&" };
            id += &format!("{k}={v}");
        }
        id
    }

    #[cfg(feature = "gym")]
    fn build(&self, num_envs: usize) -> Result<Box<dyn VecEnv>, EnvError> {
        Ok(Box::new(GymEnv::new(self, num_envs, false)?))
    }

    #[cfg(not(feature = "gym"))]
    fn build(&self, _num_envs: usize) -> Result<Box<dyn VecEnv>, EnvError> {
        Err(EnvError::GymNotBuilt { id: self.id() })
    }

    /// Gymnasium's convention for evaluations: 100 episodes.
    fn default_eval_episodes(&self) -> usize {
        100
    }

    #[cfg(feature = "gym")]
    fn build_drawn(&self) -> Option<Result<Box<dyn crate::DrawnEnv>, EnvError>> {
        Some(GymEnv::new(self, 1, true).map(|env| Box::new(env) as Box<dyn crate::DrawnEnv>))
    }

    #[cfg(not(feature = "gym"))]
    fn build_drawn(&self) -> Option<Result<Box<dyn crate::DrawnEnv>, EnvError>> {
        Some(Err(EnvError::GymNotBuilt { id: self.id() }))
    }

    #[cfg(feature = "gym")]
    fn python_path(&self) -> Result<Vec<std::path::PathBuf>, EnvError> {
        env::source_dirs(self)
    }

    #[cfg(feature = "gym")]
    fn python_loop_seconds(&self, num_envs: usize, calls: u64) -> Option<Result<f64, EnvError>> {
        Some(env::python_loop_seconds(self, num_envs, calls, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_keyword_arguments() {
        assert_eq!(GymConfig::parse("maze:size=9").unwrap(), None);
        let c = GymConfig::parse("gym:FrozenLake-v1?is_slippery=false&map_name=8x8")
            .unwrap()
            .unwrap();
        assert_eq!(c.env_id, "FrozenLake-v1");
        assert_eq!(
            c.kwargs,
            [("is_slippery", "false"), ("map_name", "8x8")].map(|(k, v)| (k.into(), v.into()))
        );
        assert_eq!(c.id(), "gym:FrozenLake-v1?is_slippery=false&map_name=8x8");
        let module = GymConfig::parse("gym:my_pkg.envs:Thing-v0")
            .unwrap()
            .unwrap();
        assert_eq!(module.env_id, "my_pkg.envs:Thing-v0");
        assert!(module.kwargs.is_empty());
    }

    #[test]
    fn malformed_ids_are_errors() {
        for id in [
            "gym:",
            "gym:?a=1",
            "gym:X-v0?a",
            "gym:X-v0?a=1&a=2",
            "gym:X-v0?a b=1",
        ] {
            assert!(
                matches!(GymConfig::parse(id), Err(EnvError::BadId { .. })),
                "{id}"
            );
        }
    }
}
