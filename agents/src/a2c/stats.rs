//! What a run reports: the counters a checkpoint keeps, what each update measured, and how
//! both go out to a metrics sink. Kept apart from the computation of the numbers so that what
//! is reported, over which window and under which tag, is decided in one place.
use super::host_f32;
use super::losses::{Losses, PpoStats};
use super::reward_scale::RunningStats;
use super::rollout::{EpisodeEnd, Rollout};
use crate::cores::Core;
use crate::metrics::{tags, MetricsSink};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use tch::{Kind, Tensor};

/// How far a run has got; saved with every checkpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Progress {
    pub updates: u64,
    pub env_steps: u64,
    pub episodes: u64,
    /// Returns, lengths and (bandits) regrets of the last [`RECENT`] finished episodes.
    pub recent: VecDeque<EpisodeEnd>,
    /// Discounted returns seen so far, for `a2c.normalize_rewards`.
    #[serde(default)]
    pub return_stats: RunningStats,
    /// Optimiser steps taken (Adam's bias correction), where they are not the update count
    /// (PPO): left out of A2C's checkpoints, which read as they always did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optim_steps: Option<u64>,
}

/// Episodes averaged for `rollout/ep_rew_mean` (Stable-Baselines3's window).
pub const RECENT: usize = 100;

impl Progress {
    pub fn mean_return(&self) -> Option<f64> {
        self.mean(|e| Some(e.ret))
    }

    pub fn mean_len(&self) -> Option<f64> {
        self.mean(|e| Some(e.len as f64))
    }

    pub fn mean_regret(&self) -> Option<f64> {
        self.mean(|e| e.regret)
    }

    fn mean(&self, f: impl Fn(&EpisodeEnd) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.recent.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// Counts one more update and the episodes it finished.
    pub(super) fn record(&mut self, stats: &UpdateStats) {
        self.updates += 1;
        self.env_steps += stats.env_steps;
        self.episodes += stats.episodes.len() as u64;
        for e in &stats.episodes {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(*e);
        }
    }
}

/// What one update measured.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateStats {
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub explained_variance: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// ‖Δθ‖ / ‖θ‖ of this update's step: far above 1 when training explodes.
    pub update_ratio: f64,
    pub learning_rate: f64,
    /// Weight of the entropy bonus in this update.
    pub entropy_coef: f64,
    pub env_steps: u64,
    pub episodes: Vec<EpisodeEnd>,
    /// Mean |Hebb| at the end of the rollout (plastic cores).
    pub mean_abs_hebb: Option<f64>,
    /// Mean |E| of the eligibility trace at the end of the rollout (retroactive modulation).
    pub mean_abs_elig: Option<f64>,
    /// Mean and standard deviation of the modulator over the rollout (neuromodulated cores).
    pub modulator: Option<(f64, f64)>,
    /// PPO's own measures (PPO runs).
    pub ppo: Option<PpoStats>,
}

impl UpdateStats {
    /// What an update measured: `losses` when it learnt from `rollout` at learning rate
    /// `learning_rate` with entropy weight `entropy_coef`.
    pub(super) fn new(
        losses: Losses,
        rollout: Rollout,
        learning_rate: f64,
        entropy_coef: f64,
    ) -> Self {
        let Losses {
            policy_loss,
            value_loss,
            entropy,
            explained_variance,
            grad_norm,
            update_ratio,
            ppo,
        } = losses;
        Self {
            policy_loss,
            value_loss,
            entropy,
            explained_variance,
            grad_norm,
            update_ratio,
            learning_rate,
            entropy_coef,
            env_steps: (rollout.batch * rollout.outputs.len()) as u64,
            mean_abs_hebb: rollout.mean_abs_hebb,
            mean_abs_elig: rollout.mean_abs_elig,
            modulator: (!rollout.modulators.is_empty()).then(|| {
                let m = Tensor::stack(&rollout.modulators, 0).to_kind(Kind::Double);
                // One value (one row, one step, a scalar modulator) has no spread, not NaN.
                let std = match m.numel() {
                    0 | 1 => 0.0,
                    _ => m.std(true).double_value(&[]),
                };
                (m.mean(Kind::Double).double_value(&[]), std)
            }),
            episodes: rollout.finished,
            ppo,
        }
    }

