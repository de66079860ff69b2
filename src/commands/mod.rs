mod bench;
mod compare;
mod config;
mod envs;
mod eval;
mod info;
mod perturb;
mod rollout;
mod spectra;
mod sweep;
pub mod train;

use crate::cli::{BenchTarget, Cli, Command};
use std::process::ExitCode;

/// Runs a command; its exit status on success (130 for training stopped by a signal).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let done = |()| ExitCode::SUCCESS;
    match cli.command {
        Command::Train(args) => train::train(&args).map(train::Ended::exit_code),
        Command::Config(args) => config::run(&args).map(done),
        Command::Resume(args) => train::resume(&args).map(train::Ended::exit_code),
        Command::Sweep(args) => sweep::run(args),
        Command::Compare(args) => compare::run(&args).map(done),
        Command::Eval(args) => eval::run(&args).map(done),
        Command::Perturb(args) => perturb::run(&args).map(done),
        Command::Spectra(args) => spectra::run(&args).map(done),
        Command::Envs { json } => envs::run(json).map(done),
        Command::Rollout(args) => rollout::run(&args).map(done),
        Command::Bench {
            target: BenchTarget::Env(args),
        } => bench::env(&args).map(done),
        Command::Bench {
            target: BenchTarget::Core(args),
        } => bench::core(&args).map(done),
        Command::Bench {
            target: BenchTarget::Train(args),
        } => bench::train(&args).map(done),
        Command::Bench {
            target: BenchTarget::Gradients(args),
        } => bench::gradients(&args).map(done),
        Command::Bench {
            target: BenchTarget::Memory(args),
        } => bench::memory(&args).map(done),
        Command::Bench {
            target: BenchTarget::Traces(args),
        } => bench::traces(&args).map(done),
        Command::Info { json } => info::run(json).map(done),
    }
}
