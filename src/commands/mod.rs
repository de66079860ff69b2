mod bench;
mod envs;
mod info;
mod rollout;

use crate::cli::{BenchTarget, Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Envs { json } => envs::run(json),
        Command::Rollout(args) => rollout::run(&args),
        Command::Bench {
            target: BenchTarget::Env(args),
        } => bench::env(&args),
        Command::Bench {
            target: BenchTarget::Core(args),
        } => bench::core(&args),
        Command::Info { json } => info::run(json),
    }
}
