//! Running a policy for a number of whole episodes and summarising what happened.
use crate::{Actions, EnvError, Environment, Policy, PolicyError, RandomPolicy, VecEnv};

/// Rows stepped together when judging a policy (`plastic eval`, the Python module's
/// `evaluate`): `episodes` of them, at most this many. Results depend on the batch only through
/// which episodes end first, so every front end uses [`eval_batch`].
pub const EVAL_BATCH: usize = 256;

/// The batch an evaluation of `episodes` episodes steps together.
pub fn eval_batch(episodes: usize) -> usize {
    episodes.clamp(1, EVAL_BATCH)
}

/// Mean and standard error of a sample. Reports (JSON and tables) give it as the mean with a
/// 95% confidence interval ([`Interval`]), the one statistic every command of plastic shows.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(into = "Interval")]
pub struct Estimate {
    pub mean: f64,
    /// `None` for a single value, whose spread is unknown.
    pub std_err: Option<f64>,
}

impl Estimate {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = (values.len() > 1)
            .then(|| values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0));
        Self {
            mean,
            std_err: var.map(|var| (var / n).sqrt()),
        }
    }

    /// The share of `returns` above zero, with its standard error.
    pub fn success(returns: &[f64]) -> Self {
        let hits: Vec<f64> = returns
            .iter()
            .map(|&r| f64::from(u8::from(r > 0.0)))
            .collect();
        Self::of(&hits)
    }

    /// Half-width of the 95% confidence interval of the mean (normal approximation: the
    /// evaluations run hundreds of episodes); `None` for a single value.
    pub fn ci95(&self) -> Option<f64> {
        self.std_err.map(|s| 1.96 * s)
    }
}

/// A mean with the half-width of its 95% confidence interval, as reports give an [`Estimate`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub mean: f64,
    /// `None` for a single episode, whose spread is unknown.
    pub ci95: Option<f64>,
}

impl From<Estimate> for Interval {
    fn from(e: Estimate) -> Self {
        Self {
            mean: e.mean,
            ci95: e.ci95(),
        }
    }
}

/// What a rollout measured over its episodes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RolloutStats {
    pub episodes: usize,
    /// Total reward per episode.
    #[serde(rename = "reward")]
    pub episode_return: Estimate,
    #[serde(rename = "length")]
    pub episode_len: Estimate,
    /// The share of episodes whose return is above zero: the success rate of a task that pays
    /// only on success, as MiniGrid's do.
    pub success: Estimate,
    /// Total pseudo-regret per episode, for environments that report it.
    pub regret: Option<Estimate>,
}

/// One policy's line of a [`Report`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PolicyResult {
    pub policy: String,
    #[serde(flatten)]
    pub stats: RolloutStats,
}

/// What `plastic rollout` and `plastic eval` report (and the Python module's `rollout` and
/// `evaluate` return), in one schema: `--json` prints it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub env: String,
    pub seed: u64,
    pub episodes: usize,
    /// The checkpoint judged (`plastic eval`); `None` for a reference policy.
    pub checkpoint: Option<String>,
    /// Environment steps the checkpoint trained for; `None` for a reference policy.
    pub env_steps_trained: Option<u64>,
    /// The policy judged first, then (`plastic eval`) the references on the same episodes.
    pub policies: Vec<PolicyResult>,
    /// Bandits: the exact Bayes-optimal regret, where it can be computed.
    pub bayes_optimal_exact: Option<f64>,
    /// The judged policy's mean reward as a percentage of the oracle's (maze), on the same
    /// episodes.
    pub percent_of_oracle: Option<f64>,
}

impl Report {
    /// The report of `policies` (the judged one first) on `episodes` episodes of `env` seeded
    /// with `seed`, with `env`'s exact Bayes-optimal regret and the judged policy's percentage
    /// of `oracle`'s reward where those exist.
    pub fn new(
        env: &dyn Environment,
        seed: u64,
        episodes: usize,
        policies: Vec<PolicyResult>,
        oracle: Option<&RolloutStats>,
    ) -> Self {
        let percent_of_oracle = oracle
            .zip(policies.first())
            .map(|(o, p)| 100.0 * p.stats.episode_return.mean / o.episode_return.mean);
        Self {
            env: env.id(),
            seed,
            episodes,
            checkpoint: None,
            env_steps_trained: None,
            policies,
            bayes_optimal_exact: env.bayes_optimal_regret(),
            percent_of_oracle,
        }
    }
}

/// Why the reference policies could not be run.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// Policy `name` for `num_envs` rows, seeded with `seed`: `random` for every environment,
/// else one of `env`'s own ([`Environment::policy`]).
pub fn reference_policy(
    env: &dyn Environment,
    name: &str,
    num_envs: usize,
    seed: u64,
) -> Result<Box<dyn Policy>, ReferenceError> {
    Ok(match name {
        "random" => {
            let spec = env.build(1)?.spec().clone();
            let random = RandomPolicy::new(spec.num_actions, num_envs, seed);
            match spec.action_box {
                Some(space) => Box::new(random.within(space)),
                None => Box::new(random),
            }
        }
        _ => env.policy(name, num_envs, seed)?,
    })
}

