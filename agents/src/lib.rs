//! Plastic recurrent cores, actor-critic heads and the A2C trainer of `plastic`, on libtorch.

#[macro_use]
pub mod options;

pub mod a2c;
pub mod acting;
pub mod actor_critic;
pub mod agent;
#[cfg(feature = "bench")]
pub mod bench;
pub mod checkpoint;
pub mod cores;
pub mod device;
pub mod encoders;
mod gaussian;
pub mod learning_dynamics;
pub mod metrics;
pub mod out_of_memory;
pub mod parameters;
pub mod perturbation;
mod restore;
pub mod spectra;
pub mod threads;

pub use actor_critic::{AcStep, ActorCritic};
pub use agent::{Agent, AgentError};
pub use cores::{Core, CoreConfig, CoreConfigError, State};
