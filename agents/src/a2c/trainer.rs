//! The on-policy loop: collect a rollout from `B` environments, then A2C's or PPO's train
//! step over it. Whole-episode and truncated rollouts share this one code path.
//! The trainer owns the parts (collection, losses, snapshots, statistics, reward scaling) and
//! is their one public entry point, so callers depend on none of them.
use super::config::TrainerConfig;
use super::errors::TrainError;
use super::gradient_step::NonFinite;
use super::optim::Optimizer;
use super::ppo_step::{self, Unroll};
use super::reward_scale::RewardScale;
use super::rollout::Collector;
use super::snapshot::{self, Snapshot};
use super::stats::{self, Progress, UpdateStats};
use super::train_dropout;
use super::train_noise::{self, Perturbed};
use super::{a2c_step, losses::Rates};
use crate::actor_critic::ActorCritic;
use crate::cores::Engine;
use crate::metrics::MetricsSink;
use plastic_envs::VecEnv;
use std::rc::Rc;
use tch::{nn, Device};

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
        if let Some(ppo) = &config.ppo {
            ppo.validate(env.num_envs())?;
        }
        let collector = Collector::new(env, &config.a2c, seed)?;
        let spec = collector.env.spec();
        let (vs, ac) = crate::agent::build(spec, &config.core, &config.encoder, seed, device)?;
        let engine = train_dropout::engine(&config.a2c, &ac.core)?;
        train_noise::check(&config.a2c, config.ppo.is_some(), &ac)?;
        let optim = Optimizer::new(&vs, &config.optim);
        let per_update = (collector.env.num_envs() * collector.steps) as u64;
        let reward_scale = RewardScale::new(&config.a2c);
        // The trainer sets up its own threads, so that every front end (the CLI, the
        // library's example, a program of its own) trains with the configured count.
        crate::threads::assign(
            config.threads,
            crate::cores::steps_on_host(&ac.core, engine),
        );
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

    /// Collects one rollout and learns from it: one gradient step (A2C) or PPO's passes.
    pub fn update(&mut self) -> Result<UpdateStats, TrainError> {
        let update = self.progress.updates;
        let ac = Rc::clone(&self.ac);
        let unroll = Unroll {
            engine: self.engine,
            checkpoints: self.config.a2c.trace_checkpoint_every,
        };
        let rates = Rates {
            lr: self.config.optim.lr_at(update, self.total_updates),
            entropy_coef: self.config.a2c.entropy_at(update, self.total_updates),
        };
        let mut collect = |collector: &mut Collector| {
            collector.collect(
                &ac,
                unroll.engine,
                unroll.checkpoints,
                update,
                self.reward_scale.as_ref(),
                &mut self.progress.return_stats,
            )
        };
        let a2c = &self.config.a2c;
        let (rollout, learnt) = match &self.config.ppo {
            // A2C backpropagates through the tape collection recorded.
            None => {
                let seed = self.collector.seed;
                let noise = Perturbed::start(&ac, a2c, seed, update)?;
                let (rollout, tape) = collect(&mut self.collector)?;
                let restore = || noise.iter().for_each(Perturbed::restore);
                let learnt = a2c_step::train(
                    &ac,
                    &mut self.optim,
                    a2c,
                    (&rates, &rollout),
                    tape,
                    &restore,
                );
                (rollout, learnt)
            }
            // PPO re-runs the rollout, so collection records no graph.
            Some(ppo) => {
                let (rollout, _) = tch::no_grad(|| collect(&mut self.collector))?;
                let run = (self.collector.seed, update);
                let learnt = ppo_step::train(
                    &ac,
                    &mut self.optim,
                    &unroll,
                    a2c,
                    ppo,
                    &rates,
                    &rollout,
                    run,
                );
                (rollout, learnt)
            }
        };
        let losses = learnt.map_err(|NonFinite(what)| TrainError::NonFinite {
            what,
            update: update + 1,
        })?;
        let stats = UpdateStats::new(losses, rollout, rates.lr, rates.entropy_coef);
        self.progress.record(&stats);
        // Kept where it is not the update count (PPO's several steps, a run that switched
        // algorithm), so that A2C's checkpoints read as they always did.
        let steps = self.optim.steps();
        self.progress.optim_steps = (steps != self.progress.updates).then_some(steps);
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
