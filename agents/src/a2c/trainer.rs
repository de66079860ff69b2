//! The A2C loop: collect a rollout from `B` environments, compute returns, backpropagate
//! through time, clip, step. Whole-episode and truncated rollouts share this one code path.
use super::config::{A2cConfig, OptimConfig};
use super::losses::{self, NonFinite};
use super::optim::Optimizer;
use super::reward_scale::RewardScale;
use super::rollout::{Carry, Collector, EpisodeSum};
use super::stats::{self, Progress, UpdateStats};
use crate::actor_critic::ActorCritic;
use crate::cores::{BpttError, CoreConfig, CoreConfigError, Engine, State};
use crate::metrics::MetricsSink;
use plastic_envs::{EnvError, EnvState, VecEnv};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::rc::Rc;
use tch::{nn, Device, Tensor};

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
         `{env}` has none; set a2c.rollout_len to a number of steps (e.g. 128)"
    )]
    NoEpisodeLength { env: String },
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(
        "training stopped at update {update}: the {what} is not finite (NaN or infinity); \
         lower optim.lr or a2c.max_grad_norm in the run's config.toml and resume"
    )]
    NonFinite {
        what: &'static str,
        /// Counted from 1, as checkpoints are: the update that failed.
        update: u64,
    },
    #[error(
        "training stopped at update {update}: environment `{env}` returned a {what} that is not \
         finite (NaN or infinity) in row {row}. The model is not at fault: fix the environment, \
         or clean its outputs with a wrapper"
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
}

impl From<BpttError> for TrainError {
    fn from(e: BpttError) -> Self {
        Self::Bptt(e)
    }
}

/// Model and optimiser tensors plus progress: everything a resumed run needs besides its
/// config. Random streams are derived from (seed, update), so the counters restore them.
pub struct Snapshot {
    /// `model/<variable>`, `optim/{m,v}/<variable>` and, with episodes under way,
    /// `carry/<state>` (the recurrent state they continue from), on the CPU.
    pub tensors: Vec<(String, Tensor)>,
    pub progress: Progress,
    /// Truncated rollouts: the episodes the next rollout continues. `None` in the
    /// whole-episode regime, and where the environments cannot save their state (Gymnasium):
    /// the resumed run then starts fresh episodes.
    pub under_way: Option<UnderWay>,
}

/// The episodes under way between two truncated rollouts, besides the recurrent state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnderWay {
    /// The environment's canonical id, checked on restore.
    env_id: String,
    obs: Vec<f32>,
    sums: Vec<EpisodeSum>,
    env: EnvState,
}

const CARRY: &str = "carry/";

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
        let mut tensors: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| (format!("{}{n}", crate::agent::MODEL), t))
            .collect();
        tensors.extend(self.optim.state());
        let under_way = self.collector.carry.as_ref().and_then(|c| {
            let env = self.collector.env.save_state()?;
            tensors.extend(carry_tensors(&c.state));
            Some(UnderWay {
                env_id: self.collector.env.spec().id.clone(),
                obs: c.obs.clone(),
                sums: c.sums.clone(),
                env,
            })
        });
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let tensors = tensors
            .into_iter()
            .map(|(n, t)| (n, t.detach().to_device(Device::Cpu)))
            .collect();
        Snapshot {
            tensors,
            progress: self.progress.clone(),
            under_way,
        }
    }

    /// Continues from `snapshot`: the next update is the one that followed it, with the
    /// episodes that were under way (truncated rollouts, native environments). Every tensor
    /// and the environments' state are checked before anything is copied, so a checkpoint
    /// that does not fit changes nothing.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<(), TrainError> {
        let tensors: HashMap<String, Tensor> = snapshot
            .tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        let model =
            crate::agent::matched_weights(&self.vs, &tensors).map_err(TrainError::Mismatch)?;
        let optim = self
            .optim
            .matched_state(&tensors)
            .map_err(TrainError::Mismatch)?;
        let carry = match &snapshot.under_way {
            Some(under_way) if !self.collector.whole_episode => {
                Some(self.matched_carry(under_way, &tensors)?)
            }
            _ => None,
        };
        model.copy();
        optim.copy();
        self.optim.set_steps(snapshot.progress.updates);
        self.progress = snapshot.progress.clone();
        self.collector.carry = carry;
        Ok(())
    }

    /// The carry that `under_way` and the `carry/` tensors describe, with the environments
    /// already put back where they were (the last step of a restore that can fail).
    fn matched_carry(
        &mut self,
        under_way: &UnderWay,
        tensors: &HashMap<String, Tensor>,
    ) -> Result<Carry, TrainError> {
        let b = self.collector.env.num_envs();
        let mismatch = |what: String| {
            TrainError::Mismatch(format!("the episodes under way do not fit: {what}"))
        };
        let spec = self.collector.env.spec();
        if under_way.env_id != spec.id {
            return Err(mismatch(format!(
                "they were saved from `{}`, and this run steps `{}`",
                under_way.env_id, spec.id
            )));
        }
        let obs_len = b * spec.obs_dim;
        if under_way.obs.len() != obs_len || under_way.sums.len() != b {
            return Err(mismatch(format!(
                "they hold {} observation values and {} episodes where this batch needs {obs_len} and {b}",
                under_way.obs.len(),
                under_way.sums.len()
            )));
        }
        let state = self.ac.initial_state(b as i64);
        let targets = carry_tensors(&state);
        if let Some(extra) = crate::restore::unexpected(&targets, tensors, CARRY) {
            return Err(mismatch(format!("the model has no state `{extra}`")));
        }
        let matched =
            crate::restore::matched(&targets, tensors, "recurrent state").map_err(mismatch)?;
        self.collector.env.load_state(&under_way.env)?;
        matched.copy();
        Ok(Carry {
            obs: under_way.obs.clone(),
            state,
            sums: under_way.sums.clone(),
        })
    }
}

/// A carried state's tensors under their snapshot names, `carry/<name>`.
fn carry_tensors(state: &State) -> Vec<(String, Tensor)> {
    state
        .named()
        .into_iter()
        .map(|(n, t)| (format!("{CARRY}{n}"), t.shallow_clone()))
        .collect()
}
