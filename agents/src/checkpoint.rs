//! The checkpoint format, written and read here: the `checkpoints/<update>/` folders of a
//! run, each holding `config.toml` (the run's resolved config), `state.safetensors` (model,
//! optimiser, recurrent state) and `progress.json` (counters, episodes under way).
//!
//! Making a folder appear whole (a hidden name, then a rename), pruning and the best
//! checkpoint are the training front end's job. Every reader wants the same thing:
//! the newest checkpoint that reads whole and holds finite numbers, passing over one that a
//! concurrent prune removed or that is damaged, and saying which it passed over.
use crate::a2c::{Progress, Snapshot, UnderWay};
use crate::CoreConfig;
use plastic_envs::registry::EnvId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::Tensor;

pub const CHECKPOINTS: &str = "checkpoints";
pub const CONFIG: &str = "config.toml";
pub const STATE: &str = "state.safetensors";
pub const PROGRESS: &str = "progress.json";

/// What a checkpoint's `progress.json` holds besides the tensors.
#[derive(Debug, Serialize, Deserialize)]
struct CheckpointInfo {
    pub progress: Progress,
    /// Truncated rollouts: the episodes under way (their recurrent state is in the tensors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_way: Option<UnderWay>,
    /// libtorch threads that trained up to here: results depend on the count, so a resume
    /// keeps it (absent in checkpoints from before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

/// What a run's config says about its agent; the rest of `config.toml` is the front end's.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentDefinition {
    pub env: EnvDefinition,
    #[serde(default)]
    pub core: CoreConfig,
    #[serde(default)]
    pub run: RunDefinition,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EnvDefinition {
    pub id: EnvId,
    /// Folders the environment's Python modules are imported from (`env.python_path`).
    #[serde(default)]
    pub python_path: Vec<PathBuf>,
}

/// What the agent takes from the run's `[run]` section.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunDefinition {
    /// CPU threads (`run.threads`; 0: libtorch's choice), as training had them.
    #[serde(default)]
    pub threads: usize,
}

/// A checkpoint read back whole, its numbers finite.
pub struct Checkpoint {
    pub path: PathBuf,
    /// The run's config as `config.toml` holds it.
    pub config: String,
    /// The environment and core that config names.
    pub agent: AgentDefinition,
    pub snapshot: Snapshot,
    /// libtorch threads the run used up to this checkpoint, where recorded.
    pub threads: Option<usize>,
    /// Newer checkpoints of the run that were passed over, and why.
    pub passed_over: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("`{0}` does not exist")]
    Missing(PathBuf),
    #[error("`{0}` is not a run folder (it has no {CONFIG}) or a checkpoint folder")]
    NotARun(PathBuf),
    #[error("run `{0}` has no checkpoint yet")]
    NoCheckpoint(PathBuf),
    #[error("checkpoint `{path}` is damaged or incomplete: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error("checkpoint `{path}` holds values that are not finite (NaN or infinity) in {tensors}")]
    NonFinite { path: PathBuf, tensors: String },
    #[error("no checkpoint of `{run}` can be used: {reasons}")]
    NoneGood { run: PathBuf, reasons: String },
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// tch's error is a string; it names the cause (a full disk, a missing folder).
    #[error("cannot write the checkpoint's tensors: {0}")]
    WriteTensors(String),
}

/// Writes a checkpoint's files into the existing folder `dir`: the run's resolved `config`
/// as [`CONFIG`], the snapshot's tensors as [`STATE`], its counters and `threads`, the libtorch
/// threads that trained it ([`crate::threads::count`]), as [`PROGRESS`]; each file synced to
/// disk, so that the caller's rename of the folder publishes complete files.
pub fn write(
    dir: &Path,
    config: &str,
    snapshot: &Snapshot,
    threads: usize,
) -> Result<(), CheckpointError> {
    let state = dir.join(STATE);
    Tensor::write_safetensors(&snapshot.tensors, &state)
        .map_err(|e| CheckpointError::WriteTensors(e.to_string()))?;
    let info = CheckpointInfo {
        progress: snapshot.progress.clone(),
        under_way: snapshot.under_way.clone(),
        threads: Some(threads),
    };
    let progress = dir.join(PROGRESS);
    let json = serde_json::to_vec_pretty(&info).map_err(|e| CheckpointError::Write {
        path: progress.clone(),
        source: e.into(),
    })?;
    let written = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|source| CheckpointError::Write {
            path: path.into(),
            source,
        })
    };
    written(&progress, &json)?;
    written(&dir.join(CONFIG), config.as_bytes())?;
    for path in [state, progress, dir.join(CONFIG)] {
        sync_file(&path)?;
    }
    Ok(())
}

