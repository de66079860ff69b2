//! What can stop a trainer: a setting it cannot run with, and what goes wrong while it runs.
//! In a file of their own so that every part of the trainer can name them without depending
//! on the trainer itself.
use crate::cores::{BpttError, CoreConfigError};
use crate::perturbation::PerturbationError;
use plastic_envs::EnvError;

/// A setting the trainer cannot run with; the message names the key and the accepted values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key} = {value}: {expected}")]
pub struct ConfigError {
    pub key: &'static str,
    pub value: String,
    pub expected: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Core(#[from] CoreConfigError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Not a `source`: the message already holds the cause, which would print twice.
    #[error("a2c.{0}")]
    Bptt(BpttError),
    #[error(
        "a2c.rollout_len = \"episode\" needs an environment with a fixed episode length, and \
         `{env}` has none"
    )]
    NoEpisodeLength { env: String },
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("a2c.train_noise_groups: {0}")]
    TrainNoise(#[from] PerturbationError),
    #[error(
        "a2c.train_noise trains A2C only, and this config has a [ppo] section: PPO runs each \
         rollout several times and steps between them, so one noise draw per update has no \
         one gradient to give; remove `train_noise` or the [ppo] section"
    )]
    TrainNoiseWithPpo,
    #[error(
        "a2c.train_dropout trains with autograd, and a2c.bptt = \"{setting}\" asks for the \
         hand-written pass, whose steps take no mask of silenced neurons; set a2c.bptt = \
         \"auto\" or \"autograd\", or remove `train_dropout`"
    )]
    TrainDropoutHandWritten { setting: &'static str },
    #[error("training stopped at update {update}: the {what} is not finite (NaN or infinity)")]
    NonFinite {
        what: &'static str,
        /// Counted from 1, as checkpoints are: the update that failed.
        update: u64,
    },
    #[error(
        "training stopped at update {update}: environment `{env}` returned a {what} that is not \
         finite (NaN or infinity) in row {row}. The model is not at fault"
    )]
    EnvNonFinite {
        env: String,
        what: &'static str,
        row: usize,
        /// Counted from 1, as checkpoints are.
        update: u64,
    },
    #[error("the checkpoint does not match this model: {0}")]
    Mismatch(String),
    #[error(
        "the checkpoint's `progress.json` does not add up: {updates} updates of {per_update} \
         environment steps each, and {env_steps} environment steps (it was edited or damaged)"
    )]
    Counters {
        updates: u64,
        per_update: u64,
        env_steps: u64,
    },
}

impl From<BpttError> for TrainError {
    fn from(e: BpttError) -> Self {
        Self::Bptt(e)
    }
}
