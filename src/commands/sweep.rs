//! `plastic sweep`: start or continue a sweep, show where it stands, or train one of its runs.
use super::train::{self, Ended};
use crate::cli::{Backend, ResumeArgs, SweepArgs, SweepCommand, DEFAULT_OUT};
use crate::interrupt::EXIT_INTERRUPTED;
use crate::output::emit;
use crate::run_dir::{shell_word, Busy, RunDir};
use crate::sweep::local::{counts, describe};
use crate::sweep::{local, slurm, status, Sweep, ERROR, EXIT_BUSY};
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: SweepArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(SweepCommand::Status { dir, json }) => {
            show_status(dir, *json).map(|()| ExitCode::SUCCESS)
        }
        Some(SweepCommand::Task { dir, index }) => task(dir, *index),
        None => start(&args),
    }
}

fn start(args: &SweepArgs) -> anyhow::Result<ExitCode> {
    let file = args
        .file
        .as_deref()
        .context("give a sweep file (`plastic sweep configs/sweeps/<name>.toml`), or `plastic sweep status <dir>`")?;
    let (sweep, sweep_file) = Sweep::prepare(file, &args.out)?;
    let threads = sweep
        .manifest
        .runs
        .iter()
        .map(|r| r.threads)
        .max()
        .unwrap_or(1)
        .max(1);
    let n = sweep.manifest.runs.len();
    let status_hint = format!("plastic sweep status {}", shell_word(&sweep.dir));
    match args.backend {
        Backend::Local => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let jobs = args.jobs.map_or((cores / threads).max(1), |j| j as usize);
            eprintln!(
                "sweep {}: {n} runs in {}, {jobs} at a time (logs: <run>/{})",
                sweep.manifest.name,
                sweep.dir.display(),
                crate::sweep::LOG
            );
            let outcome = local::run(&sweep, jobs, args.retry_failed)?;
            let again = continue_command(args, file);
            if outcome.stopped {
                eprintln!("stopped: every running run saved a checkpoint; continue with: {again}");
                return Ok(ExitCode::from(EXIT_INTERRUPTED));
            }
            if outcome.failed > 0 {
                anyhow::bail!(
                    "{} of {n} runs failed (the errors above, and in <run>/{ERROR}); after a \
                     fix, train them again with: {again} --retry-failed",
                    outcome.failed
                );
            }
            if !outcome.killed.is_empty() {
                anyhow::bail!(
                    "the worker of {} was killed from outside (by a signal, maybe the kernel's \
                     out-of-memory killer; see <run>/{}) before it finished; continue with: \
                     {again}",
                    outcome.killed.join(", "),
                    crate::sweep::LOG
                );
            }
            eprintln!("compare: plastic compare {}", shell_word(&sweep.dir));
            Ok(ExitCode::SUCCESS)
        }
        Backend::Slurm => {
            let settings = slurm::Settings::from(&sweep_file.slurm, args, threads);
            match slurm::submit(&sweep, &settings, args.retry_failed)? {
                Some(id) => eprintln!(
                    "submitted job array {id} for sweep {}; follow it with: {status_hint}",
                    sweep.manifest.name
                ),
                None => eprintln!(
                    "every run of sweep {} is done (or failed: --retry-failed)",
                    sweep.manifest.name
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The command that continues this very sweep: the same file, folder and pool size.
fn continue_command(args: &SweepArgs, file: &Path) -> String {
    let mut words = vec!["plastic sweep".to_string(), shell_word(file)];
    if args.out != Path::new(DEFAULT_OUT) {
        words.push(format!("--out {}", shell_word(&args.out)));
    }
    if let Some(jobs) = args.jobs {
        words.push(format!("--jobs {jobs}"));
    }
    words.join(" ")
}

/// Trains or resumes run `index` of the sweep in `dir`. A failure is kept in the run's
/// folder for `status` and the pool's summary.
fn task(dir: &std::path::Path, index: usize) -> anyhow::Result<ExitCode> {
    let sweep = Sweep::open(dir)?;
    anyhow::ensure!(
        index < sweep.manifest.runs.len(),
        "sweep `{}` has {} runs (0 to {}); there is no run {index}",
        dir.display(),
        sweep.manifest.runs.len(),
        sweep.manifest.runs.len().saturating_sub(1)
    );
    let run = RunDir::open(&sweep.run_dir(index))?;
    let lock = match run.lock() {
        Ok(lock) => lock,
        Err(e) if e.downcast_ref::<Busy>().is_some() => {
            // Not a failure of the run: the pool waits for the other process.
            eprintln!("{e}; leaving it to that process");
            return Ok(ExitCode::from(EXIT_BUSY));
        }
        Err(e) => return Err(e),
    };
    let error = run.path.join(ERROR);
    crate::durable::remove_if_present(&error)?;
    let args = ResumeArgs {
        run: run.path.clone(),
        total_steps: None,
        device: None,
    };
    match train::resume_held(&args, &run, &lock) {
        Ok(Ended::Stopped) => {
            if crate::interrupt::time_limit() {
                slurm::requeue_self()?;
            }
            Ok(Ended::Stopped.exit_code())
        }
        Ok(Ended::Finished) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            crate::durable::write_atomic(&error, format!("{e:#}\n").as_bytes())?;
            Err(e)
        }
    }
}

fn show_status(dir: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let sweep = Sweep::open(dir)?;
    let statuses: Vec<status::RunStatus> = (0..sweep.manifest.runs.len())
        .map(|i| status::of(&sweep, i))
        .collect();
    let report = serde_json::json!({ "sweep": sweep.manifest.name, "runs": statuses });
    emit(json, &report, || {
        let mut lines = vec![format!(
            "sweep {}: {}",
            sweep.manifest.name,
            counts(&statuses)
        )];
        lines.extend(statuses.iter().map(describe));
        for s in statuses.iter().filter(|s| s.error.is_some()) {
            lines.push(format!(
                "  {}: {}",
                s.run,
                s.error.as_deref().unwrap_or_default()
            ));
        }
        lines.join("\n")
    })
}
