//! A run's folder: resolved config, TensorBoard event files and checkpoints (see
//! `checkpoint` for how they survive kills). Every file is written to a temporary name and
//! renamed (`durable`), so a crash or Ctrl-C never leaves a half-written file where a good
//! one was.
//!
//! ```text
//! runs/<name>_<n>/
//!   config.toml                  the resolved config (re-run it with `plastic train`)
//!   events.out.tfevents.*        TensorBoard
//!   checkpoints/<update>/        config.toml, state.safetensors (model, optimiser, recurrent
//!                                state), progress.json (counters, episodes under way)
//!   episodes.csv, evaluations.csv the results as rows (`records`)
//!   done.json                    present once the run has trained to its total
//!   .lock                        held by the process training the run
//! ```
use crate::config::ExperimentConfig;
use crate::durable::{write_atomic, LEFTOVER_PREFIXES};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// A run's resolved config, named as in its checkpoints.
pub use plastic_agents::checkpoint::CONFIG;
const LOCK: &str = ".lock";
/// Written when a run has trained to its total; removed when it trains again.
pub const DONE: &str = "done.json";

/// `path` as one shell word (quoted where it holds spaces or other special characters), for
/// the commands that messages suggest.
pub fn shell_word(path: &Path) -> String {
    // A path that is not UTF-8 is shown with replacement characters, as `display()` does.
    let text = path.to_string_lossy();
    // Quoting fails only on a NUL byte, which no path holds.
    shlex::try_quote(&text).map_or_else(|_| text.to_string(), |q| q.into_owned())
}

/// Another process holds the run's lock: it trains the run. A sweep's pool tells this apart
/// from a failure (the run is not failed, only taken).
#[derive(Debug)]
pub struct Busy(pub PathBuf);

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` is being trained by another plastic process; wait for it or stop it first",
            self.0.display()
        )
    }
}

impl std::error::Error for Busy {}

pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `<root>/<name>_<n>` with the first free `n`, or `out` exactly when given
    /// (which must be new or empty: a new run's checkpoints must not mix with old ones).
    pub fn create(root: &Path, name: &str, out: Option<&Path>) -> anyhow::Result<Self> {
        if let Some(out) = out {
            if out.join(CONFIG).exists() {
                bail!(
                    "`{}` already holds a run; continue it with `plastic resume {}` or choose another --out",
                    out.display(),
                    shell_word(out)
                );
            }
            // A lock or unfinished files are what a process killed while it created the run
            // leaves: the folder is still empty for the user.
            let holds_files = out.is_dir()
                && std::fs::read_dir(out)?.filter_map(Result::ok).any(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name != LOCK && !LEFTOVER_PREFIXES.iter().any(|p| name.starts_with(p))
                });
            if holds_files {
                bail!(
                    "`{}` is not empty; give a new or empty folder as --out",
                    out.display()
                );
            }
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create run folder `{}`", out.display()))?;
            return Ok(Self { path: out.into() });
        }
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create `{}`", root.display()))?;
        for n in 1.. {
            let path = root.join(format!("{name}_{n}"));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create `{}`", path.display()))
                }
            }
        }
        unreachable!("some run number is free")
    }

    /// An existing run folder (it must hold a config).
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            bail!("`{}` does not exist", path.display());
        }
        if !path.join(CONFIG).is_file() {
            bail!(
                "`{}` is not a run folder: it has no {CONFIG} (runs are created by `plastic train`)",
                path.display()
            );
        }
        Ok(Self { path: path.into() })
    }

    /// Holds the folder for one training process: a second `train` or `resume` of the same
    /// run would interleave checkpoints and event files. The lock goes with the process.
    /// Holding it, the process removes what killed ones left behind.
    pub fn lock(&self) -> anyhow::Result<std::fs::File> {
        let path = self.path.join(LOCK);
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create `{}`", path.display()))?;
        // `plastic sweep status` takes the lock for an instant to see whether a run trains:
        // a lock held that briefly is waited out.
        for attempt in 0.. {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if attempt < 20 => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Busy(self.path.clone()).into())
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock `{}`", path.display()))
                }
            }
        }
        crate::checkpoint::clean_leftovers(&self.path)?;
        Ok(file)
    }

    pub fn write_config(&self, config: &ExperimentConfig) -> anyhow::Result<()> {
        write_atomic(&self.path.join(CONFIG), config.to_toml().as_bytes())
    }

    pub fn mark_done(&self, updates: u64, env_steps: u64) -> anyhow::Result<()> {
        let done = serde_json::json!({ "updates": updates, "env_steps": env_steps });
        write_atomic(&self.path.join(DONE), done.to_string().as_bytes())
    }

    pub fn mark_unfinished(&self) -> anyhow::Result<()> {
        crate::durable::remove_if_present(&self.path.join(DONE))
    }

    pub fn config(&self) -> anyhow::Result<ExperimentConfig> {
        ExperimentConfig::load(&self.path.join(CONFIG), &[])
    }
}
