//! Work of an update that a stop left undone. A stop abandons a held-out evaluation under
//! way and skips the pictures and the animation, so that the checkpoint comes first; the work
//! left is named in `pending.json` the moment it is left, and a resume from that update's
//! checkpoint does it before training on. The run's records then equal an uninterrupted
//! run's, and a run stopped during its last evaluation is not done until that evaluation is.
//!
//! The file is written before the checkpoint it belongs to. A kill between the two leaves it
//! naming an update that the newest checkpoint is not at: the resume trains that update again,
//! with all its work, and drops the file. What a redo logs at the checkpoint's step is cut
//! before the next redo (`tags`), so redoing it again after a kill logs it once.
use crate::durable::{remove_if_present, sync_dir, write_atomic};
use serde::{Deserialize, Serialize};
use std::path::Path;

const FILE: &str = "pending.json";

/// Work left undone at update `update` (environment step `step`), by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub update: u64,
    pub step: u64,
    pub work: Vec<String>,
}

impl Pending {
    /// Adds `work` to what update `update` left undone in `run`, durably.
    pub fn leave(run: &Path, update: u64, step: u64, work: &str) -> anyhow::Result<()> {
        let mut pending = read(run).filter(|p| p.update == update).unwrap_or(Self {
            update,
            step,
            work: Vec::new(),
        });
        if !pending.work.iter().any(|w| w == work) {
            pending.work.push(work.to_string());
        }
        write_atomic(&run.join(FILE), &serde_json::to_vec_pretty(&pending)?)
    }

    /// What the update at `update` left undone in `run`. A file naming another update (left by
    /// a kill before its checkpoint was saved, or by a stop before a damaged checkpoint that a
    /// resume passed over), or one that does not read, is removed: that update is trained
    /// again with all its work.
    pub fn at(run: &Path, update: u64) -> anyhow::Result<Option<Self>> {
        match read(run) {
            Some(p) if p.update == update && !p.work.is_empty() => Ok(Some(p)),
            _ => Self::clear(run).map(|()| None),
        }
    }

    /// Whether the update at `update` left work undone in `run` (reading only).
    pub fn left_at(run: &Path, update: u64) -> bool {
        read(run).is_some_and(|p| p.update == update)
    }

    /// Whether `work` is among what is left.
    pub fn holds(&self, work: &str) -> bool {
        self.work.iter().any(|w| w == work)
    }

    /// Removes the file once its work is done and on disk.
    pub fn clear(run: &Path) -> anyhow::Result<()> {
        remove_if_present(&run.join(FILE))?;
        sync_dir(run)
    }
}

/// The file as written; one that does not read (cut by a full disk) names no work: a warning
/// says so.
fn read(run: &Path) -> Option<Pending> {
    let path = run.join(FILE);
    let bytes = std::fs::read(&path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!(
                "warning: `{}` does not read ({e}); the work it named is not redone",
                path.display()
            );
            None
        }
    }
}
