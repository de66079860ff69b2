//! Policies that act from observations alone, without libtorch: baselines and references.
use crate::rng::{self, Rng};
use rand::Rng as _;

/// Chooses one action per environment row from the batch of current observations.
pub trait Policy {
    /// `obs` is `[B × obs_dim]`; writes `B` actions.
    fn act(&mut self, obs: &[f32], actions: &mut [u32]);
    /// Told after each step which rows' episodes ended (and were reset), for policies with
    /// memory, such as recurrent agents, that must start those rows afresh.
    fn episodes_ended(&mut self, _done: &[bool]) {}
}

/// Uniformly random actions, one independent stream per row.
pub struct RandomPolicy {
    num_actions: u32,
    rngs: Vec<Rng>,
}

impl RandomPolicy {
    pub fn new(num_actions: usize, num_envs: usize, seed: u64) -> Self {
        Self {
            num_actions: num_actions as u32,
            rngs: (0..num_envs).map(|i| rng::policy_stream(seed, i)).collect(),
        }
    }
}

impl Policy for RandomPolicy {
    fn act(&mut self, _obs: &[f32], actions: &mut [u32]) {
        for (a, rng) in actions.iter_mut().zip(&mut self.rngs) {
            *a = rng.random_range(0..self.num_actions);
        }
    }
}

/// Why a reference policy cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("`{env}` has no policy `{name}`; its policies: {known}")]
    Unknown {
        name: String,
        env: String,
        known: String,
    },
    #[error("policy `{policy}` is not available for `{env}`: {reason}")]
    Unavailable {
        policy: String,
        env: String,
        reason: String,
    },
}

impl PolicyError {
    /// `name` is none of the policies of environment `env`, whose own are `names`.
    pub fn unknown(name: &str, env: String, names: &[&str]) -> Self {
        let known: Vec<&str> = std::iter::once("random")
            .chain(names.iter().copied())
            .collect();
        Self::Unknown {
            name: name.to_string(),
            env,
            known: known.join(", "),
        }
    }
}