/// Flushes the file at `path` to disk.
pub fn sync_file(path: &Path) -> Result<(), CheckpointError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| CheckpointError::Write {
            path: path.into(),
            source,
        })
}

/// Complete checkpoints of the run in `run`, oldest first (hidden folders are skipped).
pub fn list(run: &Path) -> Result<Vec<PathBuf>, CheckpointError> {
    list_in(&run.join(CHECKPOINTS))
}

/// Complete checkpoints in the folder `root` (`<run>/checkpoints`, or a run's `best`), oldest
/// first.
pub fn list_in(root: &Path) -> Result<Vec<PathBuf>, CheckpointError> {
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(root).map_err(|source| CheckpointError::Io {
        path: root.into(),
        source,
    })?;
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|p| Some((update_of(&p)?, p)))
        .filter(|(_, p)| p.is_dir())
        .collect();
    // By number, so that update 100,000,000 (nine digits) still sorts last.
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// The newest complete checkpoint of the run in `run` (complete: not necessarily readable).
pub fn newest(run: &Path) -> Result<Option<PathBuf>, CheckpointError> {
    Ok(list(run)?.pop())
}

/// The update a checkpoint folder's name gives; `None` for anything else.
fn update_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| name.parse().ok())?
}

/// A checkpoint folder, or the newest good checkpoint of a run folder.
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    if !path.exists() {
        return Err(CheckpointError::Missing(path.into()));
    }
    let in_checkpoints = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(|d| d.ends_with(CHECKPOINTS)))
        .unwrap_or(false);
    if path.join(STATE).is_file() || in_checkpoints {
        return read(path);
    }
    if path.join(CONFIG).is_file() {
        return newest_good(path)?.ok_or_else(|| CheckpointError::NoCheckpoint(path.into()));
    }
    // A folder of numbered checkpoints, as a run's `best/`.
    if !list_in(path)?.is_empty() {
        return newest_good_in(path)?.ok_or_else(|| CheckpointError::NoCheckpoint(path.into()));
    }
    Err(CheckpointError::NotARun(path.into()))
}

/// The newest checkpoint that reads whole and holds finite numbers; `None` when the run has
/// no checkpoint. A checkpoint that vanishes while being read was pruned by a training
/// process that saved a newer one: the listing is taken again.
pub fn newest_good(run: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    newest_good_in(&run.join(CHECKPOINTS))
}

/// [`newest_good`] among the checkpoints in the folder `root`.
fn newest_good_in(root: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let mut damaged: Vec<String> = Vec::new();
    for _ in 0..100 {
        let all = list_in(root)?;
        if all.is_empty() {
            return Ok(None);
        }
        let mut vanished = false;
        for dir in all.iter().rev() {
            match read(dir) {
                Ok(mut checkpoint) => {
                    checkpoint.passed_over = damaged;
                    return Ok(Some(checkpoint));
                }
                Err(_) if !dir.exists() => vanished = true,
                Err(e) => {
                    let why = e.to_string();
                    if !damaged.contains(&why) {
                        damaged.push(why);
                    }
                }
            }
        }
        if !vanished {
            break;
        }
    }
    Err(CheckpointError::NoneGood {
        run: root.parent().unwrap_or(root).into(),
        reasons: damaged.join("; "),
    })
}

/// Reads one checkpoint folder and checks that its numbers are finite.
pub fn read(dir: &Path) -> Result<Checkpoint, CheckpointError> {
    let checkpoint = read_files(dir).map_err(|reason| CheckpointError::Damaged {
        path: dir.into(),
        reason,
    })?;
    let bad = non_finite_tensors(&checkpoint.snapshot.tensors);
    if !bad.is_empty() {
        return Err(CheckpointError::NonFinite {
            path: dir.into(),
            tensors: bad.join(", "),
        });
    }
    Ok(checkpoint)
}

