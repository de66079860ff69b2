//! Checkpoints: `checkpoints/<update>/` folders holding `config.toml`, `state.safetensors`
//! (model, optimiser, recurrent state) and `progress.json` (counters, episodes under way),
//! in the library's format ([`plastic_agents::checkpoint`] writes and reads the files); here
//! the run's side: crash safety, pruning and the best checkpoint.
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
use plastic_agents::a2c::Snapshot;
use plastic_agents::checkpoint::{
    self as format, non_finite_tensors, Checkpoint, CheckpointError, CHECKPOINTS,
};
use std::path::{Path, PathBuf};

pub use format::{list, newest};

const PRUNED: &str = ".pruned-";

/// A checkpoint read back: the library's reading of it, and the whole config of its run.
pub struct Loaded {
    pub config: ExperimentConfig,
    pub checkpoint: Checkpoint,
}

/// Saves `snapshot` as `checkpoints/<update>/` and keeps only the newest `keep`.
pub fn save(
    run: &Path,
    config: &ExperimentConfig,
    snapshot: &Snapshot,
    keep: usize,
) -> anyhow::Result<PathBuf> {
    save_in(&run.join(CHECKPOINTS), config, snapshot, keep, None)
}

/// The folder of a run's best checkpoint: `best/<update>/`, the one that scored highest in the
/// held-out evaluations during training (`log.keep_best`), with its [`BestScore`].
pub const BEST: &str = "best";
/// The evaluation that made a checkpoint the best, next to its files.
const BEST_SCORE: &str = "evaluation.json";

/// What made a checkpoint the run's best: its held-out evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BestScore {
    pub update: u64,
    pub step: u64,
    pub reward_mean: f64,
    pub reward_ci95: Option<f64>,
    pub episodes: usize,
    pub greedy: bool,
}

/// Saves `snapshot` as the run's best checkpoint, `best/<update>/`, as safely as the others
/// (written whole under a hidden name and renamed into place; the one it replaces is removed
/// after).
pub fn save_best(
    run: &Path,
    config: &ExperimentConfig,
    snapshot: &Snapshot,
    score: &BestScore,
) -> anyhow::Result<PathBuf> {
    let score = serde_json::to_vec_pretty(score)?;
    save_in(&run.join(BEST), config, snapshot, 1, Some(&score))
}

/// The score of the run's best checkpoint, if it has one that reads.
pub fn best_score(run: &Path) -> Option<BestScore> {
    let newest = format::list_in(&run.join(BEST)).ok()?.pop()?;
    serde_json::from_slice(&std::fs::read(newest.join(BEST_SCORE)).ok()?).ok()
}

/// Saves `snapshot` as `<root>/<update>/` (with `score` as [`BEST_SCORE`] where given) and
/// keeps only the newest `keep` there.
fn save_in(
    root: &Path,
    config: &ExperimentConfig,
    snapshot: &Snapshot,
    keep: usize,
    score: Option<&[u8]>,
) -> anyhow::Result<PathBuf> {
    let non_finite = non_finite_tensors(&snapshot.tensors);
    anyhow::ensure!(
        non_finite.is_empty(),
        "the model holds values that are not finite (NaN or infinity) in {}; it was not saved",
        non_finite.join(", ")
    );
    std::fs::create_dir_all(root).with_context(|| format!("cannot create `{}`", root.display()))?;
    let dest = root.join(format!("{:08}", snapshot.progress.updates));
    // The same update again is the same state: the one on disk stays, so that there is no
    // instant without it.
    if !(dest.is_dir() && format::read(&dest).is_ok()) {
        let tmp = tempfile::Builder::new()
            .prefix(PARTIAL)
            .tempdir_in(root)
            .context("cannot create a checkpoint folder")?;
        let threads = plastic_agents::threads::count();
        format::write(tmp.path(), &config.to_toml(), snapshot, threads)?;
        if let Some(score) = score {
            let path = tmp.path().join(BEST_SCORE);
            std::fs::write(&path, score)?;
            format::sync_file(&path)?;
        }
        sync_dir(tmp.path())?;
        if dest.exists() {
            // Damaged (it did not read back): out of the way first, then deleted.
            discard(root, &dest)?;
        }
        std::fs::rename(tmp.keep(), &dest)
            .with_context(|| format!("cannot move the checkpoint to `{}`", dest.display()))?;
        sync_dir(root)?;
    }
    let all = format::list_in(root)?;
    for old in all.iter().take(all.len().saturating_sub(keep)) {
        discard(root, old)?;
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
    for dir in [run.to_path_buf(), run.join(CHECKPOINTS), run.join(BEST)] {
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
    with_config(format::load(path).map_err(explain)?)
}

/// The newest checkpoint of `run` that reads whole and holds finite numbers, naming any it
/// passes over; `None` when the run has no checkpoint.
pub fn newest_good(run: &Path) -> anyhow::Result<Option<Loaded>> {
    format::newest_good(run)
        .map_err(explain)?
        .map(with_config)
        .transpose()
}

fn with_config(checkpoint: Checkpoint) -> anyhow::Result<Loaded> {
    for why in &checkpoint.passed_over {
        eprintln!("warning: {why}; using `{}`", checkpoint.path.display());
    }
    // The text read with the rest of the checkpoint: the folder may be pruned since.
    let path = checkpoint.path.join(format::CONFIG);
    let config = ExperimentConfig::parse(&checkpoint.config, &path, &[])
        .with_context(|| format!("checkpoint `{}`", checkpoint.path.display()))?;
    Ok(Loaded { config, checkpoint })
}

/// The library's error, and what to do about it.
fn explain(err: CheckpointError) -> anyhow::Error {
    let remedy = match &err {
        CheckpointError::NotARun(_) => "runs are created by `plastic train`".to_string(),
        CheckpointError::NoneGood { run, .. } => format!(
            "train it again with `plastic train {}`",
            crate::run_dir::shell_word(&run.join(crate::run_dir::CONFIG))
        ),
        CheckpointError::NonFinite { .. } => "it cannot be evaluated or resumed".to_string(),
        _ => return err.into(),
    };
    anyhow::anyhow!("{err}: {remedy}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `eval` during training chooses a checkpoint that pruning may remove an instant later:
    /// what it read stays usable, config included.
    #[test]
    fn a_checkpoint_pruned_after_it_was_read_still_gives_its_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = ExperimentConfig::parse(
            "[env]\nid = \"bandit-dependent-easy:len=10\"\nnum_envs = 2\n\
             [core]\nkind = \"plastic-rnn\"\nhidden = 4\n",
            Path::new("tiny.toml"),
            &["run.total_steps=20".into(), "run.threads=1".into()],
        )
        .unwrap();
        let trainer = crate::commands::train::build(&config, tch::Device::Cpu, 1).unwrap();
        std::fs::write(dir.path().join(crate::run_dir::CONFIG), config.to_toml()).unwrap();
        let saved = save(dir.path(), &config, &trainer.snapshot(), 1).unwrap();
        let read = format::load(dir.path()).unwrap();
        std::fs::remove_dir_all(&saved).unwrap();
        let loaded = with_config(read).unwrap();
        assert_eq!(loaded.config.to_toml(), config.to_toml());
    }

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
