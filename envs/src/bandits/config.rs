use super::ID_PREFIX;
use crate::{EnvError, Params};

/// How a task family draws (and, for `restless`, moves) its arms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Task {
    /// `arms` Bernoulli arms, each `p_a ~ U[0, 1]` independently.
    Independent { arms: usize },
    /// Two Bernoulli arms with `p2 = 1 − p1`, `p1` drawn from `prior`.
    Dependent(DependentPrior),
    /// Two Bernoulli arms with `p2 = 1 − p1`; `p1 ~ U[0, 1]` at the start, and after every step
    /// `p1 ← reflect(p1 + volatility · N(0, 1))`, reflected at 0 and 1 until it lies in [0, 1].
    /// The reflected walk keeps U[0, 1] as its stationary law, so every step of an episode
    /// looks like a fresh `dependent-uniform` draw to an agent that has seen nothing.
    Restless { volatility: f64 },
    /// 11 arms with deterministic payoffs: a target among the first ten pays 5, the other nine
    /// pay 1, and the eleventh pays `0.1 × (target + 1)` (target counted from 0).
    Informative,
}

/// The prior of `p1` in the dependent families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependentPrior {
    /// `p1 ~ U[0, 1]`.
    Uniform,
    /// `p1 ∈ {0.1, 0.9}`.
    Easy,
    /// `p1 ∈ {0.25, 0.75}`.
    Medium,
    /// `p1 ∈ {0.4, 0.6}`.
    Hard,
}

impl DependentPrior {
    /// The lower of the two values `p1` can take, for the two-point priors.
    pub fn low(self) -> Option<f64> {
        match self {
            Self::Uniform => None,
            Self::Easy => Some(0.1),
            Self::Medium => Some(0.25),
            Self::Hard => Some(0.4),
        }
    }
}

/// A bandit task: its family and horizon. Built from an id, so always valid.
#[derive(Debug, Clone, PartialEq)]
pub struct BanditConfig {
    task: Task,
    len: usize,
}

impl BanditConfig {
    /// Reads the parameters of family `family` (the id's name without [`ID_PREFIX`]); `Ok(None)`
    /// when no family has that name. Leaves [`Params::finish`] to the caller.
    pub fn from_params(family: &str, params: &mut Params) -> Result<Option<Self>, EnvError> {
        let (task, default_len) = match family {
            "independent" => {
                let arms = params.get("arms", 2usize)?;
                if arms < 2 {
                    return Err(params.invalid("arms", &arms, "a bandit needs at least 2 arms"));
                }
                (Task::Independent { arms }, 100)
            }
            "dependent-uniform" => (Task::Dependent(DependentPrior::Uniform), 100),
            "dependent-easy" => (Task::Dependent(DependentPrior::Easy), 100),
            "dependent-medium" => (Task::Dependent(DependentPrior::Medium), 100),
            "dependent-hard" => (Task::Dependent(DependentPrior::Hard), 100),
            "restless" => {
                let volatility = params.get("volatility", 0.05f64)?;
                if !(0.0..=1.0).contains(&volatility) {
                    return Err(params.invalid("volatility", &volatility, "must be in [0, 1]"));
                }
                (Task::Restless { volatility }, 100)
            }
            "informative-11" => (Task::Informative, 5),
            _ => return Ok(None),
        };
        let len = params.get("len", default_len)?;
        if len == 0 {
            return Err(params.invalid("len", &len, "an episode needs at least 1 step"));
        }
        if u32::try_from(len).is_err() {
            return Err(params.invalid("len", &len, "must fit in 32 bits"));
        }
        Ok(Some(Self { task, len }))
    }

    /// Parses a whole id such as `bandit-independent:arms=3`; `Ok(None)` when it names no bandit.
    pub fn from_id(id: &str) -> Result<Option<Self>, EnvError> {
        let mut params = Params::parse(id)?;
        let Some(family) = params.name().strip_prefix(ID_PREFIX).map(str::to_string) else {
            return Ok(None);
        };
        let config = Self::from_params(&family, &mut params)?;
        if config.is_some() {
            params.finish()?;
        }
        Ok(config)
    }

