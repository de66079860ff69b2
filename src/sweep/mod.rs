//! Sweeps: many runs (variants × seeds) from one sweep file, trained by a local pool of
//! processes or a SLURM job array. Both only launch `plastic sweep task <dir> <index>`,
//! which trains or resumes one run folder; what a run has done is read from its folder, so
//! the two backends, and `plastic sweep status`, agree.
//!
//! ```text
//! runs/<sweep>/
//!   sweep.toml                   the sweep file as it was last started
//!   sweep.json                   the manifest: every run's index, variant, seed and folder
//!   <variant>/seed-<n>/          a run folder, created with its resolved config.toml
//!   slurm/                       array.sh, the jobs submitted, the tasks' output
//! ```
mod file;
pub mod local;
pub mod slurm;
pub mod status;

use crate::durable::write_atomic;
use crate::run_dir::{RunDir, CONFIG};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use file::{SlurmSection, SweepFile};

pub const MANIFEST: &str = "sweep.json";
const SWEEP_FILE: &str = "sweep.toml";
/// A task that failed leaves its error here (removed when a task trains the run again). Only
/// a task holding the run's lock writes or removes it, so no interleaving of two sweeps
/// leaves an old error next to a run that then finishes.
pub const ERROR: &str = "error.txt";
/// A task's exit status when another process trains its run (EX_TEMPFAIL): the run is
/// neither failed nor stopped, and the pool queues it again.
pub const EXIT_BUSY: u8 = 75;
/// A run's console output, appended by every task that trains it.
pub const LOG: &str = "train.log";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub runs: Vec<RunEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunEntry {
    pub variant: String,
    pub seed: u64,
    /// Relative to the sweep's folder.
    pub path: PathBuf,
    /// libtorch threads the run asks for (for the number of runs at once, CPUs per task).
    pub threads: usize,
}

/// The variant of the run in folder `run` when it is one of a sweep's runs
/// (`<sweep>/<variant>/seed-<n>/`, listed in the sweep's manifest); `None` otherwise.
pub fn variant_of(run: &Path) -> Option<String> {
    let run = std::path::absolute(run).ok()?;
    let dir = run.parent()?.parent()?;
    let relative = run.strip_prefix(dir).ok()?;
    let sweep = Sweep::open(dir).ok()?;
    let entry = sweep.manifest.runs.iter().find(|r| r.path == relative)?;
    Some(entry.variant.clone())
}

/// A sweep's folder and manifest.
pub struct Sweep {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Sweep {
    /// Expands `file` into run folders under `root/<name>/` (each with its resolved config),
    /// checking every run before any is created. Runs that exist already are kept: their
    /// config may change in tuning keys (as between a checkpoint and `plastic resume`), and
    /// a change to keys that define a run is refused.
    pub fn prepare(file: &Path, root: &Path) -> anyhow::Result<(Self, SweepFile)> {
        let sweep = SweepFile::load(file)?;
        let name = sweep.name(file)?;
        let planned = sweep.expand(file)?;
        let dir = root.join(&name);
        let mut runs = Vec::new();
        for p in &planned {
            let path = PathBuf::from(&p.variant).join(format!("seed-{}", p.seed));
            let run_dir = dir.join(&path);
            if run_dir.join(CONFIG).exists() {
                let existing = RunDir::open(&run_dir)?.config()?;
                let fixed: Vec<_> = p
                    .config
                    .edits_since(&existing)
                    .into_iter()
                    .filter(crate::config::ConfigEdit::defines_run)
                    .collect();
                anyhow::ensure!(
                    fixed.is_empty(),
                    "`{}` was created by another version of the sweep file: {}. These keys \
                     define a run; give the sweep another `sweep.name` to train them",
                    run_dir.display(),
                    crate::config::ConfigEdit::list(&fixed)
                );
            }
            runs.push(RunEntry {
                variant: p.variant.clone(),
                seed: p.seed,
                path,
                threads: p.config.run.threads,
            });
        }
        // Sizes do not depend on the seed: one check per variant.
        for p in planned.iter().filter(|p| p.seed == planned[0].seed) {
            crate::commands::train::ensure_training_fits(&p.config)
                .with_context(|| format!("variant `{}` of the sweep", p.variant))?;
        }
        for (p, entry) in planned.iter().zip(&runs) {
            let run_dir = dir.join(&entry.path);
            std::fs::create_dir_all(&run_dir)
                .with_context(|| format!("cannot create `{}`", run_dir.display()))?;
            let run = RunDir { path: run_dir };
            let same = run.path.join(CONFIG).exists() && run.config()? == p.config;
            if !same {
                run.write_config(&p.config)?;
            }
        }
        let manifest = Manifest { name, runs };
        write_atomic(
            &dir.join(MANIFEST),
            serde_json::to_string_pretty(&manifest)?.as_bytes(),
        )?;
        write_atomic(&dir.join(SWEEP_FILE), &std::fs::read(file)?)?;
        Ok((Self { dir, manifest }, sweep))
    }

    /// A sweep folder written by [`Sweep::prepare`].
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "`{}` is not a sweep folder: it has no {MANIFEST} (sweeps are created by \
                 `plastic sweep <sweep file>`)",
                dir.display()
            )
        })?;
        let manifest = serde_json::from_str(&text)
            .with_context(|| format!("`{}` is damaged", path.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    pub fn run_dir(&self, index: usize) -> PathBuf {
        self.dir.join(&self.manifest.runs[index].path)
    }

    /// A run's name in messages: `<variant>/seed-<n>`.
    pub fn label(&self, index: usize) -> String {
        self.manifest.runs[index].path.display().to_string()
    }
}
