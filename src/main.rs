//! `plastic`: train, evaluate and benchmark plastic recurrent policies from the command line.
use clap::Parser;

mod cli;
mod commands;
mod config;
mod out_of_memory;
mod output;
mod overrides;
mod pictures;
mod render;
mod run_dir;
mod tensorboard;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    out_of_memory::report_plainly();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
