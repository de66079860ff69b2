//! `plastic`: train, evaluate and benchmark plastic recurrent policies from the command line.
use clap::Parser;

mod cli;
mod commands;
mod config;
mod output;
mod overrides;
mod pictures;
mod render;
mod run_dir;
mod tensorboard;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
