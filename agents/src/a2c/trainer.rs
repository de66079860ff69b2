//! The A2C loop: collect a rollout from `B` environments, compute returns, backpropagate
//! through time, clip, step. Whole-episode and truncated rollouts share this one code path.
//! The trainer owns the parts (collection, losses, snapshots, statistics, reward scaling) and
//! is their one public entry point, so callers depend on none of them.
use super::config::{A2cConfig, OptimConfig};
use super::losses::{self, NonFinite};
use super::optim::Optimizer;
use super::reward_scale::RewardScale;
use super::rollout::Collector;
use super::snapshot::{self, Snapshot};
use super::stats::{self, Progress, UpdateStats};
use crate::actor_critic::ActorCritic;
use crate::cores::{BpttError, CoreConfig, CoreConfigError, Engine};
use crate::metrics::MetricsSink;
use plastic_envs::{EnvError, VecEnv};
use serde::{Deserialize, Serialize};
use std::rc::Rc;
use tch::{nn, Device};

/// Everything the trainer is configured with besides the environment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainerConfig {
    pub core: CoreConfig,
    pub a2c: A2cConfig,
    pub optim: OptimConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Core(#[from] CoreConfigError),
    #[error(transparent)]
    Config(#[from] super::ConfigError),
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

pub struct Trainer {
    vs: nn::VarStore,
    /// Shared with the tape of the rollout under way, which borrows the core while the
    /// trainer steps its environments.
    ac: Rc<ActorCritic>,
    engine: Engine,
    optim: Optimizer,
    collector: Collector,
    config: TrainerConfig,
    total_updates: u64,
    progress: Progress,
    /// `a2c.normalize_rewards`: applied to rewards as they are collected.
    reward_scale: Option<RewardScale>,
}

impl Trainer {
    /// Builds the network (weights drawn from `seed`) and optimiser for `env`, to run for
    /// `total_steps` environment steps (rounded up to whole updates).
    pub fn new(
        env: Box<dyn VecEnv>,
        config: TrainerConfig,
        total_steps: u64,
        seed: u64,
        device: Device,
    ) -> Result<Self, TrainError> {
        config.a2c.validate()?;
        config.optim.validate()?;
        let collector = Collector::new(env, &config.a2c, seed)?;
        let spec = collector.env.spec();
        let (vs, ac) = crate::agent::build(spec, &config.core, seed, device)?;
        let engine = config.a2c.bptt.engine(&ac.core)?;
        let optim = Optimizer::new(&vs, &config.optim);
        let per_update = (collector.env.num_envs() * collector.steps) as u64;
        let reward_scale = RewardScale::new(&config.a2c);
        Ok(Self {
            total_updates: total_steps.div_ceil(per_update).max(1),
            vs,
            ac: Rc::new(ac),
            engine,
            optim,
            collector,
            config,
            progress: Progress::default(),
            reward_scale,
        })
    }

    pub fn model(&self) -> &ActorCritic {
        &self.ac
    }

    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// Who does backpropagation through time (`a2c.bptt` resolved for this core and device).
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Every how many steps the hand-written pass keeps the traces
    /// (`a2c.trace_checkpoint_every` resolved for this core and engine).
    pub fn trace_checkpoint_every(&self) -> usize {
        self.config
            .a2c
            .trace_checkpoint_every
            .every(&self.ac.core, self.engine)
    }

    /// Whether the core's steps run on the host ([`crate::cores::steps_on_host`]).
    pub fn steps_on_host(&self) -> bool {
        crate::cores::steps_on_host(&self.ac.core, self.engine)
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    pub fn total_updates(&self) -> u64 {
        self.total_updates
    }

    pub fn is_done(&self) -> bool {
        self.progress.updates >= self.total_updates
    }

    pub fn env(&self) -> &dyn VecEnv {
        self.collector.env.as_ref()
    }

    /// Steps per environment per update.
    pub fn rollout_len(&self) -> usize {
        self.collector.steps
    }

    pub fn whole_episode(&self) -> bool {
        self.collector.whole_episode
    }

    /// Collects one rollout and applies one gradient step.
    pub fn update(&mut self) -> Result<UpdateStats, TrainError> {
        let update = self.progress.updates;
        let ac = Rc::clone(&self.ac);
        let (rollout, tape) = self.collector.collect(
            &ac,
            self.engine,
            self.config.a2c.trace_checkpoint_every,
            update,
            self.reward_scale.as_ref(),
            &mut self.progress.return_stats,
        )?;
        let lr = self.config.optim.lr_at(update, self.total_updates);
        let entropy_coef = self.config.a2c.entropy_at(update, self.total_updates);
        let a2c = &self.config.a2c;
        let losses = losses::learn(&ac, &mut self.optim, a2c, lr, entropy_coef, &rollout, tape)
            .map_err(|NonFinite(what)| TrainError::NonFinite {
                what,
                update: update + 1,
            })?;
        let stats = UpdateStats::new(losses, rollout, lr, entropy_coef);
        self.progress.record(&stats);
        Ok(stats)
    }

    /// Histograms of the plasticity coefficients α, the fixed recurrent weights W and (where
    /// learned) η, plus η's mean as a scalar.
    pub fn log_parameters(&self, sink: &mut dyn MetricsSink) {
        stats::log_parameters(&self.ac.core, self.progress.env_steps, sink);
    }

    /// The model's and optimiser's tensors (on the CPU) and the progress counters.
    pub fn snapshot(&self) -> Snapshot {
        snapshot::take(&self.vs, &self.optim, &self.collector, &self.progress)
    }

    /// Continues from `snapshot`: the next update is the one that followed it, with the
    /// episodes that were under way (truncated rollouts, native environments). Every tensor
    /// and the environments' state are checked before anything is copied, so a checkpoint
    /// that does not fit changes nothing.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<(), TrainError> {
        snapshot::restore(
            snapshot,
            &self.vs,
            &self.ac,
            &mut self.optim,
            &mut self.collector,
            &mut self.progress,
        )
    }
}
