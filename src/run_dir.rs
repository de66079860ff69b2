//! A run's folder: resolved config, TensorBoard event files and checkpoints. Every file is
//! written to a temporary name and renamed, and a checkpoint is a folder renamed into place
//! whole, so a crash or Ctrl-C never leaves a half-written file where a good one was.
//!
//! ```text
//! runs/<name>_<n>/
//!   config.toml                  the resolved config (re-run it with `plastic train`)
//!   events.out.tfevents.*        TensorBoard
//!   checkpoints/<update>/        config.toml, state.safetensors (model, optimiser, recurrent
//!                                state), progress.json (counters, episodes under way)
//!   .lock                        held by the process training the run
//! ```
use crate::config::ExperimentConfig;
use anyhow::{bail, Context};
use plastic_agents::a2c::{Progress, Snapshot, UnderWay};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::Tensor;

pub const CONFIG: &str = "config.toml";
const CHECKPOINTS: &str = "checkpoints";
const STATE: &str = "state.safetensors";
const PROGRESS: &str = "progress.json";
const LOCK: &str = ".lock";

/// The folder a path lies in: `.` for a bare file name.
pub fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// `path` as one shell word (quoted where it holds spaces or other special characters), for
/// the commands that messages suggest.
pub fn shell_word(path: &Path) -> String {
    // A path that is not UTF-8 is shown with replacement characters, as `display()` does.
    let text = path.to_string_lossy();
    // Quoting fails only on a NUL byte, which no path holds.
    shlex::try_quote(&text).map_or_else(|_| text.to_string(), |q| q.into_owned())
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = folder_of(path);
    // tempfile's default is owner-only; a run's files are as readable as any other output.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in `{}`", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// What a checkpoint's `progress.json` holds besides the tensors.
#[derive(Debug, Serialize, Deserialize)]
struct CheckpointInfo {
    progress: Progress,
    /// Truncated rollouts: the episodes under way (their recurrent state is in the tensors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    under_way: Option<UnderWay>,
}

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
            if out.is_dir() && std::fs::read_dir(out)?.next().is_some() {
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
    pub fn lock(&self) -> anyhow::Result<std::fs::File> {
        let path = self.path.join(LOCK);
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create `{}`", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "`{}` is being trained by another plastic process; wait for it or stop it first",
                self.path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock `{}`", path.display()))
            }
        }
    }

    pub fn write_config(&self, config: &ExperimentConfig) -> anyhow::Result<()> {
        write_atomic(&self.path.join(CONFIG), config.to_toml().as_bytes())
    }

    pub fn config(&self) -> anyhow::Result<ExperimentConfig> {
        ExperimentConfig::load(&self.path.join(CONFIG), &[])
    }

    /// Saves a checkpoint as `checkpoints/<update>/` and keeps only the newest `keep`.
    pub fn save_checkpoint(
        &self,
        config: &ExperimentConfig,
        snapshot: &Snapshot,
        keep: usize,
    ) -> anyhow::Result<PathBuf> {
        let root = self.path.join(CHECKPOINTS);
        std::fs::create_dir_all(&root)?;
        let dest = root.join(format!("{:08}", snapshot.progress.updates));
        let tmp = tempfile::Builder::new()
            .prefix(".partial-")
            .tempdir_in(&root)
            .context("cannot create a checkpoint folder")?;
        Tensor::write_safetensors(&snapshot.tensors, tmp.path().join(STATE))
            .context("cannot write the checkpoint's tensors")?;
        let info = CheckpointInfo {
            progress: snapshot.progress.clone(),
            under_way: snapshot.under_way.clone(),
        };
        std::fs::write(tmp.path().join(PROGRESS), serde_json::to_vec_pretty(&info)?)?;
        std::fs::write(tmp.path().join(CONFIG), config.to_toml())?;
        for f in [STATE, PROGRESS, CONFIG] {
            std::fs::File::open(tmp.path().join(f))?.sync_all()?;
        }
        if dest.exists() {
            // The same update saved again (Ctrl-C right after a periodic checkpoint).
            std::fs::remove_dir_all(&dest)?;
        }
        std::fs::rename(tmp.keep(), &dest)
            .with_context(|| format!("cannot move the checkpoint to `{}`", dest.display()))?;
        let all = self.checkpoints()?;
        for old in all.iter().take(all.len().saturating_sub(keep)) {
            std::fs::remove_dir_all(old)?;
        }
        Ok(dest)
    }

    /// Complete checkpoints, oldest first (unfinished ones start with a dot and are skipped).
    pub fn checkpoints(&self) -> anyhow::Result<Vec<PathBuf>> {
        let root = self.path.join(CHECKPOINTS);
        if !root.is_dir() {
            return Ok(Vec::new());
        }
        let update = |p: &Path| {
            let name = p.file_name()?.to_str()?;
            name.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| name.parse::<u64>().ok())?
        };
        let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(&root)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .filter_map(|p| Some((update(&p)?, p)))
            .collect();
        // By number, so that update 100,000,000 (nine digits) still sorts last.
        found.sort();
        Ok(found.into_iter().map(|(_, p)| p).collect())
    }

    pub fn latest_checkpoint(&self) -> anyhow::Result<Option<PathBuf>> {
        Ok(self.checkpoints()?.pop())
    }
}

/// A checkpoint read back: its config and snapshot.
pub struct Loaded {
    pub config: ExperimentConfig,
    pub snapshot: Snapshot,
    pub path: PathBuf,
}

/// Reads a checkpoint folder, or the newest checkpoint of a run folder.
pub fn load_checkpoint(path: &Path) -> anyhow::Result<Loaded> {
    let in_checkpoints = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(|d| d.ends_with(CHECKPOINTS)))
        .unwrap_or(false);
    if path.join(STATE).is_file() || in_checkpoints {
        return read_checkpoint(path);
    }
    let all = RunDir::open(path)?.checkpoints()?;
    let latest = all
        .last()
        .with_context(|| format!("run `{}` has no checkpoint yet", path.display()))?;
    read_checkpoint(latest).map_err(|e| match all.len() {
        1 => e,
        _ => e.context(format!(
            "the run's newest checkpoint cannot be read, older ones remain in `{}`: evaluate \
             one with `plastic eval <its folder>`, or move the damaged one away to resume from \
             the next",
            path.join(CHECKPOINTS).display()
        )),
    })
}

/// Reads one checkpoint folder.
fn read_checkpoint(dir: &Path) -> anyhow::Result<Loaded> {
    read_checkpoint_files(dir)
        .with_context(|| format!("checkpoint `{}` is damaged or incomplete", dir.display()))
}

fn read_checkpoint_files(dir: &Path) -> anyhow::Result<Loaded> {
    let config = ExperimentConfig::load(&dir.join(CONFIG), &[])?;
    let info: CheckpointInfo = serde_json::from_slice(
        &std::fs::read(dir.join(PROGRESS))
            .with_context(|| format!("cannot read `{}`", dir.join(PROGRESS).display()))?,
    )
    .with_context(|| format!("`{}` is damaged", dir.join(PROGRESS).display()))?;
    let state = dir.join(STATE);
    anyhow::ensure!(state.is_file(), "`{}` is missing", state.display());
    // tch's error is the safetensors crate's Debug form; the file name says more.
    let tensors = Tensor::read_safetensors(&state)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", state.display()))?;
    Ok(Loaded {
        config,
        snapshot: Snapshot {
            tensors,
            progress: info.progress,
            under_way: info.under_way,
        },
        path: dir.to_path_buf(),
    })
}
