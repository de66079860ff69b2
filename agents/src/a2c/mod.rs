//! Advantage actor-critic for recurrent and plastic policies (`docs/a2c.md`).
mod config;
mod memory;
mod optim;
mod returns;
mod reward_scale;
mod trainer;

pub use config::{A2cConfig, Algorithm, ConfigError, OptimConfig, RolloutLen, Schedule};
pub use memory::{training_needs, MemoryNeed};
pub use optim::{Optimizer, StepReport};
pub use returns::{gae, RolloutData};
pub use reward_scale::RunningStats;
pub use trainer::{
    EpisodeEnd, Progress, Snapshot, TrainError, Trainer, TrainerConfig, UnderWay, UpdateStats,
    RECENT,
};
