//! Advantage actor-critic for recurrent and plastic policies (`specs/a2c.md`).
mod config;
mod optim;
mod restore;
mod returns;
mod reward_scale;
mod trainer;

pub use config::{A2cConfig, Algorithm, ConfigError, OptimConfig, RolloutLen, Schedule};
pub use optim::Optimizer;
pub use returns::{gae, RolloutData};
pub use reward_scale::RunningStats;
pub use trainer::{
    load_model, EpisodeEnd, Progress, Snapshot, TrainError, Trainer, TrainerConfig, UnderWay,
    UpdateStats, RECENT,
};
