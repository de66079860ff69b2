//! `plastic`: train, evaluate and benchmark plastic recurrent policies from the command line.
use clap::Parser;
use plastic::{cli, commands, interrupt, out_of_memory, remedy};

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
