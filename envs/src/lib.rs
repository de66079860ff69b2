//! Batched environments for `plastic`: `B` environments stepped together, observations in one
//! contiguous `f32` buffer, automatic resets, deterministic under a seed. No libtorch here.
//!
//! Native environments: [`maze::Maze`] (Miconi et al.'s grid maze with a hidden reward) and
//! [`bandits::Bandit`] (meta-learning bandit families), with reference bandit policies
//! (`Environment::policy`). Any Gymnasium environment with discrete or continuous (`Box`) actions runs as `gym:<id>`
//! through [`gym`] (cargo feature `gym`). Ids are parsed by [`registry::parse`] into an
//! [`Environment`], which builds batches and offers the optional hooks of [`family`]; the
//! native families are listed in [`registry::FAMILIES`].

mod actions;
pub mod bandits;
mod buffers;
pub mod draw;
mod error;
pub mod family;
pub mod grid_pictures;
pub mod gym;
mod image;
pub mod maze;
pub mod memory;
mod params;
mod policy;
pub mod registry;
pub mod rng;
pub mod rollout;
mod saved;
pub mod testing;
pub mod tmaze;

pub use actions::ActionBox;
pub use buffers::{Step, StepBuffers};
pub use error::EnvError;
pub use family::{BanditEnv, DrawnEnv, Environment, Family, Frame, GridEnv};
pub use grid_pictures::grid_frame;
pub use image::ImageSpace;
pub use params::Params;
pub use policy::{Actions, Policy, PolicyError, RandomPolicy};
pub use saved::EnvState;

/// What an agent needs to know to act in an environment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EnvSpec {
    /// Canonical id, with every parameter spelt out (e.g. `maze:size=13,len=200,...`).
    pub id: String,
    /// Length of one flattened `f32` observation.
    pub obs_dim: usize,
    /// Number of discrete actions (actions are `0..num_actions`), or with `action_box`, the
    /// number of components of one continuous action: either way, the policy head's outputs.
    pub num_actions: usize,
    /// What the environment's own action space calls discrete action 0 (Gymnasium's
    /// `Discrete(n, start)`): agents choose `0..num_actions`, and [`EnvSpec::env_action`]
    /// gives the value the environment takes. 0 for native environments and `Box` actions.
    #[serde(skip_serializing_if = "is_zero")]
    pub action_start: i64,
    /// `Some` for a continuous action space: actions are `num_actions` `f32`s within these
    /// bounds, given to [`VecEnv::step_continuous`]. `None`: discrete actions, given to
    /// [`VecEnv::step`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_box: Option<ActionBox>,
    /// `Some` when each observation is an image (a rank-3 `Box`), flattened row-major into
    /// its `obs_dim` values: agents read it through a convolutional encoder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpace>,
    /// Steps after which an episode is truncated, when the environment has a fixed horizon.
    pub episode_len: Option<usize>,
}

impl EnvSpec {
    /// Discrete action `a` (`0..num_actions`) as the environment's own action space numbers
    /// it: what the environment is stepped with and what users are shown, e.g. `-1` for the
    /// first action of Gymnasium's `Discrete(3, start=-1)`.
    pub fn env_action(&self, a: u32) -> i64 {
        self.action_start + i64::from(a)
    }

    /// What one environment of a batch takes at least: its observation and final
    /// observation, reward, flags and random stream. For refusing batch sizes no machine holds.
    pub fn min_bytes_per_env(&self) -> usize {
        2 * self.obs_dim * std::mem::size_of::<f32>() + std::mem::size_of::<f32>() + 2 + 32
    }
}

/// Serialized specs leave out an action start of 0, as they were before it existed.
fn is_zero(start: &i64) -> bool {
    *start == 0
}

/// `B` environments stepped together.
///
/// After [`reset`](VecEnv::reset) and after each [`step`](VecEnv::step), row `i` of the
/// observation buffer is what environment `i` shows the agent now. An environment whose episode
/// ends (terminated or truncated) resets itself within the same step: its row then holds the
/// first observation of the next episode, and the observation it ended on is in `final_obs`.
pub trait VecEnv {
    fn spec(&self) -> &EnvSpec;
    fn num_envs(&self) -> usize;
    /// Starts a fresh episode in every environment. Environment `i` draws its randomness from
    /// its own stream derived from `(seed, i)`, so its episodes do not depend on the batch size.
    fn reset(&mut self, seed: u64) -> Result<&[f32], EnvError>;
    /// Applies one action per environment (`actions.len() == num_envs()`).
    fn step(&mut self, actions: &[u32]) -> Result<Step<'_>, EnvError>;
    /// Applies one continuous action per environment (`actions.len() == num_envs() *
    /// num_actions`), each component clipped to the spec's `action_box` first, as SB3 clips
    /// a Gaussian policy's sample; a NaN is an error. Only environments whose spec has an
    /// `action_box` take them.
    fn step_continuous(&mut self, _actions: &[f32]) -> Result<Step<'_>, EnvError> {
        Err(EnvError::ActionKind {
            id: self.spec().id.clone(),
            expected: "discrete",
            given: "continuous",
        })
    }
    /// Everything [`load_state`](VecEnv::load_state) needs to continue exactly from here
    /// (episodes under way, random streams), or `None` where it cannot be captured: a
    /// Gymnasium environment's state lives in Python objects.
    fn save_state(&self) -> Option<EnvState> {
        None
    }
    /// Continues from what [`save_state`](VecEnv::save_state) returned for the same
    /// environment and batch size. A state that does not fit is an error and changes nothing.
    fn load_state(&mut self, _state: &EnvState) -> Result<(), EnvError> {
        Err(saved::bad(
            &self.spec().id,
            "this environment cannot restore a saved state".into(),
        ))
    }
}

impl<E: VecEnv + ?Sized> VecEnv for Box<E> {
    fn spec(&self) -> &EnvSpec {
        (**self).spec()
    }
    fn num_envs(&self) -> usize {
        (**self).num_envs()
    }
    fn reset(&mut self, seed: u64) -> Result<&[f32], EnvError> {
        (**self).reset(seed)
    }
    fn step(&mut self, actions: &[u32]) -> Result<Step<'_>, EnvError> {
        (**self).step(actions)
    }
    fn step_continuous(&mut self, actions: &[f32]) -> Result<Step<'_>, EnvError> {
        (**self).step_continuous(actions)
    }
    fn save_state(&self) -> Option<EnvState> {
        (**self).save_state()
    }
    fn load_state(&mut self, state: &EnvState) -> Result<(), EnvError> {
        (**self).load_state(state)
    }
}
