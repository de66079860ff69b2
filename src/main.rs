//! `plastic`: train, evaluate and benchmark plastic recurrent policies from the command line.
use clap::Parser;

mod chart;
mod checkpoint;
mod cli;
mod commands;
mod config;
mod durable;
mod event_files;
mod interrupt;
mod out_of_memory;
mod output;
mod overrides;
mod pending;
mod pictures;
mod progress;
mod records;
mod remedy;
mod render;
mod run_dir;
mod stats;
mod stream;
mod sweep;
mod tensorboard;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    out_of_memory::report_plainly();
    match cli.command {
        cli::Command::Train(_) | cli::Command::Resume(_) | cli::Command::Sweep(_) => {
            interrupt::install()
        }
        _ => interrupt::quiet_on_closed_pipe(),
    }
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            match remedy::advice(&err) {
                Some(advice) => eprintln!("error: {err:#}; {advice}"),
                None => eprintln!("error: {err:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}
