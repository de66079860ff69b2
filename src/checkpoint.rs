//! Checkpoints: `checkpoints/<update>/` folders holding `config.toml`, `state.safetensors`
//! (model, optimiser, recurrent state) and `progress.json` (counters, episodes under way).
//!
//! What a kill at any instant may leave, and why nothing is lost:
//! - A checkpoint is written whole in a hidden `.partial-*` folder, synced, and renamed into
//!   its numbered place: a numbered folder is always complete.
//! - A checkpoint already saved for the same update (Ctrl-C right after a periodic save) is
//!   kept as it is, never removed and rewritten.
//! - Pruning renames an old checkpoint to a hidden `.pruned-*` name before deleting it, so
//!   no half-deleted numbered folder is ever visible.
//! - Hidden leftovers are removed when a process next trains the run ([`clean_leftovers`]).
//! - Readers take the newest checkpoint that reads whole and holds finite numbers, passing
//!   over one that a concurrent prune removed or that is damaged (with a warning).
use crate::config::ExperimentConfig;
use crate::durable::{sync_dir, LEFTOVER_PREFIXES, PARTIAL};
use anyhow::Context;
use plastic_agents::a2c::{Progress, Snapshot, UnderWay};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::Tensor;

pub const CHECKPOINTS: &str = "checkpoints";
const STATE: &str = "state.safetensors";
const PROGRESS: &str = "progress.json";
const PRUNED: &str = ".pruned-";

/// What a checkpoint's `progress.json` holds besides the tensors.
#[derive(Debug, Serialize, Deserialize)]
struct CheckpointInfo {
    progress: Progress,
    /// Truncated rollouts: the episodes under way (their recurrent state is in the tensors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    under_way: Option<UnderWay>,
    /// libtorch threads that trained up to here: results depend on the count, so a resume
    /// keeps it (absent in checkpoints from before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threads: Option<usize>,
}

/// A checkpoint read back: its config and snapshot.
pub struct Loaded {
    pub config: ExperimentConfig,
    pub snapshot: Snapshot,
    /// libtorch threads the run used up to this checkpoint, where recorded.
    pub threads: Option<usize>,
    pub path: PathBuf,
}

/// Complete checkpoints of the run in `run`, oldest first (hidden folders are skipped).
pub fn list(run: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let root = run.join(CHECKPOINTS);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(&root)
        .with_context(|| format!("cannot read `{}`", root.display()))?
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
pub fn newest(run: &Path) -> anyhow::Result<Option<PathBuf>> {
    Ok(list(run)?.pop())
}

/// The update a checkpoint folder's name gives; `None` for anything else.
fn update_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| name.parse().ok())?
}

/// Saves `snapshot` as `checkpoints/<update>/` and keeps only the newest `keep`.
pub fn save(
    run: &Path,
    config: &ExperimentConfig,
    snapshot: &Snapshot,
    keep: usize,
) -> anyhow::Result<PathBuf> {
    let non_finite = non_finite_tensors(&snapshot.tensors);
    anyhow::ensure!(
        non_finite.is_empty(),
        "the model holds values that are not finite (NaN or infinity) in {}; it was not saved",
        non_finite.join(", ")
    );
    let root = run.join(CHECKPOINTS);
    std::fs::create_dir_all(&root)
        .with_context(|| format!("cannot create `{}`", root.display()))?;
    let dest = root.join(format!("{:08}", snapshot.progress.updates));
    // The same update again is the same state: the one on disk stays, so that there is no
    // instant without it.
    if !(dest.is_dir() && read_verified(&dest).is_ok()) {
        let tmp = tempfile::Builder::new()
            .prefix(PARTIAL)
            .tempdir_in(&root)
            .context("cannot create a checkpoint folder")?;
        Tensor::write_safetensors(&snapshot.tensors, tmp.path().join(STATE))
            .map_err(|e| anyhow::anyhow!("cannot write the checkpoint's tensors: {e}"))?;
        let info = CheckpointInfo {
            progress: snapshot.progress.clone(),
            under_way: snapshot.under_way.clone(),
            threads: Some(tch::get_num_threads() as usize),
        };
        std::fs::write(tmp.path().join(PROGRESS), serde_json::to_vec_pretty(&info)?)?;
        std::fs::write(tmp.path().join(crate::run_dir::CONFIG), config.to_toml())?;
        for f in [STATE, PROGRESS, crate::run_dir::CONFIG] {
            std::fs::File::open(tmp.path().join(f))?.sync_all()?;
        }
        sync_dir(tmp.path())?;
        if dest.exists() {
            // Damaged (it did not read back): out of the way first, then deleted.
            discard(&root, &dest)?;
        }
        std::fs::rename(tmp.keep(), &dest)
            .with_context(|| format!("cannot move the checkpoint to `{}`", dest.display()))?;
        sync_dir(&root)?;
    }
    let all = list(run)?;
    for old in all.iter().take(all.len().saturating_sub(keep)) {
        discard(&root, old)?;
    }
    Ok(dest)
}

