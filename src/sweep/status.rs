//! Where a run stands, read from its folder alone (so it works for runs on any machine of a
//! cluster that shares the filesystem): done, running (its lock is held), failed (a task
//! left its error), stopped part-way, or not started.
use super::{Sweep, ERROR};
use crate::records::EPISODES;
use crate::run_dir::DONE;
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Done,
    Running,
    Failed,
    Stopped,
    Queued,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Running => "running",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
            Self::Queued => "queued",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    pub run: String,
    pub variant: String,
    pub seed: u64,
    pub state: State,
    /// Environment steps of the last finished training episode.
    pub env_steps: u64,
    pub total_steps: u64,
    /// Mean return of the last (up to 100) training episodes.
    pub recent_reward: Option<f64>,
    /// The first line of a failed run's error.
    pub error: Option<String>,
}

/// The runs of `sweep` that a start trains: not done, not training elsewhere, and failed
/// ones only with `retry_failed`; in manifest order.
pub fn pending(sweep: &Sweep, retry_failed: bool) -> Vec<usize> {
    runs_where(sweep, |state| match state {
        State::Done | State::Running => false,
        State::Failed => retry_failed,
        State::Stopped | State::Queued => true,
    })
}

/// [`pending`] and the runs training elsewhere now (which may stop before they are done).
pub fn to_train(sweep: &Sweep, retry_failed: bool) -> Vec<usize> {
    runs_where(sweep, |state| match state {
        State::Done => false,
        State::Failed => retry_failed,
        State::Running | State::Stopped | State::Queued => true,
    })
}

fn runs_where(sweep: &Sweep, keep: impl Fn(State) -> bool) -> Vec<usize> {
    (0..sweep.manifest.runs.len())
        .filter(|&i| keep(of(sweep, i).state))
        .collect()
}

/// Episodes averaged for `recent_reward`, as in training's `rollout/ep_rew_mean`.
pub const RECENT: usize = 100;

pub fn of(sweep: &Sweep, index: usize) -> RunStatus {
    let entry = &sweep.manifest.runs[index];
    let dir = sweep.run_dir(index);
    let total_steps = crate::run_dir::RunDir::open(&dir)
        .and_then(|r| r.config())
        .map_or(0, |c| c.run.total_steps);
    let (env_steps, recent_reward) = recent_episodes(&dir.join(EPISODES));
    let done = dir.join(DONE).exists();
    // A done run's error belongs to an earlier attempt (`plastic resume` outside the sweep
    // finished it without a task to clear the error).
    let error = (!done)
        .then(|| std::fs::read_to_string(dir.join(ERROR)).ok())
        .flatten()
        .map(|e| e.lines().next().unwrap_or_default().to_string());
    let state = if done {
        State::Done
    } else if is_locked(&dir) {
        State::Running
    } else if error.is_some() {
        State::Failed
    } else if env_steps > 0 || !crate::checkpoint::list(&dir).unwrap_or_default().is_empty() {
        State::Stopped
    } else {
        State::Queued
    };
    RunStatus {
        run: sweep.label(index),
        variant: entry.variant.clone(),
        seed: entry.seed,
        state,
        env_steps,
        total_steps,
        recent_reward,
        error,
    }
}

/// Whether a process holds the run's lock (it is training).
fn is_locked(dir: &Path) -> bool {
    let Ok(file) = std::fs::File::open(dir.join(".lock")) else {
        return false;
    };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// The step and mean return of the last training episodes, from the end of `episodes.csv`
/// (read from its tail: the file grows with every episode).
fn recent_episodes(path: &Path) -> (u64, Option<f64>) {
    let Ok(mut file) = std::fs::File::open(path) else {
        return (0, None);
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(64 * 1024);
    let mut tail = String::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_string(&mut tail).is_err() {
        return (0, None);
    }
    let rows: Vec<(f64, u64)> = tail
        .lines()
        .skip(usize::from(start > 0)) // a line cut by the seek
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((f.first()?.parse().ok()?, f.get(3)?.parse().ok()?))
        })
        .collect();
    let recent = &rows[rows.len().saturating_sub(RECENT)..];
    let steps = recent.last().map_or(0, |r| r.1);
    let mean =
        (!recent.is_empty()).then(|| recent.iter().map(|r| r.0).sum::<f64>() / recent.len() as f64);
    (steps, mean)
}
