//! Meta-learning bandits (Wang et al. 2016; Duan et al. 2016): every episode draws a new bandit,
//! so an agent has to find the paying arm within the episode. Exact rules: `docs/bandits.md`.
//!
//! [`Bandit`] steps `B` of them at once. Through [`crate::Environment`], a [`BanditConfig`]
//! builds the reference policies an agent is judged against (`policies`) and gives the exact
//! Bayes-optimal regret of the two-armed tasks (`bayes`).
mod bayes;
mod config;
mod env;
mod gittins;
mod picture;
mod policies;

use bayes::bayes_optimal_regret;
pub use config::{BanditConfig, DependentPrior, Task};
pub use env::Bandit;
pub use picture::{record, BanditEpisode};

use crate::{EnvError, Environment, Family};

/// Posterior mean of a Bernoulli arm under a Beta(1, 1) prior after `successes` in `pulls`.
fn beta_mean(successes: usize, pulls: usize) -> f64 {
    (successes + 1) as f64 / (pulls + 2) as f64
}

/// Entries in the first `n` rows of a triangular table (row `i` has `i + 1`).
fn tri(n: usize) -> usize {
    n * (n + 1) / 2
}

/// The bandit families of the catalogue.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "bandit-independent",
        summary: "Bernoulli arms, each p_a ~ U[0,1] independently per episode",
        params: "arms=2, len=100",
        parse: |params| boxed(BanditConfig::independent(params)),
    },
    Family {
        name: "bandit-dependent-uniform",
        summary: "two Bernoulli arms, p1 ~ U[0,1], p2 = 1 - p1",
        params: "len=100",
        parse: |params| boxed(BanditConfig::dependent(DependentPrior::Uniform, params)),
    },
    Family {
        name: "bandit-dependent-easy",
        summary: "two Bernoulli arms, p1 in {0.1, 0.9}, p2 = 1 - p1",
        params: "len=100",
        parse: |params| boxed(BanditConfig::dependent(DependentPrior::Easy, params)),
    },
    Family {
        name: "bandit-dependent-medium",
        summary: "two Bernoulli arms, p1 in {0.25, 0.75}, p2 = 1 - p1",
        params: "len=100",
        parse: |params| boxed(BanditConfig::dependent(DependentPrior::Medium, params)),
    },
    Family {
        name: "bandit-dependent-hard",
        summary: "two Bernoulli arms, p1 in {0.4, 0.6}, p2 = 1 - p1",
        params: "len=100",
        parse: |params| boxed(BanditConfig::dependent(DependentPrior::Hard, params)),
    },
    Family {
        name: "bandit-restless",
        summary: "two Bernoulli arms, p1 walks (Gaussian steps reflected into [0,1]), p2 = 1 - p1",
        params: "len=100, volatility=0.05",
        parse: |params| boxed(BanditConfig::restless(params)),
    },
    Family {
        name: "bandit-switching",
        summary: "two timescales: two Bernoulli arms, p2 = 1 - p1, p1 walks slowly and the \
                  arms swap every `every` pulls",
        params: "every=20, len=100, volatility=0.02",
        parse: |params| boxed(BanditConfig::switching(params)),
    },
    Family {
        name: "bandit-informative-11",
        summary:
            "11 deterministic arms: one of the first ten pays 5, the others 1, arm 11 reveals \
                  which (pays 0.1 x (target index + 1))",
        params: "len=5",
        parse: |params| boxed(BanditConfig::informative(params)),
    },
];

/// Returns of `episodes` episodes (one row each, seeded with `seed`) of pulling the arm with
/// the highest expected reward at every step: what an agent that knew the arms would earn.
fn oracle_returns(config: &BanditConfig, episodes: usize, seed: u64) -> Vec<f64> {
    let mut env = Bandit::new(config.clone(), episodes.max(1));
    let mut returns = vec![0.0; episodes];
    if crate::VecEnv::reset(&mut env, seed).is_err() {
        return returns;
    }
    let mut actions = vec![0u32; episodes.max(1)];
    for _ in 0..config.horizon() {
        for (row, action) in actions.iter_mut().enumerate() {
            let means = crate::BanditEnv::arm_means(&env, row);
            *action = u32::from(means[1] > means[0]);
        }
        let Ok(step) = crate::VecEnv::step(&mut env, &actions) else {
            break;
        };
        for (sum, &r) in returns.iter_mut().zip(step.rewards) {
            *sum += f64::from(r);
        }
    }
    returns
}

fn boxed(config: Result<BanditConfig, EnvError>) -> Result<Box<dyn Environment>, EnvError> {
    Ok(Box::new(config?))
}
