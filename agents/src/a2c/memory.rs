//! A lower bound of the memory a training run takes, so that a size no machine could hold is
//! refused before anything is allocated: an allocation that fails in Rust aborts the
//! process, and one the kernel over-commits ends in its out-of-memory killer.
use super::rollout::rollout_shape;
use super::trainer::{TrainError, TrainerConfig};
use crate::cores::Modulation;
use plastic_envs::EnvSpec;

/// One part of a run's memory, with the config keys it grows with.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryNeed {
    /// What it is and which keys set its size, e.g. `Hebbian traces (env.num_envs × ...)`.
    pub what: String,
    pub bytes: f64,
}

const F32: f64 = 4.0;

/// What training `config` on `num_envs` copies of `spec` needs at least: the environments,
/// the recurrent state, and what one rollout keeps for the backward pass (with the
/// hand-written pass, the leanest engine; autograd keeps about three times as much).
pub fn training_needs(
    config: &TrainerConfig,
    spec: &EnvSpec,
    num_envs: usize,
) -> Result<Vec<MemoryNeed>, TrainError> {
    let (steps, _) = rollout_shape(&config.a2c, spec)?;
    let core = &config.core;
    let (b, h, t) = (num_envs as f64, core.hidden as f64, steps as f64);
    let traces = match (core.kind.is_plastic(), core.modulation) {
        (false, _) => 0.0,
        (true, Modulation::Retroactive) => 2.0,
        (true, _) => 1.0,
    };
    let cells = if core.kind.is_lstm() { 2.0 } else { 1.0 };
    let env_bytes = spec.min_bytes_per_env() as f64;
    Ok(vec![
        MemoryNeed {
            what: format!("environments (env.num_envs = {num_envs}, {env_bytes} bytes each)"),
            bytes: b * env_bytes,
        },
        MemoryNeed {
            what: format!(
                "recurrent state and traces (env.num_envs = {num_envs} × core.hidden = {}²)",
                core.hidden
            ),
            bytes: b * (traces * h * h + cells * h) * F32,
        },
        MemoryNeed {
            what: format!(
                "the rollout kept for backpropagation (a2c.rollout_len = {steps} steps × \
                 env.num_envs = {num_envs} × core.hidden = {}²)",
                core.hidden
            ),
            // Per step and row: the traces, the cell's activations, action, reward, flags.
            bytes: t * b * ((traces * h * h + 4.0 * cells * h) * F32 + 16.0),
        },
    ])
}