/// Hides a checkpoint folder by renaming it (atomic), then deletes it.
fn discard(root: &Path, dir: &Path) -> anyhow::Result<()> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let hidden = root.join(format!("{PRUNED}{name}"));
    if hidden.exists() {
        std::fs::remove_dir_all(&hidden)?;
    }
    std::fs::rename(dir, &hidden).with_context(|| format!("cannot remove `{}`", dir.display()))?;
    sync_dir(root)?;
    std::fs::remove_dir_all(&hidden)
        .with_context(|| format!("cannot remove `{}`", hidden.display()))
}

/// Removes what killed processes left in the run: unfinished checkpoints and files, and
/// checkpoints whose pruning was cut short. Only the process holding the run's lock may.
pub fn clean_leftovers(run: &Path) -> anyhow::Result<()> {
    for dir in [run.to_path_buf(), run.join(CHECKPOINTS)] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !LEFTOVER_PREFIXES
                .iter()
                .chain([&PRUNED])
                .any(|p| name.starts_with(p))
            {
                continue;
            }
            let path = entry.path();
            let removed = match path.is_dir() {
                true => std::fs::remove_dir_all(&path),
                false => std::fs::remove_file(&path),
            };
            removed.with_context(|| format!("cannot remove leftover `{}`", path.display()))?;
        }
    }
    Ok(())
}

/// Reads a checkpoint folder, or the newest good checkpoint of a run folder.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let in_checkpoints = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(|d| d.ends_with(CHECKPOINTS)))
        .unwrap_or(false);
    if path.join(STATE).is_file() || in_checkpoints {
        return read_verified(path);
    }
    let run = crate::run_dir::RunDir::open(path)?;
    newest_good(&run.path)?
        .with_context(|| format!("run `{}` has no checkpoint yet", path.display()))
}

/// The newest checkpoint that reads whole and holds finite numbers; `None` when the run has
/// no checkpoint. Damaged ones are passed over with a warning; if none is good, the error
/// names each. A checkpoint that vanishes while being read was pruned by a training process
/// that saved a newer one: the listing is taken again.
pub fn newest_good(run: &Path) -> anyhow::Result<Option<Loaded>> {
    let mut damaged: Vec<String> = Vec::new();
    for _ in 0..100 {
        let all = list(run)?;
        if all.is_empty() {
            return Ok(None);
        }
        let mut vanished = false;
        for dir in all.iter().rev() {
            match read_verified(dir) {
                Ok(loaded) => {
                    for why in &damaged {
                        eprintln!("warning: {why}; using `{}`", dir.display());
                    }
                    return Ok(Some(loaded));
                }
                Err(_) if !dir.exists() => vanished = true,
                Err(e) => {
                    let why = format!("{e:#}");
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
    anyhow::bail!(
        "no checkpoint of `{}` can be used: {}. Train it again with `plastic train {}`",
        run.display(),
        damaged.join("; "),
        crate::run_dir::shell_word(&run.join(crate::run_dir::CONFIG))
    )
}

/// Reads one checkpoint folder and checks that its numbers are finite.
fn read_verified(dir: &Path) -> anyhow::Result<Loaded> {
    let loaded = read_files(dir)
        .with_context(|| format!("checkpoint `{}` is damaged or incomplete", dir.display()))?;
    let bad = non_finite_tensors(&loaded.snapshot.tensors);
    anyhow::ensure!(
        bad.is_empty(),
        "checkpoint `{}` holds values that are not finite (NaN or infinity) in {}: it cannot \
         be evaluated or resumed",
        dir.display(),
        bad.join(", ")
    );
    Ok(loaded)
}

fn read_files(dir: &Path) -> anyhow::Result<Loaded> {
    let config = ExperimentConfig::load(&dir.join(crate::run_dir::CONFIG), &[])?;
    let progress = dir.join(PROGRESS);
    let info: CheckpointInfo = serde_json::from_slice(
        &std::fs::read(&progress)
            .with_context(|| format!("cannot read `{}`", progress.display()))?,
    )
    .with_context(|| format!("`{}` is damaged", progress.display()))?;
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
        threads: info.threads,
        path: dir.to_path_buf(),
    })
}

/// Names of the floating-point tensors that hold a NaN or an infinity.
fn non_finite_tensors(tensors: &[(String, Tensor)]) -> Vec<String> {
    tensors
        .iter()
        .filter(|(_, t)| t.is_floating_point() && t.isfinite().all().int64_value(&[]) == 0)
        .map(|(name, _)| format!("`{name}`"))
        .collect()
}

#[cfg(test)]
mod tests {
    /// serde_json parses some floats to a neighbouring value unless built with exact
    /// round-tripping; a resumed run must read back the very numbers it saved.
    #[test]
    fn progress_floats_round_trip_exactly() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let values: Vec<f64> = (0..10_000)
            .map(|_| f64::from_bits(rng.random::<u64>() >> 2) * rng.random::<f64>())
            .filter(|v| v.is_finite())
            .collect();
        let text = serde_json::to_string(&values).unwrap();
        let back: Vec<f64> = serde_json::from_str(&text).unwrap();
        let differ = values
            .iter()
            .zip(&back)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differ, 0, "{differ} of {} floats changed", values.len());
    }
}
