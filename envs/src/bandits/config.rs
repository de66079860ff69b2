use crate::family::at_least_one;
use crate::{registry, EnvError, Environment, Params, Policy, PolicyError, VecEnv};

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
    /// A task that changes at two timescales: two Bernoulli arms with `p2 = 1 − p1`, `p1`
    /// walking slowly as in `Restless`, and every `every` pulls the arms swap suddenly
    /// (`p1 ← 1 − p1`). Both moves keep U[0, 1] as the law of `p1`.
    Switching { volatility: f64, every: usize },
    /// 11 arms with deterministic payoffs: a target among the first ten pays 5, the other nine
    /// pay 1, and the eleventh pays `0.1 × (target + 1)` (target counted from 0).
    Informative,
}

impl Task {
    /// How `p1` moves between steps: the walk's volatility and, for `Switching`, the pulls
    /// between swaps; `None` for the tasks whose arms stay put.
    pub(super) fn drift(self) -> Option<(f64, Option<usize>)> {
        match self {
            Self::Restless { volatility } => Some((volatility, None)),
            Self::Switching { volatility, every } => Some((volatility, Some(every))),
            Self::Independent { .. } | Self::Dependent(_) | Self::Informative => None,
        }
    }
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
    /// `independent`: reads `arms` and `len`. Each constructor leaves [`Params::finish`] to
    /// the caller.
    pub(super) fn independent(params: &mut Params) -> Result<Self, EnvError> {
        let arms = params.get("arms", 2usize)?;
        if arms < 2 {
            return Err(params.invalid("arms", &arms, "a bandit needs at least 2 arms"));
        }
        Self::with_len(Task::Independent { arms }, 100, params)
    }

    /// `dependent-*`: reads `len`.
    pub(super) fn dependent(prior: DependentPrior, params: &mut Params) -> Result<Self, EnvError> {
        Self::with_len(Task::Dependent(prior), 100, params)
    }

    /// `restless`: reads `volatility` and `len`.
    pub(super) fn restless(params: &mut Params) -> Result<Self, EnvError> {
        let volatility = params.get("volatility", 0.05f64)?;
        if !(0.0..=1.0).contains(&volatility) {
            return Err(params.invalid("volatility", &volatility, "must be in [0, 1]"));
        }
        Self::with_len(Task::Restless { volatility }, 100, params)
    }

    /// `switching`: reads `every`, `len` and `volatility`.
    pub(super) fn switching(params: &mut Params) -> Result<Self, EnvError> {
        let every = params.get("every", 20usize)?;
        if every == 0 {
            return Err(params.invalid("every", &every, "the arms swap every 1 or more pulls"));
        }
        let volatility = params.get("volatility", 0.02f64)?;
        if !(0.0..=1.0).contains(&volatility) {
            return Err(params.invalid("volatility", &volatility, "must be in [0, 1]"));
        }
        Self::with_len(Task::Switching { volatility, every }, 100, params)
    }

    /// `informative-11`: reads `len`.
    pub(super) fn informative(params: &mut Params) -> Result<Self, EnvError> {
        Self::with_len(Task::Informative, 5, params)
    }

    /// `task` with the horizon `len` (default `default_len`).
    fn with_len(task: Task, default_len: usize, params: &mut Params) -> Result<Self, EnvError> {
        let len = params.get("len", default_len)?;
        if len == 0 {
            return Err(params.invalid("len", &len, "an episode needs at least 1 step"));
        }
        if u32::try_from(len).is_err() {
            return Err(params.invalid("len", &len, "must fit in 32 bits"));
        }
        Ok(Self { task, len })
    }

    /// The bandit a whole id such as `bandit-independent:arms=3` names; `Ok(None)` when it
    /// names another environment.
    pub fn from_id(id: &str) -> Result<Option<Self>, EnvError> {
        Ok(registry::parse(id)?.downcast_ref::<Self>().cloned())
    }

    pub fn task(&self) -> Task {
        self.task
    }