    pub fn task(&self) -> Task {
        self.task
    }

    /// The family name, as in [`super::FAMILIES`].
    pub fn family(&self) -> &'static str {
        match self.task {
            Task::Independent { .. } => "independent",
            Task::Dependent(DependentPrior::Uniform) => "dependent-uniform",
            Task::Dependent(DependentPrior::Easy) => "dependent-easy",
            Task::Dependent(DependentPrior::Medium) => "dependent-medium",
            Task::Dependent(DependentPrior::Hard) => "dependent-hard",
            Task::Restless { .. } => "restless",
            Task::Informative => "informative-11",
        }
    }

    /// Canonical id with every parameter spelt out: `bandit-independent:arms=2,len=100`.
    pub fn id(&self) -> String {
        let family = self.family();
        match self.task {
            Task::Independent { arms } => {
                format!("{ID_PREFIX}{family}:arms={arms},len={}", self.len)
            }
            Task::Restless { volatility } => {
                format!(
                    "{ID_PREFIX}{family}:len={},volatility={volatility}",
                    self.len
                )
            }
            Task::Dependent(_) | Task::Informative => {
                format!("{ID_PREFIX}{family}:len={}", self.len)
            }
        }
    }

    pub fn num_arms(&self) -> usize {
        match self.task {
            Task::Independent { arms } => arms,
            Task::Dependent(_) | Task::Restless { .. } => 2,
            Task::Informative => 11,
        }
    }

    /// Episode length `T`.
    pub fn horizon(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(id: &str) -> Result<Option<BanditConfig>, EnvError> {
        BanditConfig::from_id(id)
    }

    #[test]
    fn every_family_parses_and_its_id_round_trips() {
        for family in super::super::FAMILIES {
            let config = parse(&format!("{ID_PREFIX}{}", family.name))
                .unwrap()
                .unwrap();
            assert_eq!(config.family(), family.name);
            assert_eq!(parse(&config.id()).unwrap().unwrap(), config);
            for pair in family.params.split(", ") {
                assert!(config.id().contains(pair), "{} lacks {pair}", config.id());
            }
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let c = parse("bandit-independent").unwrap().unwrap();
        assert_eq!((c.num_arms(), c.horizon()), (2, 100));
        let c = parse("bandit-independent:arms=5,len=7").unwrap().unwrap();
        assert_eq!(
            (c.num_arms(), c.horizon(), c.id().as_str()),
            (5, 7, "bandit-independent:arms=5,len=7")
        );
        let c = parse("bandit-informative-11").unwrap().unwrap();
        assert_eq!((c.num_arms(), c.horizon()), (11, 5));
        let c = parse("bandit-restless:volatility=0.2").unwrap().unwrap();
        assert_eq!(c.task(), Task::Restless { volatility: 0.2 });
    }

    #[test]
    fn bad_values_name_the_parameter() {
        for (id, key) in [
            ("bandit-independent:arms=1", "arms"),
            ("bandit-dependent-easy:len=0", "len"),
            ("bandit-restless:volatility=1.5", "volatility"),
            ("bandit-restless:volatility=-0.1", "volatility"),
            ("bandit-restless:volatility=NaN", "volatility"),
        ] {
            let msg = parse(id).unwrap_err().to_string();
            assert!(msg.contains(&format!("`{key}`")), "{id}: {msg}");
        }
        let msg = parse("bandit-dependent-easy:arms=3")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`arms`") && msg.contains("len"), "{msg}");
    }

    #[test]
    fn unknown_families_are_not_bandits() {
        assert_eq!(parse("bandit-nope").unwrap(), None);
        assert_eq!(parse("maze").unwrap(), None);
    }
}
