//! The one set of defaults a config that names only its environment trains with (`plastic
//! train --env ID`, a file of `[env]` and `[run]` keys, Python's `Trainer(env)`): recurrent PPO
//! with sb3-contrib's settings where they learn, on an LSTM of 64 (docs/getting-started.md,
//! "Which config to start from"). A config that names
//! any other section keeps every section's built-in defaults, so each config written before
//! these defaults existed trains exactly as it did.
use crate::config::{EnvSection, ExperimentConfig, LogConfig, RunConfig};
use plastic_agents::a2c::{A2cConfig, OptimConfig, PpoConfig, RolloutLen, Schedule};
use plastic_agents::cores::{CoreKind, InitScheme, Modulation};
use plastic_agents::encoders::EncoderConfig;
use plastic_agents::CoreConfig;
use plastic_envs::registry::EnvId;

/// The sections a config may name and still take the starting defaults: what it trains on,
/// and for how long, from which seed, where. Neither changes what the algorithm is.
const NEUTRAL_SECTIONS: [&str; 2] = ["run", "env"];

/// Whether a config naming `sections` (the file's, and a Python dict's; never `--set`'s) takes
/// the starting defaults.
pub fn applies<'a>(mut sections: impl Iterator<Item = &'a str>) -> bool {
    sections.all(|s| NEUTRAL_SECTIONS.contains(&s))
}

/// Every key at its starting default, training on `env`.
pub fn config(env: EnvId) -> ExperimentConfig {
    ExperimentConfig {
        run: RunConfig::default(),
        env: EnvSection {
            id: env,
            // Four minibatches of four whole rows.
            num_envs: 16,
            python_path: Vec::new(),
        },
        core: CoreConfig {
            kind: CoreKind::Lstm,
            hidden: 64,
            // A plain core takes no neuromodulation.
            modulation: Modulation::None,
            init: InitScheme::Orthogonal,
            ..CoreConfig::default()
        },
        encoder: EncoderConfig::default(),
        a2c: A2cConfig {
            // sb3-contrib's `n_steps`: state carries over between rollouts, returns bootstrap.
            // Rollouts of 32 with 4 passes left CartPole unsolved (peaks near 150, collapses).
            rollout_len: RolloutLen::Steps(128),
            gamma: 0.99,
            gae_lambda: 0.95,
            // Not sb3-contrib's 0.5: here the critic shares the core, and at 0.5 its loss
            // drowns the policy's gradient (the Python bandit stayed at random's 10 per
            // episode at 0.5 and reached 16.7 in 300,000 steps at 0.05).
            value_coef: 0.05,
            // sb3-contrib's is 0; a little keeps the bandits exploring.
            entropy_coef: 0.01,
            normalize_advantages: true,
            max_grad_norm: 0.5,
            ..A2cConfig::default()
        },
        ppo: Some(PpoConfig {
            // sb3-contrib's 10 passes: CartPole reached 491 after 600,000 steps, where 4 did not.
            n_epochs: 10,
            minibatches: 4,
            ..PpoConfig::default()
        }),
        optim: OptimConfig {
            // sb3-contrib's 3e-4 learns the bandits slowly; decayed to 0, so that a run ends
            // on a settled policy (CartPole's 475 is judged on the final checkpoint).
            lr: 3e-3,
            schedule: Schedule::Linear,
            eps: 1e-5,
            ..OptimConfig::default()
        },
        log: LogConfig {
            // Every 100,000 steps (updates of 2,048), on 100 whole episodes: 500 of CartPole's
            // 500 steps each would cost more than the training between them.
            eval_every: 50,
            eval_episodes: 100,
            ..LogConfig::default()
        },
    }
}
