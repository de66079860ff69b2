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
            // sb3-contrib's vf_coef. The critic shares the core, so this weight is only safe
            // with the rewards scaled (below): unscaled, 0.5 drowned the policy's gradient
            // (the Python bandit stayed at random's 10 per episode). Scaled, 0.05 starved the
            // critic on the maze (explained variance near 0, held-out 21.7 after 200,000
            // steps), where 0.5 reached 34.7.
            value_coef: 0.5,
            // sb3-contrib's is 0; a little keeps the bandits exploring.
            entropy_coef: 0.01,
            normalize_advantages: true,
            // Returns scaled to a unit spread, whatever the task's reward and horizon: at γ
            // 0.99 a 100-pull bandit's returns near 50 made the value loss's gradient fill the
            // norm bound below (norms 2-30 against 0.5; KL per update 0.005), and the
            // dependent-easy bandit stayed at random's regret (43.7, random 39.9); scaled, its
            // regret was 0.81 after 500,000 steps (0.69 with `value_coef` 0.5; Thompson 2.1).
            normalize_rewards: true,
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
