//! Meta-learning bandits (Wang et al. 2016; Duan et al. 2016): every episode draws a new bandit,
//! so an agent has to find the paying arm within the episode. Exact rules: `specs/bandits.md`.
//!
//! [`Bandit`] steps `B` of them at once; [`policies`] holds the reference policies an agent is
//! judged against, and [`bayes_optimal_regret`] the exact figure for the two-armed tasks.
mod bayes;
mod config;
mod env;
mod gittins;
pub mod policies;

pub use bayes::bayes_optimal_regret;
pub use config::{BanditConfig, DependentPrior, Task};
pub use env::Bandit;

/// Posterior mean of a Bernoulli arm under a Beta(1, 1) prior after `successes` in `pulls`.
fn beta_mean(successes: usize, pulls: usize) -> f64 {
    (successes + 1) as f64 / (pulls + 2) as f64
}

/// Entries in the first `n` rows of a triangular table (row `i` has `i + 1`).
fn tri(n: usize) -> usize {
    n * (n + 1) / 2
}

/// Every bandit id starts with this, followed by the family name: `bandit-independent`.
pub const ID_PREFIX: &str = "bandit-";

/// One task family of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub summary: &'static str,
    /// `key=default` for every parameter.
    pub params: &'static str,
}

pub const FAMILIES: &[Family] = &[
    Family {
        name: "independent",
        summary: "Bernoulli arms, each p_a ~ U[0,1] independently per episode",
        params: "arms=2, len=100",
    },
    Family {
        name: "dependent-uniform",
        summary: "two Bernoulli arms, p1 ~ U[0,1], p2 = 1 - p1",
        params: "len=100",
    },
    Family {
        name: "dependent-easy",
        summary: "two Bernoulli arms, p1 in {0.1, 0.9}, p2 = 1 - p1",
        params: "len=100",
    },
    Family {
        name: "dependent-medium",
        summary: "two Bernoulli arms, p1 in {0.25, 0.75}, p2 = 1 - p1",
        params: "len=100",
    },
    Family {
        name: "dependent-hard",
        summary: "two Bernoulli arms, p1 in {0.4, 0.6}, p2 = 1 - p1",
        params: "len=100",
    },
    Family {
        name: "restless",
        summary: "two Bernoulli arms, p1 walks (Gaussian steps reflected into [0,1]), p2 = 1 - p1",
        params: "len=100, volatility=0.05",
    },
    Family {
        name: "informative-11",
        summary:
            "11 deterministic arms: one of the first ten pays 5, the others 1, arm 11 reveals \
                  which (pays 0.1 x (target index + 1))",
        params: "len=5",
    },
];
