//! Command-line arguments.
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "plastic",
    version,
    about = "Reinforcement learning with plastic recurrent policies"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the environments with their observation size, action count and parameters.
    Envs {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a reference policy for whole episodes and report mean reward (and regret).
    Rollout(RolloutArgs),
    /// Measure throughput.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
    /// Show what libtorch can use here (CUDA devices, CPU threads).
    Info {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct RolloutArgs {
    /// Environment id, e.g. `maze`, `maze:size=9,len=100`, `bandit-dependent-easy`.
    pub env: String,
    /// Reference policy: `random`; `oracle` (maze); `greedy`, `thompson`, `ucb1`, `gittins`,
    /// `bayes` (bandits).
    #[arg(long, default_value = "random")]
    pub policy: String,
    /// Number of whole episodes to run.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub episodes: u64,
    /// Environments stepped together.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// Environment steps per second (observation writing included, policy excluded).
    Env(BenchEnvArgs),
}

#[derive(Debug, clap::Args)]
pub struct BenchEnvArgs {
    /// Environment id.
    pub env: String,
    /// Environments stepped together.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Seconds to measure for (after a short warm-up).
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    #[arg(long)]
    pub json: bool,
}
