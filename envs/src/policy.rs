//! Policies that act from observations alone, without libtorch: baselines and references.
use crate::rng::{self, Rng};
use crate::{ActionBox, EnvError, Step, VecEnv};
use rand::Rng as _;

/// Chooses one action per environment row from the batch of current observations.
pub trait Policy {
    /// `obs` is `[B × obs_dim]`; writes `B` actions.
    fn act(&mut self, obs: &[f32], actions: &mut [u32]);
    /// For environments with continuous actions: writes `B × dim` components (the
    /// environment clips them to its bounds). Policies that choose discrete actions only
    /// leave this as it is, an error.
    fn act_continuous(&mut self, _obs: &[f32], _actions: &mut [f32]) -> Result<(), EnvError> {
        Err(EnvError::DiscretePolicy)
    }
    /// Told after each step which rows' episodes ended (and were reset), for policies with
    /// memory, such as recurrent agents, that must start those rows afresh.
    fn episodes_ended(&mut self, _done: &[bool]) {}
}

/// One batch's actions, of the kind the environment takes: a policy acting in any environment
/// steps it through [`Actions::step`].
pub struct Actions {
    discrete: Vec<u32>,
    /// `[B × A]` components when the environment has a continuous action space, else empty.
    continuous: Vec<f32>,
}

impl Actions {
    /// Room for one action per row of `env`.
    pub fn for_env(env: &dyn VecEnv) -> Self {
        let (b, spec) = (env.num_envs(), env.spec());
        let continuous = match spec.action_box {
            Some(_) => vec![0.0; b * spec.num_actions],
            None => Vec::new(),
        };
        Self {
            discrete: vec![0; b],
            continuous,
        }
    }

    /// `policy`'s actions on `obs`, then `env` stepped with them.
    pub fn step<'e>(
        &mut self,
        env: &'e mut dyn VecEnv,
        policy: &mut dyn Policy,
        obs: &[f32],
    ) -> Result<Step<'e>, EnvError> {
        self.choose(policy, obs)?;
        self.apply(env)
    }

    /// `policy`'s actions on `obs`, kept for [`Actions::apply`].
    pub fn choose(&mut self, policy: &mut dyn Policy, obs: &[f32]) -> Result<(), EnvError> {
        if self.continuous.is_empty() {
            policy.act(obs, &mut self.discrete);
            Ok(())
        } else {
            policy.act_continuous(obs, &mut self.continuous)
        }
    }

    /// `env` stepped with the actions last chosen.
    pub fn apply<'e>(&self, env: &'e mut dyn VecEnv) -> Result<Step<'e>, EnvError> {
        if self.continuous.is_empty() {
            env.step(&self.discrete)
        } else {
            env.step_continuous(&self.continuous)
        }
    }
}

/// Uniformly random actions, one independent stream per row: discrete ones, or continuous
/// ones uniform within their box ([`RandomPolicy::within`]).
pub struct RandomPolicy {
    num_actions: u32,
    action_box: Option<ActionBox>,
    rngs: Vec<Rng>,
}

impl RandomPolicy {
    pub fn new(num_actions: usize, num_envs: usize, seed: u64) -> Self {
        Self {
            num_actions: num_actions as u32,
            action_box: None,
            rngs: (0..num_envs).map(|i| rng::policy_stream(seed, i)).collect(),
        }
    }
}

impl RandomPolicy {
    /// The same policy in a continuous action space: each component uniform within its
    /// bounds.
    pub fn within(self, space: ActionBox) -> Self {
        Self {
            action_box: Some(space),
            ..self
        }
    }
}

impl Policy for RandomPolicy {
    fn act(&mut self, _obs: &[f32], actions: &mut [u32]) {
        for (a, rng) in actions.iter_mut().zip(&mut self.rngs) {
            *a = rng.random_range(0..self.num_actions);
        }
    }

    fn act_continuous(&mut self, _obs: &[f32], actions: &mut [f32]) -> Result<(), EnvError> {
        let Some(space) = &self.action_box else {
            return Err(EnvError::DiscretePolicy);
        };
        for (row, rng) in actions.chunks_mut(space.dim()).zip(&mut self.rngs) {
            for ((a, &low), &high) in row.iter_mut().zip(&space.low).zip(&space.high) {
                *a = low + (high - low) * rng.random::<f32>();
            }
        }
        Ok(())
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
