//! What a checkpoint holds of a run, and putting it back. Restoring checks every tensor and
//! the environments' state before it copies anything, so a checkpoint that does not fit
//! changes nothing; a resumed run then goes on bit for bit as the uninterrupted one would.
use super::errors::TrainError;
use super::optim::Optimizer;
use super::rollout::{Carry, Collector, EpisodeSum};
use super::stats::Progress;
use crate::actor_critic::ActorCritic;
use crate::cores::State;
use plastic_envs::EnvState;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tch::{nn, Device, Tensor};

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

/// The model's and optimiser's tensors (on the CPU), the episodes under way and the progress
/// counters.
pub(super) fn take(
    vs: &nn::VarStore,
    optim: &Optimizer,
    collector: &Collector,
    progress: &Progress,
) -> Snapshot {
    let mut tensors: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (format!("{}{n}", crate::agent::MODEL), t))
        .collect();
    tensors.extend(optim.state());
    let under_way = collector.carry.as_ref().and_then(|c| {
        let env = collector.env.save_state()?;
        tensors.extend(carry_tensors(&c.state));
        Some(UnderWay {
            env_id: collector.env.spec().id.clone(),
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
        progress: progress.clone(),
        under_way,
    }
}

/// Puts `snapshot` back into the model of `vs`, the optimiser, the collector's episodes and
/// `progress`, all or nothing.
pub(super) fn restore(
    snapshot: &Snapshot,
    vs: &nn::VarStore,
    ac: &ActorCritic,
    optim: &mut Optimizer,
    collector: &mut Collector,
    progress: &mut Progress,
) -> Result<(), TrainError> {
    let tensors: HashMap<String, Tensor> = snapshot
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    let model = crate::agent::matched_weights(vs, &tensors).map_err(TrainError::Mismatch)?;
    let optim_state = optim
        .matched_state(&tensors)
        .map_err(TrainError::Mismatch)?;
    let under_way = snapshot
        .under_way
        .as_ref()
        .filter(|_| !collector.whole_episode);
    let carry = match under_way {
        Some(under_way) => Some(matched_carry(collector, ac, under_way, &tensors)?),
        None => None,
    };
    // Every update steps the same number of environments (the batch and rollout length define
    // a run): counters that disagree were edited or damaged, and would end the run early or
    // late. Checked after the episodes under way, which name a batch that does not fit.
    let per_update = (collector.env.num_envs() * collector.steps) as u64;
    let p = &snapshot.progress;
    if p.updates.checked_mul(per_update) != Some(p.env_steps) {
        return Err(TrainError::Counters {
            updates: p.updates,
            per_update,
            env_steps: p.env_steps,
        });
    }
    // The last step that can fail: the environments put back where they were.
    if let Some(under_way) = under_way {
        collector.env.load_state(&under_way.env)?;
    }
    model.copy();
    optim_state.copy();
    let p = &snapshot.progress;
    optim.set_steps(p.optim_steps.unwrap_or(p.updates));
    *progress = snapshot.progress.clone();
    collector.carry = carry;
    Ok(())
}

/// The carry that `under_way` and the `carry/` tensors describe (the collector's environments
/// are put back by the caller, as the last step of a restore that can fail).
fn matched_carry(
    collector: &Collector,
    ac: &ActorCritic,
    under_way: &UnderWay,
    tensors: &HashMap<String, Tensor>,
) -> Result<Carry, TrainError> {
    let b = collector.env.num_envs();
    let mismatch =
        |what: String| TrainError::Mismatch(format!("the episodes under way do not fit: {what}"));
    let spec = collector.env.spec();
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
    let state = ac.initial_state(b as i64);
    let targets = carry_tensors(&state);
    if let Some(extra) = crate::restore::unexpected(&targets, tensors, CARRY) {
        return Err(mismatch(format!("the model has no state `{extra}`")));
    }
    let matched =
        crate::restore::matched(&targets, tensors, "recurrent state").map_err(mismatch)?;
    matched.copy();
    Ok(Carry {
        obs: under_way.obs.clone(),
        state,
        sums: under_way.sums.clone(),
    })
}

/// A carried state's tensors under their snapshot names, `carry/<name>`.
fn carry_tensors(state: &State) -> Vec<(String, Tensor)> {
    state
        .named()
        .into_iter()
        .map(|(n, t)| (format!("{CARRY}{n}"), t.shallow_clone()))
        .collect()
}
