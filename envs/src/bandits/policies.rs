//! Reference policies for the bandit tasks, to judge agents against.
//!
//! Like an agent, each policy sees only the observations: it rebuilds per-row success and
//! failure counts from the previous-action one-hot and the previous reward, and starts afresh
//! when a row shows no previous action (the first step of an episode). So `act` must be called
//! exactly once per environment step. All keep Beta(1, 1) posteriors per arm, treating the
//! arms as independent even in the dependent families (they are the task-agnostic versions):
//!
//! - `random`: uniform over the arms.
//! - `greedy`: highest posterior mean `(s + 1) / (n + 2)`.
//! - `thompson`: one draw from each arm's Beta(s + 1, f + 1) posterior, highest draw.
//! - `ucb1`: every untried arm first, then highest `s / n + sqrt(2 ln t / n)`, where `t` is the
//!   number of pulls made so far in the episode (Auer et al. 2002).
//! - `gittins`: highest Gittins index, at discount `1 − 1 / T`.
//! - `bayes`: the exact finite-horizon Bayes-optimal policy, for the two-armed `independent`
//!   and the `dependent-*` tasks (the latter with the task's own prior).
//! - `win-stay`: win-stay, lose-shift (Robbins 1952): pull the previous arm again if it paid, else
//!   a uniformly random other arm; it keeps no counts, so it follows arms that swap.
//!
//! Ties go to a uniformly random arm among the best. `informative-11` pays 5, 1 or 0.1–1.0
//! deterministically, which no Beta-Bernoulli posterior describes, so only `random` runs there.
use super::bayes::{BayesTable, EITHER, MAX_DEPENDENT_LEN, MAX_INDEPENDENT_LEN};
use super::gittins::GittinsTable;
use super::{beta_mean, BanditConfig, Task};
use crate::rng::{self, Rng};
use crate::{Environment, Policy, PolicyError, RandomPolicy};
use rand::Rng as _;
use rand_distr::{Beta, Distribution};

/// Every name [`make_policy`] knows besides `random`.
pub const POLICY_NAMES: &[&str] = &["greedy", "thompson", "ucb1", "gittins", "bayes", "win-stay"];

/// Discount of the `gittins` policy on an episode of `horizon` steps: `1 − 1 / T`, whose
/// effective horizon `1 / (1 − γ)` is the episode's (0.99 at `T = 100`). Gittins indices are
/// optimal for discounted rewards only; on two independent arms at `T = 100` this discount did
/// as well as any tried (regret 1.78–1.79 at 0.98–0.99, 1.84 at 0.95 and 0.995, 1.95 at 0.9).
fn gittins_discount(horizon: usize) -> f64 {
    1.0 - 1.0 / horizon as f64
}

/// Builds policy `name` for `num_envs` rows of the task `config`, seeded with `seed`.
pub(super) fn make_policy(
    name: &str,
    config: &BanditConfig,
    num_envs: usize,
    seed: u64,
) -> Result<Box<dyn Policy>, PolicyError> {
    let arms = config.num_arms();
    let unavailable = |reason: String| PolicyError::Unavailable {
        policy: name.to_string(),
        env: config.id(),
        reason,
    };
    let counting = |rule: Box<dyn Rule>| -> Box<dyn Policy> {
        Box::new(Counting::new(rule, arms, num_envs, seed))
    };
    match name {
        "random" => Ok(Box::new(RandomPolicy::new(arms, num_envs, seed))),
        "greedy" | "thompson" | "ucb1" | "gittins" | "win-stay"
            if config.task() == Task::Informative =>
        {
            Err(unavailable(
                "its rewards (5, 1 or 0.1-1.0, deterministic) are not Bernoulli, so the \
                 Beta-Bernoulli posterior this policy keeps does not describe them; use `random`"
                    .into(),
            ))
        }
        "win-stay" => Ok(Box::new(WinStayLoseShift::new(arms, num_envs, seed))),
        "greedy" => Ok(counting(Box::new(Greedy))),
        "thompson" => Ok(counting(Box::new(Thompson))),
        "ucb1" => Ok(counting(Box::new(Ucb1))),
        "gittins" => {
            let discount = gittins_discount(config.horizon());
            Ok(counting(Box::new(GittinsTable::new(
                discount,
                config.horizon(),
            ))))
        }
        "bayes" => match BayesTable::solve(config) {
            Some(table) => Ok(counting(Box::new(table))),
            None => Err(unavailable(why_no_bayes(config))),
        },
        _ => Err(PolicyError::unknown(name, config.id(), POLICY_NAMES)),
    }
}

fn why_no_bayes(config: &BanditConfig) -> String {
    const ONLY: &str = "the exact Bayes-optimal policy is available for the two-armed \
                        `independent` and the `dependent-*` tasks only";
    match config.task() {
        Task::Independent { arms: 2 } => format!(
            "its table has C(T + 3, 4) states; it is built for len <= {MAX_INDEPENDENT_LEN}"
        ),
        Task::Dependent(_) => {
            format!("its table has T^2 / 2 states; it is built for len <= {MAX_DEPENDENT_LEN}")
        }
        Task::Independent { arms } => format!(
            "{ONLY}: with {arms} arms the posterior counts have too many states to tabulate"
        ),
        Task::Restless { .. } | Task::Switching { .. } => {
            format!("{ONLY}: here the arms drift, so success and failure counts are not sufficient")
        }
        Task::Informative => format!("{ONLY}: here the rewards are not Bernoulli"),
    }
}

/// How a policy picks an arm from one row's counts of successes and failures per arm.
trait Rule {
    fn choose(&self, succ: &[u32], fail: &[u32], rng: &mut Rng) -> u32;
}