fn read_files(dir: &Path) -> Result<Checkpoint, String> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
    };
    let config = String::from_utf8(read(CONFIG)?).map_err(|_| format!("`{CONFIG}` is not text"))?;
    let agent: AgentDefinition =
        toml::from_str(&config).map_err(|e| format!("`{CONFIG}`: {}", e.message()))?;
    let info: CheckpointInfo = serde_json::from_slice(&read(PROGRESS)?)
        .map_err(|e| format!("`{PROGRESS}` is damaged: {e}"))?;
    // A checkpoint is saved under its update's number: a counter that differs was edited.
    if let Some(update) = update_of(dir).filter(|&u| u != info.progress.updates) {
        return Err(format!(
            "`{PROGRESS}` counts {} updates in the checkpoint of update {update}",
            info.progress.updates
        ));
    }
    let state = dir.join(STATE);
    if !state.is_file() {
        return Err(format!("`{}` is missing", state.display()));
    }
    // tch's error is the safetensors crate's Debug form; the file name says more.
    let tensors = Tensor::read_safetensors(&state)
        .map_err(|e| format!("cannot read `{}`: {e}", state.display()))?;
    Ok(Checkpoint {
        path: dir.to_path_buf(),
        config,
        agent,
        snapshot: Snapshot {
            tensors,
            progress: info.progress,
            under_way: info.under_way,
        },
        threads: info.threads,
        passed_over: Vec::new(),
    })
}

/// Names of the floating-point tensors that hold a NaN or an infinity.
pub fn non_finite_tensors(tensors: &[(String, Tensor)]) -> Vec<String> {
    tensors
        .iter()
        .filter(|(_, t)| t.is_floating_point() && t.isfinite().all().int64_value(&[]) == 0)
        .map(|(name, _)| format!("`{name}`"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`write`] puts in a folder, [`read`] gives back: the config's text, every tensor
    /// with its name, kind and values, the counters and the thread count.
    #[test]
    fn a_written_checkpoint_reads_back_whole() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("00000007");
        std::fs::create_dir(&dir).unwrap();
        let config = "[run]\nthreads = 2\n\n[env]\nid = \"bandit-dependent-easy\"\n";
        let mut progress = Progress {
            updates: 7,
            env_steps: 140,
            episodes: 3,
            ..Progress::default()
        };
        // Floats that serde_json reads back exactly only with `float_roundtrip`.
        progress
            .return_stats
            .update([0.1 + 0.2, 2.0f64.sqrt(), 1e-300].into_iter());
        let snapshot = Snapshot {
            tensors: vec![
                (
                    "model/w".into(),
                    Tensor::from_slice(&[1.5f32, -0.25]).view([1, 2]),
                ),
                ("optim/step".into(), Tensor::from_slice(&[7i64])),
            ],
            progress,
            under_way: None,
        };
        // Not the process's count: other tests change it while this one runs.
        write(&dir, config, &snapshot, 3).unwrap();
        let back = read(&dir).unwrap();
        assert_eq!(back.config, config);
        assert_eq!(back.agent.run.threads, 2);
        assert_eq!(back.snapshot.progress, snapshot.progress);
        assert_eq!(back.threads, Some(3));
        // The file keeps tensors by name; tch gives them back in no set order.
        let mut tensors = back.snapshot.tensors;
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(tensors.len(), snapshot.tensors.len());
        for ((name, a), (back_name, b)) in snapshot.tensors.iter().zip(&tensors) {
            assert_eq!(name, back_name);
            assert!(a.equal(b), "{name} changed: {a} against {b}");
        }
    }

    /// A folder that is not there is named in the error, not a panic.
    #[test]
    fn writing_into_a_missing_folder_says_which() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("gone");
        let snapshot = Snapshot {
            tensors: Vec::new(),
            progress: Progress::default(),
            under_way: None,
        };
        let err = write(&dir, "", &snapshot, 1).unwrap_err().to_string();
        assert!(err.starts_with("cannot write"), "{err}");
    }
}
