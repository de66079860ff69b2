//! Advantage actor-critic for recurrent and plastic policies (`docs/a2c.md`).
mod config;
mod losses;
mod memory;
mod optim;
mod returns;
mod reward_scale;
mod rollout;
mod snapshot;
mod stats;
mod trainer;

pub use config::{A2cConfig, Algorithm, ConfigError, OptimConfig, RolloutLen, Schedule};
pub use memory::training_needs;
pub use optim::{Optimizer, StepReport};
pub use returns::{gae, RolloutData};
pub use reward_scale::RunningStats;
pub use snapshot::{Snapshot, UnderWay};
pub use stats::{EpisodeEnd, Progress, UpdateStats, RECENT};
pub use trainer::{TrainError, Trainer, TrainerConfig};

use tch::{Device, Kind, Tensor};

/// A tensor's values on the host, flattened, as `f32`.
fn host_f32(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(
        t.detach()
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .flatten(0, -1),
    )
    .expect("a float tensor")
}
