//! What to do about an error. The libraries state what went wrong; what a user does next
//! names this program's commands, flags and scripts, so it is said here.
use plastic_agents::a2c::TrainError;
use plastic_agents::device::DeviceError;
use plastic_agents::AgentError;
use plastic_envs::EnvError;

/// The advice for the first error in `err`'s chain that has one.
pub fn advice(err: &anyhow::Error) -> Option<&'static str> {
    err.chain().find_map(|cause| {
        let env = cause
            .downcast_ref::<EnvError>()
            .or_else(|| match cause.downcast_ref::<TrainError>() {
                Some(TrainError::Env(e)) => Some(e),
                _ => None,
            })
            .or_else(|| match cause.downcast_ref::<AgentError>() {
                Some(AgentError::Env(e)) => Some(e),
                _ => None,
            });
        if let Some(e) = env {
            return for_env(e);
        }
        if let Some(e) = cause.downcast_ref::<TrainError>() {
            return for_training(e);
        }
        match cause.downcast_ref::<DeviceError>() {
            Some(DeviceError::NoCuda { .. }) => Some("check `nvidia-smi`, or use `--device cpu`"),
            None => None,
        }
    })
}

fn for_training(err: &TrainError) -> Option<&'static str> {
    match err {
        TrainError::NonFinite { .. } => {
            Some("lower optim.lr or a2c.max_grad_norm in the run's config.toml and resume")
        }
        TrainError::EnvNonFinite { .. } => {
            Some("fix the environment, or clean its outputs with a wrapper")
        }
        TrainError::NoEpisodeLength { .. } => {
            Some("set a2c.rollout_len to a number of steps (e.g. 128)")
        }
        TrainError::Counters { .. } => {
            Some("delete that checkpoint folder to resume from the one before it")
        }
        _ => None,
    }
}

fn for_env(err: &EnvError) -> Option<&'static str> {
    match err {
        EnvError::UnknownEnv { .. } | EnvError::UnknownParam { .. } => {
            Some("`plastic envs` lists every environment and its parameters")
        }
        EnvError::GymNotBuilt { .. } => {
            Some("rebuild with the `gym` feature (on by default: `cargo build --release`)")
        }
        EnvError::GymSetup { .. } => Some(
            "install plastic's Python environment with `scripts/setup.sh` (it includes \
             gymnasium), or `pip install gymnasium` into a virtual environment of the same \
             Python version and activate it (VIRTUAL_ENV) before running plastic",
        ),
        _ => None,
    }
}
