//! A plastic RNN learns to learn a bandit, with the library alone: no CLI, no config file.
//!
//! ```sh
//! scripts/with-env.sh cargo run --release -p plastic-agents --example bandit [-- <env steps>]
//! ```
//!
//! Each episode of `bandit-dependent-easy` draws two arms that pay 1 with probabilities
//! p1 ∈ {0.1, 0.9} and p2 = 1 − p1, for 100 pulls. The agent sees only its previous pull and
//! reward, so it must find the good arm within the episode, and its Hebbian trace is where
//! it can keep what it found. A2C (the outer loop) learns the fixed weights and the
//! plasticity parameters over many episodes; the trace (the inner loop) learns within one.
//! At the end the agent is judged on held-out episodes next to a random policy and Thompson
//! sampling, by regret: the expected reward lost to always pulling the better arm.
//! `agents/tests/example.rs` runs `train_and_evaluate` on a short budget.
use plastic_agents::a2c::{A2cConfig, OptimConfig, RolloutLen, Schedule, Trainer, TrainerConfig};
use plastic_agents::acting::{ActionMode, AgentPolicy};
use plastic_agents::cores::{CoreConfig, CoreKind, Modulation};
use plastic_agents::encoders::EncoderConfig;
use plastic_envs::rollout::run_episodes;
use plastic_envs::{registry, Environment, Policy, RandomPolicy};
use std::error::Error;

const ENV: &str = "bandit-dependent-easy";
/// Episodes stepped together while training (B).
const NUM_ENVS: usize = 32;
/// Held-out episodes for the final judgement, and their seed (apart from training's).
const EVAL_EPISODES: usize = 2_000;
const EVAL_SEED: u64 = 1_000_003;

/// Mean regret per episode of the trained agent and of the two references.
#[derive(Debug)]
pub struct Report {
    pub agent: f64,
    pub random: f64,
    pub thompson: f64,
    /// The host loops' threads it trained with (`plastic_agents::threads`).
    pub threads: usize,
}

/// The network and its training: what `plastic train` reads from a config file.
fn trainer_config() -> TrainerConfig {
    TrainerConfig {
        core: CoreConfig {
            kind: CoreKind::PlasticRnn,
            hidden: 32,
            // The trace learns at a rate the network sets at every step (Backpropamine).
            modulation: Modulation::Simple,
            ..CoreConfig::default()
        },
        // Observations as they are (`auto`: images would go through convolutions).
        encoder: EncoderConfig::default(),
        a2c: A2cConfig {
            // 20 pulls per update; the recurrent state and trace carry over between updates.
            rollout_len: RolloutLen::Steps(20),
            gamma: 0.9,
            value_coef: 0.05,
            entropy_coef: 0.05,
            max_grad_norm: 4.0,
            ..A2cConfig::default()
        },
        // A2C; `Some(PpoConfig::default())` trains with PPO.
        ppo: None,
        optim: OptimConfig {
            lr: 3e-3,
            schedule: Schedule::Linear,
            eps: 1e-4,
            ..OptimConfig::default()
        },
        // CPU threads: 0 takes libtorch's choice, the machine's cores.
        threads: 0,
    }
}

/// Trains for `total_steps` environment steps from `seed`, printing progress, then judges
/// the agent on held-out episodes.
pub fn train_and_evaluate(total_steps: u64, seed: u64) -> Result<Report, Box<dyn Error>> {
    let env = registry::parse(ENV)?;
    let batch = env.build(NUM_ENVS)?;
    let mut trainer = Trainer::new(batch, trainer_config(), total_steps, seed, tch::Device::Cpu)?;
    let threads = plastic_agents::threads::loop_threads();
    let report_every = (trainer.total_updates() / 10).max(1);
    while !trainer.is_done() {
        let stats = trainer.update()?;
        let progress = trainer.progress();
        if progress.updates % report_every == 0 {
            println!(
                "{:>9} steps  regret per episode {:>6.2}  entropy {:.3}",
                progress.env_steps,
                progress.mean_regret().unwrap_or(f64::NAN),
                stats.entropy
            );
        }
    }
    let agent = regret(
        env.as_ref(),
        &mut AgentPolicy::new(
            trainer.model(),
            EVAL_EPISODES.min(256),
            ActionMode::Sample,
            EVAL_SEED,
        ),
    )?;
    let num_actions = env.build(1)?.spec().num_actions;
    let random = regret(
        env.as_ref(),
        &mut RandomPolicy::new(num_actions, EVAL_EPISODES.min(256), EVAL_SEED),
    )?;
    let thompson = regret(
        env.as_ref(),
        env.policy("thompson", EVAL_EPISODES.min(256), EVAL_SEED)?
            .as_mut(),
    )?;
    Ok(Report {
        agent,
        random,
        thompson,
        threads,
    })
}

/// Mean regret of `policy` over the held-out episodes (the same episodes for every policy).
fn regret(env: &dyn Environment, policy: &mut dyn Policy) -> Result<f64, Box<dyn Error>> {
    let mut batch = env.build(EVAL_EPISODES.min(256))?;
    let stats = run_episodes(batch.as_mut(), policy, EVAL_EPISODES, EVAL_SEED)?;
    Ok(stats
        .regret
        .ok_or("this environment reports no regret")?
        .mean)
}

// The tests include this file as a module and call `train_and_evaluate`; `main` is for
// `cargo run --example`.
#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    let steps = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .map_err(|_| format!("`{s}` is not a number of steps"))?,
        None => 1_000_000,
    };
    let r = train_and_evaluate(steps, 0)?;
    println!(
        "regret per episode on {EVAL_EPISODES} held-out episodes: agent {:.2}, random {:.2}, \
         Thompson sampling {:.2}",
        r.agent, r.random, r.thompson
    );
    Ok(())
}