    /// Writes the a2c.md tags of this update (the `rollout/` ones from `progress`).
    pub fn log(&self, progress: &Progress, sink: &mut dyn MetricsSink) {
        let step = progress.env_steps;
        let mut put = |tag: &str, v: f64| sink.scalar(tag, step, v);
        if let Some(v) = progress.mean_return() {
            put(tags::rollout::EP_REW_MEAN, v);
        }
        if let Some(v) = progress.mean_len() {
            put(tags::rollout::EP_LEN_MEAN, v);
        }
        if let Some(v) = progress.mean_regret() {
            put(tags::rollout::REGRET_MEAN, v);
        }
        // PPO runs report under sb3-contrib's tags, the entropy as its loss term `−H(π)`.
        match self.ppo {
            Some(_) => put(tags::train::POLICY_GRADIENT_LOSS, self.policy_loss),
            None => put(tags::train::POLICY_LOSS, self.policy_loss),
        }
        put(tags::train::VALUE_LOSS, self.value_loss);
        match self.ppo {
            Some(_) => put(tags::train::ENTROPY_LOSS, -self.entropy),
            None => put(tags::train::ENTROPY, self.entropy),
        }
        put(tags::train::EXPLAINED_VARIANCE, self.explained_variance);
        put(tags::train::GRAD_NORM, self.grad_norm);
        put(tags::train::UPDATE_RATIO, self.update_ratio);
        put(tags::train::LEARNING_RATE, self.learning_rate);
        put(tags::train::ENTROPY_COEF, self.entropy_coef);
        if let Some(ppo) = &self.ppo {
            put(tags::train::CLIP_FRACTION, ppo.clip_fraction);
            put(tags::train::APPROX_KL, ppo.approx_kl);
            put(tags::train::LOSS, ppo.loss);
            put(tags::train::N_UPDATES, ppo.n_updates as f64);
            put(tags::train::CLIP_RANGE, ppo.clip_range);
            if let Some(v) = ppo.clip_range_vf {
                put(tags::train::CLIP_RANGE_VF, v);
            }
        }
        if progress.return_stats.count > 0.0 {
            // What `a2c.normalize_rewards` divides rewards by.
            put(tags::train::RETURN_STD, progress.return_stats.var.sqrt());
        }
        if let Some(v) = self.mean_abs_hebb {
            put(tags::plasticity::MEAN_ABS_HEBB, v);
        }
        if let Some(v) = self.mean_abs_elig {
            put(tags::plasticity::MEAN_ABS_ELIG, v);
        }
        if let Some((mean, std)) = self.modulator {
            put(tags::plasticity::MODULATOR_MEAN, mean);
            put(tags::plasticity::MODULATOR_STD, std);
        }
    }
}

/// Histograms of the plasticity coefficients α, the fixed recurrent weights W, (where
/// learned) η, plus η's mean as a scalar, and STPN's λ and γ, at environment step `step`.
pub(super) fn log_parameters(core: &Core, step: u64, sink: &mut dyn MetricsSink) {
    sink.histogram(tags::weights::W, step, &host_f32(core.w()));
    if let Some(alpha) = core.alpha() {
        sink.histogram(tags::weights::ALPHA, step, &host_f32(alpha));
    }
    if let Some(stp) = core.stp() {
        sink.histogram(tags::weights::STP_LAMBDA, step, &host_f32(stp.lambda()));
        sink.histogram(tags::weights::STP_GAMMA, step, &host_f32(stp.gamma()));
    }
    for (histogram, mean, eta) in [
        (tags::weights::ETA, tags::plasticity::ETA, core.eta()),
        (tags::weights::ETA_E, tags::plasticity::ETA_E, core.eta_e()),
    ] {
        if let Some(eta) = eta {
            let values = host_f32(eta);
            sink.histogram(histogram, step, &values);
            let m = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
            sink.scalar(mean, step, m);
        }
    }
}
