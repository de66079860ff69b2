//! On-policy training of recurrent and plastic policies: advantage actor-critic
//! (`docs/a2c.md`) and PPO (`docs/ppo.md`), two train steps over one rollout collector.
mod a2c_step;
mod config;
mod errors;
mod gradient_step;
mod losses;
mod memory;
mod optim;
mod ppo_step;
mod returns;
mod reward_scale;
mod rollout;
mod snapshot;
mod stats;
mod train_dropout;
mod train_noise;
mod trainer;

pub use config::{
    A2cConfig, Algorithm, OptimConfig, PpoConfig, RolloutLen, Schedule, TrainerConfig,
};
pub use errors::{ConfigError, TrainError};
pub use losses::PpoStats;
pub use memory::training_needs;
pub use optim::{Optimizer, StepReport};
pub use returns::{gae, RolloutData};
pub use reward_scale::RunningStats;
pub use rollout::EpisodeEnd;
pub use snapshot::{Snapshot, UnderWay};
pub use stats::{Progress, UpdateStats, RECENT};
pub use trainer::Trainer;

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
