//! The local backend: a pool of `plastic sweep task` processes, a few at a time, with a live
//! overview. A run that fails never stops the others. The first Ctrl-C (or SIGTERM) passes
//! one SIGTERM to every worker, each of which saves a checkpoint and stops; a second kills
//! them as it exits; the same command again resumes them. Workers never outlive the pool: a
//! pool killed outright leaves them its parent-death signal, a SIGTERM (save and stop).
use super::status::{self, RunStatus, State};
use super::{Sweep, EXIT_BUSY, LOG};
use crate::interrupt;
use anyhow::Context;
use std::io::IsTerminal;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a local sweep ended.
pub struct Outcome {
    pub stopped: bool,
    /// Runs that are failed at the end (this time or before).
    pub failed: usize,
    /// Runs whose worker was killed from outside (not by the pool) before they finished.
    pub killed: Vec<String>,
}

struct Worker {
    index: usize,
    child: Child,
}

/// Trains every run of `sweep` that is not done (failed ones only with `retry_failed`),
/// `jobs` at a time. A run that another process trains (a second pool, a worker an earlier
/// pool left) takes one of the `jobs` places until it ends, and is trained here after if it
/// is not done then.
pub fn run(sweep: &Sweep, jobs: usize, retry_failed: bool) -> anyhow::Result<Outcome> {
    let n = sweep.manifest.runs.len();
    let mut queue = status::to_train(sweep, retry_failed);
    let exe = std::env::current_exe().context("cannot find the plastic executable")?;
    let mut workers: Vec<Worker> = Vec::new();
    let mut killed = Vec::new();
    let mut view = Overview::new();
    let mut stopping = false;
    loop {
        if interrupt::requested() && !stopping {
            stopping = true;
            for w in &workers {
                // One TERM each: a second would make the worker quit without saving.
                unsafe { libc::kill(w.child.id() as i32, libc::SIGTERM) };
            }
        }
        let mut children = interrupt::children();
        let mut ended = Vec::new();
        workers.retain_mut(|w| match w.child.try_wait() {
            Ok(Some(exit)) => {
                ended.push((w.index, exit));
                false
            }
            _ => true,
        });
        for (index, exit) in ended {
            if exit.code() == Some(i32::from(EXIT_BUSY)) {
                // Taken by another process between the look and the start: in line again.
                queue.insert(0, index);
            } else if exit.signal().is_some() && !stopping {
                killed.push(sweep.label(index));
            }
        }
        let statuses: Vec<RunStatus> = (0..n).map(|i| status::of(sweep, i)).collect();
        // Ended elsewhere meanwhile: done, or failed (trained again only when asked).
        queue.retain(|&i| match statuses[i].state {
            State::Done => false,
            State::Failed => retry_failed,
            _ => true,
        });
        let elsewhere = (0..n)
            .filter(|&i| statuses[i].state == State::Running)
            .filter(|&i| !workers.iter().any(|w| w.index == i))
            .count();
        while !stopping && workers.len() + elsewhere < jobs {
            let Some(at) = queue
                .iter()
                .position(|&i| statuses[i].state != State::Running)
            else {
                break;
            };
            let index = queue.remove(at);
            let child = spawn(&exe, sweep, index)?;
            children.push(child.id());
            workers.push(Worker { index, child });
        }
        *children = workers.iter().map(|w| w.child.id()).collect();
        drop(children);
        view.show(sweep, &statuses, workers.iter().map(|w| w.index));
        if workers.is_empty() && (queue.is_empty() || stopping) {
            let statuses: Vec<RunStatus> = (0..n).map(|i| status::of(sweep, i)).collect();
            view.finish(&statuses);
            let failed = statuses.iter().filter(|s| s.state == State::Failed).count();
            return Ok(Outcome {
                stopped: stopping,
                failed,
                killed,
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A worker for run `index`: its own process group, so that a Ctrl-C at the terminal reaches
/// the pool alone (which passes on one TERM), its output appended to the run's log, and a
/// SIGTERM when the pool dies, however it dies.
fn spawn(exe: &std::path::Path, sweep: &Sweep, index: usize) -> anyhow::Result<Child> {
    let log_path = sweep.run_dir(index).join(LOG);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open `{}`", log_path.display()))?;
    let pool = std::process::id() as libc::pid_t;
    let mut command = Command::new(exe);
    command
        .args(["sweep", "task"])
        .arg(&sweep.dir)
        .arg(index.to_string())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Between fork and exec: only async-signal-safe calls (prctl, getppid), no allocation.
    // The signal follows the thread that spawns, the pool's main thread, which lives as long
    // as the pool.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The pool died before the signal was set: nothing would ever send it.
            if libc::getppid() != pool {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        })
    };
    command.spawn().context("cannot start a worker process")
}

/// The live overview: redrawn in place on a terminal; elsewhere a line when the counts change
/// and at least every minute.
struct Overview {
    terminal: bool,
    drawn_lines: usize,
    last_counts: String,
    last_print: Instant,
    last_draw: Instant,
}

impl Overview {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            drawn_lines: 0,
            last_counts: String::new(),
            last_print: Instant::now(),
            last_draw: Instant::now() - Duration::from_secs(10),
        }
    }

    fn show(
        &mut self,
        sweep: &Sweep,
        statuses: &[RunStatus],
        running: impl Iterator<Item = usize>,
    ) {
        let counts = counts(statuses);
        if self.terminal {
            if self.last_draw.elapsed() < Duration::from_secs(1) {
                return;
            }
            let mut lines = vec![format!("sweep {}: {counts}", sweep.manifest.name)];
            lines.extend(running.map(|i| describe(&statuses[i])));
            // Back to the top of the last drawing, and clear it.
            if self.drawn_lines > 0 {
                eprint!("\x1b[{}A\x1b[J", self.drawn_lines);
            }
            eprintln!("{}", lines.join("\n"));
            self.drawn_lines = lines.len();
            self.last_draw = Instant::now();
        } else if counts != self.last_counts || self.last_print.elapsed() > Duration::from_secs(60)
        {
            eprintln!("sweep {}: {counts}", sweep.manifest.name);
            self.last_print = Instant::now();
        }
        self.last_counts = counts;
    }

    /// The summary, with every failed run's error.
    fn finish(&mut self, statuses: &[RunStatus]) {
        eprintln!("{}", counts(statuses));
        for s in statuses.iter().filter(|s| s.state == State::Failed) {
            eprintln!(
                "  failed: {} ({}): {}",
                s.run,
                super::ERROR,
                s.error.as_deref().unwrap_or("")
            );
        }
    }
}

pub fn counts(statuses: &[RunStatus]) -> String {
    let of = |state| statuses.iter().filter(|s| s.state == state).count();
    format!(
        "{} done, {} running, {} failed, {} stopped, {} queued",
        of(State::Done),
        of(State::Running),
        of(State::Failed),
        of(State::Stopped),
        of(State::Queued)
    )
}

/// One line for a run: its name, state, steps and the mean reward of its last training
/// episodes (not a held-out evaluation: `plastic compare` reads those).
pub fn describe(s: &RunStatus) -> String {
    format!(
        "  {:<32} {:<8} {:>12} / {:<12} training reward (last {} episodes) {}",
        s.run,
        s.state.name(),
        s.env_steps,
        s.total_steps,
        super::status::RECENT,
        s.recent_reward.map_or("-".into(), |r| format!("{r:.3}"))
    )
}
