//! Environment ids: `name` or `name:key=value,...`, turned into batched environments.
use crate::bandits::{self, Bandit, BanditConfig};
use crate::gym::{self, GymConfig};
use crate::maze::{Maze, MazeConfig};
use crate::{EnvError, Params, VecEnv};

/// One entry of the environment catalogue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnvEntry {
    pub name: String,
    pub summary: &'static str,
    /// `key=default` for every parameter.
    pub params: &'static str,
}

/// Every native environment, with its parameters and defaults.
pub fn catalogue() -> Vec<EnvEntry> {
    let mut entries = vec![EnvEntry {
        name: "maze".into(),
        summary: "grid maze with a hidden reward cell (Miconi et al. 2018/2019)",
        params: MazeConfig::PARAMS,
    }];
    entries.extend(bandits::FAMILIES.iter().map(|f| EnvEntry {
        name: format!("{}{}", bandits::ID_PREFIX, f.name),
        summary: f.summary,
        params: f.params,
    }));
    entries
}

/// A parsed environment id: which environment, with every parameter resolved.
#[derive(Debug, Clone)]
pub enum EnvConfig {
    Maze(MazeConfig),
    Bandit(BanditConfig),
    Gym(GymConfig),
}

impl EnvConfig {
    /// Parses `name` or `name:key=value,...`; unknown names, keys and bad values are errors.
    pub fn parse(id: &str) -> Result<Self, EnvError> {
        if let Some(gym) = GymConfig::parse(id)? {
            return Ok(Self::Gym(gym));
        }
        let mut params = Params::parse(id)?;
        let name = params.name().to_string();
        let config = if name == "maze" {
            Some(Self::Maze(MazeConfig::from_params(&mut params)?))
        } else if let Some(family) = name.strip_prefix(bandits::ID_PREFIX) {
            BanditConfig::from_params(family, &mut params)?.map(Self::Bandit)
        } else {
            None
        };
        let Some(config) = config else {
            let mut known: Vec<String> = catalogue().into_iter().map(|e| e.name).collect();
            known.push(format!("{}<Gymnasium id>", gym::ID_PREFIX));
            return Err(EnvError::UnknownEnv {
                id: id.to_string(),
                known: known.join(", "),
            });
        };
        params.finish()?;
        Ok(config)
    }

    /// Builds `num_envs` copies of the environment.
    pub fn build(&self, num_envs: usize) -> Result<Box<dyn VecEnv>, EnvError> {
        if num_envs == 0 {
            return Err(EnvError::NoEnvs);
        }
        Ok(match self {
            Self::Maze(c) => Box::new(Maze::new(c.clone(), num_envs)),
            Self::Bandit(c) => Box::new(Bandit::new(c.clone(), num_envs)),
            Self::Gym(c) => build_gym(c, num_envs)?,
        })
    }
}

#[cfg(feature = "gym")]
fn build_gym(config: &GymConfig, num_envs: usize) -> Result<Box<dyn VecEnv>, EnvError> {
    Ok(Box::new(gym::GymEnv::new(config, num_envs, false)?))
}

#[cfg(not(feature = "gym"))]
fn build_gym(config: &GymConfig, _num_envs: usize) -> Result<Box<dyn VecEnv>, EnvError> {
    Err(EnvError::GymNotBuilt { id: config.id() })
}

/// Builds `num_envs` copies of the environment named by `id`.
pub fn make(id: &str, num_envs: usize) -> Result<Box<dyn VecEnv>, EnvError> {
    EnvConfig::parse(id)?.build(num_envs)
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