/// A policy that keeps per-row counts from the observations and asks its rule for an arm.
struct Counting {
    rule: Box<dyn Rule>,
    arms: usize,
    /// `[B × K]`
    succ: Vec<u32>,
    /// `[B × K]`
    fail: Vec<u32>,
    rngs: Vec<Rng>,
}

impl Counting {
    fn new(rule: Box<dyn Rule>, arms: usize, num_envs: usize, seed: u64) -> Self {
        Self {
            rule,
            arms,
            succ: vec![0; num_envs * arms],
            fail: vec![0; num_envs * arms],
            rngs: (0..num_envs)
                .map(|row| rng::policy_stream(seed, row))
                .collect(),
        }
    }
}

impl Policy for Counting {
    fn act(&mut self, obs: &[f32], actions: &mut [u32]) {
        let k = self.arms;
        debug_assert_eq!(
            actions.len(),
            self.rngs.len(),
            "policy built for another batch size"
        );
        for (row, (action, rng)) in actions.iter_mut().zip(&mut self.rngs).enumerate() {
            let obs = &obs[row * (k + 2)..(row + 1) * (k + 2)];
            let succ = &mut self.succ[row * k..(row + 1) * k];
            let fail = &mut self.fail[row * k..(row + 1) * k];
            match obs[..k].iter().position(|&x| x > 0.5) {
                // No previous action: a new episode.
                None => {
                    succ.fill(0);
                    fail.fill(0);
                }
                Some(arm) if obs[k] > 0.5 => succ[arm] += 1,
                Some(arm) => fail[arm] += 1,
            }
            *action = self.rule.choose(succ, fail, rng);
        }
    }
}

/// Win-stay, lose-shift: acts on the previous action and reward alone (the observation).
struct WinStayLoseShift {
    arms: usize,
    rngs: Vec<Rng>,
}

impl WinStayLoseShift {
    fn new(arms: usize, num_envs: usize, seed: u64) -> Self {
        Self {
            arms,
            rngs: (0..num_envs)
                .map(|row| rng::policy_stream(seed, row))
                .collect(),
        }
    }
}

impl Policy for WinStayLoseShift {
    fn act(&mut self, obs: &[f32], actions: &mut [u32]) {
        let k = self.arms;
        for (row, (action, rng)) in actions.iter_mut().zip(&mut self.rngs).enumerate() {
            let obs = &obs[row * (k + 2)..(row + 1) * (k + 2)];
            *action = match obs[..k].iter().position(|&x| x > 0.5) {
                // A new episode: nothing to stay with.
                None => rng.random_range(0..k as u32),
                Some(arm) if obs[k] > 0.5 => arm as u32,
                // Any other arm, uniformly: draw among k − 1 and skip the one that lost.
                Some(arm) => {
                    let other = rng.random_range(0..k as u32 - 1);
                    other + u32::from(other >= arm as u32)
                }
            };
        }
    }
}

/// The arm with the highest score, uniformly among equals.
fn argmax(scores: impl Iterator<Item = f64>, rng: &mut Rng) -> u32 {
    let (mut best, mut choice, mut ties) = (f64::NEG_INFINITY, 0, 0);
    for (arm, score) in scores.enumerate() {
        if score > best {
            (best, choice, ties) = (score, arm, 1);
        } else if score == best {
            // Reservoir sampling: the j-th equal replaces the choice with probability 1/j.
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                choice = arm;
            }
        }
    }
    choice as u32
}

struct Greedy;

impl Rule for Greedy {
    fn choose(&self, succ: &[u32], fail: &[u32], rng: &mut Rng) -> u32 {
        argmax(
            succ.iter()
                .zip(fail)
                .map(|(&s, &f)| beta_mean(s as usize, (s + f) as usize)),
            rng,
        )
    }
}

struct Thompson;

impl Rule for Thompson {
    fn choose(&self, succ: &[u32], fail: &[u32], rng: &mut Rng) -> u32 {
        // Draws are continuous: ties have probability zero.
        let (mut best, mut choice) = (f64::NEG_INFINITY, 0);
        for (arm, (&s, &f)) in succ.iter().zip(fail).enumerate() {
            let posterior = Beta::new(f64::from(s + 1), f64::from(f + 1))
                .expect("Beta parameters are at least 1");
            let draw = posterior.sample(rng);
            if draw > best {
                (best, choice) = (draw, arm);
            }
        }
        choice as u32
    }
}

struct Ucb1;

impl Rule for Ucb1 {
    fn choose(&self, succ: &[u32], fail: &[u32], rng: &mut Rng) -> u32 {
        let t: u32 = succ.iter().chain(fail).sum();
        let log_t = f64::from(t).ln();
        let scores = succ.iter().zip(fail).map(|(&s, &f)| match s + f {
            0 => f64::INFINITY,
            n => f64::from(s) / f64::from(n) + (2.0 * log_t / f64::from(n)).sqrt(),
        });
        argmax(scores, rng)
    }
}

impl Rule for GittinsTable {
    fn choose(&self, succ: &[u32], fail: &[u32], rng: &mut Rng) -> u32 {
        argmax(succ.iter().zip(fail).map(|(&s, &f)| self.index(s, f)), rng)
    }
}

impl Rule for BayesTable {
    fn choose(&self, succ: &[u32], fail: &[u32], rng: &mut Rng) -> u32 {
        match self.decision(succ, fail) {
            Some(EITHER) => u32::from(rng.random::<bool>()),
            Some(arm) => u32::from(arm),
            // Past the horizon the table was built for (the policy is stepped longer than an
            // episode): one step is all it can plan, and there the myopic choice is optimal.
            None => Greedy.choose(succ, fail, rng),
        }
    }
}
