mod bench;
mod envs;
mod eval;
mod info;
mod rollout;
mod train;

use crate::cli::{BenchTarget, Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(args) => train::train(&args),
        Command::Resume(args) => train::resume(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Envs { json } => envs::run(json),
        Command::Rollout(args) => rollout::run(&args),
        Command::Bench {
            target: BenchTarget::Env(args),
        } => bench::env(&args),
        Command::Bench {
            target: BenchTarget::Core(args),
        } => bench::core(&args),
        Command::Bench {
            target: BenchTarget::Train(args),
        } => bench::train(&args),
        Command::Info { json } => info::run(json),
    }
}
