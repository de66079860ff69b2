//! A trained agent: the actor-critic a checkpoint holds, and the environment it acts in. The
//! trainer, the CLI's evaluation and the Python module build networks through this module
//! only, so a network is made one way.
use crate::checkpoint::{self, Checkpoint, CheckpointError};
use crate::cores::{CoreConfig, CoreConfigError};
use crate::ActorCritic;
use plastic_envs::registry::EnvId;
use plastic_envs::{EnvError, EnvSpec, Environment};
use std::collections::HashMap;
use std::path::Path;
use tch::{nn, Device, Tensor};

/// Snapshot names of the model's variables: `model/<variable>`.
pub(crate) const MODEL: &str = "model/";

/// An actor-critic and the environment it was trained on.
pub struct Agent {
    vs: nn::VarStore,
    model: ActorCritic,
    env: EnvId,
    spec: EnvSpec,
    /// Environment steps it was trained for.
    env_steps: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Core(#[from] CoreConfigError),
    #[error(
        "the agent was trained on `{trained}` ({obs_dim} observations, {num_actions} \
         {kind} actions) and cannot act in `{other}` ({other_obs_dim} observations, \
         {other_num_actions} {other_kind} actions)"
    )]
    Misfit {
        trained: String,
        obs_dim: usize,
        num_actions: usize,
        kind: &'static str,
        other: String,
        other_obs_dim: usize,
        other_num_actions: usize,
        other_kind: &'static str,
    },
    /// The checkpoint's tensors do not fit the network its config describes.
    #[error("checkpoint `{path}` does not fit its own config: {reason}")]
    Mismatch { path: String, reason: String },
}

impl Agent {
    /// The agent of a checkpoint folder, or of a run folder's newest good checkpoint, on
    /// `device`.
    pub fn load(path: &Path, device: Device) -> Result<Self, AgentError> {
        Self::from_checkpoint(&checkpoint::load(path)?, device)
    }

    /// The agent of a checkpoint already read. It acts with its run's CPU threads
    /// (`run.threads`), all of them libtorch's: its steps are libtorch operations.
    pub fn from_checkpoint(checkpoint: &Checkpoint, device: Device) -> Result<Self, AgentError> {
        let env = checkpoint.agent.env.id.clone();
        plastic_envs::gym::use_python_path(&checkpoint.agent.env.python_path)?;
        let spec = env.env().build(1)?.spec().clone();
        // The weights replace the initial draw, so the seed does not matter.
        let (vs, model) = build(&spec, &checkpoint.agent.core, 0, device)?;
        let tensors: HashMap<String, Tensor> = checkpoint
            .snapshot
            .tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        matched_weights(&vs, &tensors)
            .map_err(|reason| AgentError::Mismatch {
                path: checkpoint.path.display().to_string(),
                reason,
            })?
            .copy();
        crate::threads::assign(checkpoint.agent.run.threads, false);
        Ok(Self {
            vs,
            model,
            env,
            spec,
            env_steps: checkpoint.snapshot.progress.env_steps,
        })
    }

    pub fn model(&self) -> &ActorCritic {
        &self.model
    }

    /// The network's variables (under `ac/`), as the checkpoint holds them under `model/`.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// The environment it was trained on.
    pub fn env(&self) -> &dyn Environment {
        self.env.env()
    }

    /// Observation size, action count and episode length of that environment.
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// An error unless it can act in an environment of `spec`'s sizes (observations and
    /// actions as many, and of the same kind, as in the one it was trained on).
    pub fn check_fits(&self, spec: &EnvSpec) -> Result<(), AgentError> {
        let own = &self.spec;
        let sizes = |s: &EnvSpec| (s.obs_dim, s.num_actions, s.action_box.is_some());
        if sizes(own) == sizes(spec) {
            return Ok(());
        }
        Err(AgentError::Misfit {
            trained: own.id.clone(),
            obs_dim: own.obs_dim,
            num_actions: own.num_actions,
            kind: action_kind(own),
            other: spec.id.clone(),
            other_obs_dim: spec.obs_dim,
            other_num_actions: spec.num_actions,
            other_kind: action_kind(spec),
        })
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Environment steps it was trained for.
    pub fn env_steps(&self) -> u64 {
        self.env_steps
    }
}

/// `discrete` or `continuous`, for messages.
fn action_kind(spec: &EnvSpec) -> &'static str {
    match spec.action_box {
        Some(_) => "continuous",
        None => "discrete",
    }
}

/// A fresh actor-critic for `spec` with `core`, its initial weights drawn from `seed`, in a
/// var store of its own on `device` (variables under `ac/`).
pub(crate) fn build(
    spec: &EnvSpec,
    core: &CoreConfig,
    seed: u64,
    device: Device,
) -> Result<(nn::VarStore, ActorCritic), CoreConfigError> {
    let vs = nn::VarStore::new(device);
    // libtorch's generator is global: hold it from seeding to the last draw, so that
    // networks built on other threads cannot interleave their draws with these.
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tch::manual_seed(seed as i64);
    let path = vs.root() / "ac";
    let model = ActorCritic::new(&path, spec.obs_dim as i64, spec.num_actions as i64, core)?;
    let model = match spec.action_box {
        Some(_) => model.with_gaussian_policy(&path),
        None => model,
    };
    Ok((vs, model))
}

/// The snapshot's `model/` tensors paired with the variables of `vs`: every variable must be
/// there with its shape, and no other model tensor may be. Nothing is copied yet.
pub(crate) fn matched_weights(
    vs: &nn::VarStore,
    tensors: &HashMap<String, Tensor>,
) -> Result<crate::restore::Matched, String> {
    let targets: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, var)| (format!("{MODEL}{name}"), var))
        .collect();
    if let Some(extra) = crate::restore::unexpected(&targets, tensors, MODEL) {
        let extra = &extra[MODEL.len()..];
        return Err(format!(
            "the checkpoint has variable `{extra}`, which the configured model does not"
        ));
    }
    crate::restore::matched(&targets, tensors, "variable")
}
