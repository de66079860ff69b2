//! Training under noise (`a2c.train_noise`, docs/perturbation.md): every update collects its
//! rollout and takes its gradient with the chosen parameter groups at `p·(1 + σ·ε)`, the
//! perturbation module's [`Noise`], with a new ε each update; the noiseless values are put
//! back before the optimiser steps them, so what is learnt is a network that works under
//! noise, not a noisy network.
use super::config::A2cConfig;
use super::errors::TrainError;
use crate::perturbation::Noise;
use crate::ActorCritic;
use std::cell::Cell;

/// Each update's ε is drawn from the run's seed xor this and the update's index, apart from
/// every other stream and the same on resume.
const TRAIN_NOISE_SALT: u64 = 0x7A1D_0000_0000_0000;

/// Checks, before training starts, that the core has every group `a2c.train_noise_groups`
/// names, and that the algorithm is A2C.
pub(super) fn check(a2c: &A2cConfig, ppo: bool, ac: &ActorCritic) -> Result<(), TrainError> {
    if a2c.train_noise.is_none() {
        return Ok(());
    }
    if ppo {
        return Err(TrainError::TrainNoiseWithPpo);
    }
    for group in &a2c.train_noise_groups {
        group.tensors_or_error(ac)?;
    }
    Ok(())
}

/// The groups of one update at their noisy values, until [`Perturbed::restore`] or the end
/// of the update (a failed update leaves no noise in the model either).
pub(super) struct Perturbed<'a> {
    noises: Vec<Noise<'a>>,
    restored: Cell<bool>,
}

impl<'a> Perturbed<'a> {
    /// Perturbs `ac` for update `update` of the run seeded with `seed`, as `a2c` says; `None`
    /// without `train_noise`.
    pub(super) fn start(
        ac: &'a ActorCritic,
        a2c: &A2cConfig,
        seed: u64,
        update: u64,
    ) -> Result<Option<Self>, TrainError> {
        let Some(sigma) = a2c.train_noise else {
            return Ok(None);
        };
        let draw_seed = seed ^ TRAIN_NOISE_SALT ^ update.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let noises = a2c
            .train_noise_groups
            .iter()
            .map(|&group| Noise::draw(ac, group, draw_seed))
            .collect::<Result<Vec<_>, _>>()?;
        for noise in &noises {
            noise.perturb(sigma);
        }
        Ok(Some(Self {
            noises,
            restored: Cell::new(false),
        }))
    }

    /// Puts the noiseless values back (once; later calls do nothing).
    pub(super) fn restore(&self) {
        if !self.restored.replace(true) {
            for noise in &self.noises {
                noise.restore();
            }
        }
    }
}

impl Drop for Perturbed<'_> {
    fn drop(&mut self) {
        self.restore();
    }
}