/// What an agent is judged against: `random` and each of `env`'s reference policies that runs
/// on it (those [`PolicyError::Unavailable`] here are left out), on `episodes` episodes seeded
/// with `seed` in batches of [`eval_batch`], in that order. `watch` is told before every step
/// which policy runs and how many of its episodes have ended; returning `true` stops, and the
/// result is `None`.
pub fn reference_stats(
    env: &dyn Environment,
    episodes: usize,
    seed: u64,
    watch: &mut dyn FnMut(&str, usize) -> bool,
) -> Result<Option<Vec<(String, RolloutStats)>>, ReferenceError> {
    let batch = eval_batch(episodes);
    let mut stats = Vec::new();
    for &name in std::iter::once(&"random").chain(env.reference_policies()) {
        let mut policy = match reference_policy(env, name, batch, seed) {
            Ok(policy) => policy,
            // Not every policy runs on every instance (e.g. Bayes-optimal on restless arms).
            Err(ReferenceError::Policy(PolicyError::Unavailable { .. })) => continue,
            Err(e) => return Err(e),
        };
        let mut e = env.build(batch)?;
        let mut stop = |ended| watch(name, ended);
        let Some(s) = run_episodes_unless(e.as_mut(), policy.as_mut(), episodes, seed, &mut stop)?
        else {
            return Ok(None);
        };
        stats.push((name.to_string(), s));
    }
    Ok(Some(stats))
}

/// The oracle's `episodes` episodes (seeded with `seed`) where `env` has one
/// ([`Environment::oracle_returns`]); its episodes all have the spec's fixed length.
pub fn oracle_stats(
    env: &dyn Environment,
    episodes: usize,
    seed: u64,
) -> Result<Option<RolloutStats>, EnvError> {
    let Some(returns) = env.oracle_returns(episodes, seed) else {
        return Ok(None);
    };
    let len = env.build(1)?.spec().episode_len.unwrap_or(0);
    Ok(Some(RolloutStats {
        episodes,
        episode_return: Estimate::of(&returns),
        episode_len: Estimate {
            mean: len as f64,
            std_err: Some(0.0),
        },
        success: Estimate::success(&returns),
        regret: None,
    }))
}

/// Runs `policy` on `env` (reset with `seed`) until `episodes` episodes have ended.
///
/// Episodes are collected in the order they end (by step, then by row), so the result is
/// deterministic given the seeds and independent of timing.
pub fn run_episodes(
    env: &mut dyn VecEnv,
    policy: &mut dyn Policy,
    episodes: usize,
    seed: u64,
) -> Result<RolloutStats, EnvError> {
    let stats = run_episodes_unless(env, policy, episodes, seed, &mut |_| false)?;
    Ok(stats.expect("never stopped"))
}

/// [`run_episodes`] that gives up, returning `None`, as soon as `stop` says so. It is asked
/// before every step, with the number of episodes ended so far: a long evaluation shows its
/// progress through it, and does not hold up a process asked to stop.
pub fn run_episodes_unless(
    env: &mut dyn VecEnv,
    policy: &mut dyn Policy,
    episodes: usize,
    seed: u64,
    stop: &mut dyn FnMut(usize) -> bool,
) -> Result<Option<RolloutStats>, EnvError> {
    let b = env.num_envs();
    let mut obs = env.reset(seed)?.to_vec();
    let mut actions = Actions::for_env(env);
    let mut ret = vec![0.0f64; b];
    let mut regret = vec![0.0f64; b];
    let mut len = vec![0usize; b];
    let (mut returns, mut regrets, mut lens) = (Vec::new(), Vec::new(), Vec::new());
    let mut done = vec![false; b];
    let mut reports_regret = false;
    while returns.len() < episodes {
        if stop(returns.len()) {
            return Ok(None);
        }
        let step = actions.step(env, policy, &obs)?;
        for (row, d) in done.iter_mut().enumerate() {
            *d = step.done(row);
        }
        for row in 0..b {
            ret[row] += f64::from(step.rewards[row]);
            len[row] += 1;
            if let Some(r) = step.regret {
                regret[row] += f64::from(r[row]);
                reports_regret = true;
            }
            if done[row] && returns.len() < episodes {
                returns.push(ret[row]);
                regrets.push(regret[row]);
                lens.push(len[row] as f64);
            }
            if done[row] {
                (ret[row], regret[row], len[row]) = (0.0, 0.0, 0);
            }
        }
        obs.copy_from_slice(step.obs);
        if done.contains(&true) {
            policy.episodes_ended(&done);
        }
    }
    Ok(Some(RolloutStats {
        episodes,
        episode_return: Estimate::of(&returns),
        episode_len: Estimate::of(&lens),
        success: Estimate::success(&returns),
        regret: reports_regret.then(|| Estimate::of(&regrets)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_is_the_share_of_positive_returns_with_its_standard_error() {
        let s = Estimate::success(&[0.0, 1.5, -2.0, 0.3]);
        assert_eq!(s.mean, 0.5);
        // Hits 0, 1, 0, 1: sample variance 1/3 over 4 episodes.
        assert!((s.std_err.unwrap() - (1.0f64 / 12.0).sqrt()).abs() < 1e-15);
        assert_eq!(Estimate::success(&[2.0]).std_err, None);
    }
}