    /// The family name, as in [`super::FAMILIES`].
    pub fn family(&self) -> &'static str {
        match self.task {
            Task::Independent { .. } => "bandit-independent",
            Task::Dependent(DependentPrior::Uniform) => "bandit-dependent-uniform",
            Task::Dependent(DependentPrior::Easy) => "bandit-dependent-easy",
            Task::Dependent(DependentPrior::Medium) => "bandit-dependent-medium",
            Task::Dependent(DependentPrior::Hard) => "bandit-dependent-hard",
            Task::Restless { .. } => "bandit-restless",
            Task::Switching { .. } => "bandit-switching",
            Task::Informative => "bandit-informative-11",
        }
    }

    pub fn num_arms(&self) -> usize {
        match self.task {
            Task::Independent { arms } => arms,
            Task::Dependent(_) | Task::Restless { .. } | Task::Switching { .. } => 2,
            Task::Informative => 11,
        }
    }

    /// Episode length `T`.
    pub fn horizon(&self) -> usize {
        self.len
    }
}

impl Environment for BanditConfig {
    /// Canonical id with every parameter spelt out: `bandit-independent:arms=2,len=100`.
    fn id(&self) -> String {
        let family = self.family();
        match self.task {
            Task::Independent { arms } => format!("{family}:arms={arms},len={}", self.len),
            Task::Restless { volatility } => {
                format!("{family}:len={},volatility={volatility}", self.len)
            }
            Task::Switching { volatility, every } => {
                format!(
                    "{family}:every={every},len={},volatility={volatility}",
                    self.len
                )
            }
            Task::Dependent(_) | Task::Informative => format!("{family}:len={}", self.len),
        }
    }

    fn build(&self, num_envs: usize) -> Result<Box<dyn VecEnv>, EnvError> {
        Ok(Box::new(super::Bandit::new(
            self.clone(),
            at_least_one(num_envs)?,
        )))
    }

    fn build_bandit(&self, num_envs: usize) -> Option<Result<Box<dyn crate::BanditEnv>, EnvError>> {
        Some(at_least_one(num_envs).map(|n| Box::new(super::Bandit::new(self.clone(), n)) as _))
    }

    fn policy_names(&self) -> &'static [&'static str] {
        super::policies::POLICY_NAMES
    }

    fn reference_policies(&self) -> &'static [&'static str] {
        match self.task {
            // Whole-episode counts go stale at every swap.
            Task::Switching { .. } => &["win-stay"],
            _ => &["thompson", "ucb1", "bayes"],
        }
    }

    /// Switching arms: the returns of pulling the better arm at every step, knowing `p1`.
    fn oracle_returns(&self, episodes: usize, seed: u64) -> Option<Vec<f64>> {
        matches!(self.task, Task::Switching { .. })
            .then(|| super::oracle_returns(self, episodes, seed))
    }

    fn policy(
        &self,
        name: &str,
        num_envs: usize,
        seed: u64,
    ) -> Result<Box<dyn Policy>, PolicyError> {
        super::policies::make_policy(name, self, num_envs, seed)
    }

    fn bayes_optimal_regret(&self) -> Option<f64> {
        super::bayes_optimal_regret(self)
    }

    /// The previous action (one-hot), the reward it paid (at most 5 with the informative arms,
    /// 1 with Bernoulli arms) and the time in [0, 1].
    fn obs_bounds(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        let k = self.num_arms();
        let most = match self.task {
            Task::Informative => 5.0,
            _ => 1.0,
        };
        let mut high = vec![1.0; k + 2];
        high[k] = most;
        Some((vec![0.0; k + 2], high))
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
            let config = parse(family.name).unwrap().unwrap();
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
        let c = parse("bandit-switching:every=5").unwrap().unwrap();
        assert_eq!(
            c.task(),
            Task::Switching {
                volatility: 0.02,
                every: 5
            }
        );
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
            ("bandit-switching:every=0", "every"),
            ("bandit-switching:volatility=2", "volatility"),
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
        assert!(parse("bandit-nope").is_err());
        assert_eq!(parse("maze").unwrap(), None);
    }
}
