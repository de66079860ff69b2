//! A run's results as plain CSV, so that statistics never parse event files:
//!
//! - `episodes.csv`: every finished training episode, Stable-Baselines3's `monitor.csv`
//!   columns `r` (return), `l` (length), `t` (seconds of training), plus `step` (environment
//!   steps at the end of the update it ended in) and `regret` (bandits; empty otherwise).
//! - `evaluations.csv`: every held-out evaluation: `update`, `step`, `t`, the mean reward
//!   and its 95% interval, the same for regret (bandits), and the episode count.
//!
//! Rows are appended in whole lines and synced before each checkpoint. A resume first cuts
//! both files back to its checkpoint's step (and a line a kill cut short), so rows are never
//! repeated, and `t` goes on from the last row kept: minutes of training, not of waiting.
use crate::durable::write_atomic;
use anyhow::Context;
use plastic_agents::a2c::EpisodeEnd;
use plastic_envs::rollout::RolloutStats;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const EPISODES: &str = "episodes.csv";
pub const EVALUATIONS: &str = "evaluations.csv";
const EPISODES_HEADER: &str = "r,l,t,step,regret";
const EVALUATIONS_HEADER: &str =
    "update,step,t,reward_mean,reward_ci95,regret_mean,regret_ci95,episodes";

pub struct Records {
    episodes: Appender,
    evaluations: Appender,
    started: Instant,
    /// Seconds trained before this process (from the rows kept).
    offset: f64,
}

struct Appender {
    path: PathBuf,
    file: BufWriter<File>,
}

impl Appender {
    fn open(path: PathBuf, header: &str) -> anyhow::Result<Self> {
        let is_new = !path.exists();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open `{}`", path.display()))?;
        let mut a = Self {
            path,
            file: BufWriter::new(file),
        };
        if is_new {
            writeln!(a.file, "{header}")?;
        }
        Ok(a)
    }

    fn sync(&mut self) -> anyhow::Result<()> {
        self.file
            .flush()
            .and_then(|()| self.file.get_ref().sync_data())
            .with_context(|| format!("cannot write `{}`", self.path.display()))
    }
}

impl Records {
    /// Opens the records of `run` to continue after environment step `from_step` (0 for a
    /// fresh run): rows past it are cut first, and with `redo_evaluation` the evaluation at it
    /// too (the resume does it again: [`crate::pending`]).
    pub fn open(run: &Path, from_step: u64, redo_evaluation: bool) -> anyhow::Result<Self> {
        let evaluations_to = match redo_evaluation {
            true => from_step.saturating_sub(1),
            false => from_step,
        };
        let mut offset: f64 = 0.0;
        for (name, step_column, last_step) in
            [(EPISODES, 3, from_step), (EVALUATIONS, 1, evaluations_to)]
        {
            let kept_t = cut_after(&run.join(name), step_column, last_step)?;
            offset = offset.max(kept_t);
        }
        Ok(Self {
            episodes: Appender::open(run.join(EPISODES), EPISODES_HEADER)?,
            evaluations: Appender::open(run.join(EVALUATIONS), EVALUATIONS_HEADER)?,
            started: Instant::now(),
            offset,
        })
    }

    fn seconds(&self) -> f64 {
        self.offset + self.started.elapsed().as_secs_f64()
    }

    pub fn episodes(&mut self, ended: &[EpisodeEnd], step: u64) -> anyhow::Result<()> {
        let t = self.seconds();
        for e in ended {
            let regret = e.regret.map_or(String::new(), |r| r.to_string());
            writeln!(
                self.episodes.file,
                "{},{},{t:.3},{step},{regret}",
                e.ret, e.len
            )?;
        }
        Ok(())
    }

    pub fn evaluation(&mut self, update: u64, step: u64, s: &RolloutStats) -> anyhow::Result<()> {
        let t = self.seconds();
        let ci = |e: &plastic_envs::rollout::Estimate| {
            e.std_err.map_or(String::new(), |s| (1.96 * s).to_string())
        };
        let (regret_mean, regret_ci) = match &s.regret {
            Some(r) => (r.mean.to_string(), ci(r)),
            None => (String::new(), String::new()),
        };
        writeln!(
            self.evaluations.file,
            "{update},{step},{t:.3},{},{},{regret_mean},{regret_ci},{}",
            s.episode_return.mean,
            ci(&s.episode_return),
            s.episodes
        )?;
        Ok(())
    }

    /// Makes every row so far durable: called before each checkpoint.
    pub fn sync(&mut self) -> anyhow::Result<()> {
        self.episodes.sync()?;
        self.evaluations.sync()
    }
}

/// Keeps the header and the whole rows of `path` whose `step_column` is at most `last_step`;
/// returns the largest `t` (third column) kept.
fn cut_after(path: &Path, step_column: usize, last_step: u64) -> anyhow::Result<f64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(0.0);
    };
    let mut kept = String::with_capacity(text.len());
    let mut t_max: f64 = 0.0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.ends_with('\n') {
            break; // cut short by a kill
        }
        let fields: Vec<&str> = line.trim_end().split(',').collect();
        let step = fields.get(step_column).and_then(|s| s.parse::<u64>().ok());
        match (i, step) {
            (0, _) => kept.push_str(line),
            (_, Some(step)) if step <= last_step => {
                if let Some(t) = fields.get(2).and_then(|t| t.parse::<f64>().ok()) {
                    t_max = t_max.max(t);
                }
                kept.push_str(line);
            }
            _ => {}
        }
    }
    if kept.len() < text.len() {
        write_atomic(path, kept.as_bytes())?;
    }
    Ok(t_max)
}

/// One row of `evaluations.csv`: the columns read back (by name, so columns added later do
/// not break older readers).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Evaluation {
    pub step: u64,
    pub reward_mean: f64,
    /// Empty outside bandits.
    pub regret_mean: Option<f64>,
}

/// The rows of an `evaluations.csv`. Blank lines are passed over; a damaged file (a missing
/// column, a row of the wrong width, a value that is not a number) is one error naming the
/// file and the line, as reading on would compute statistics from whatever was left.
pub fn read_evaluations(path: &Path) -> anyhow::Result<Vec<Evaluation>> {
    let damaged = |e: csv::Error| {
        anyhow::anyhow!(
            "`{}` is damaged ({e}): it should hold plastic's held-out evaluations under the \
             header `{EVALUATIONS_HEADER}`; restore it, or leave its run out",
            path.display()
        )
    };
    let mut reader = match csv::Reader::from_path(path) {
        Ok(reader) => reader,
        Err(e) if e.is_io_error() => {
            return Err(e).with_context(|| format!("cannot read `{}`", path.display()))
        }
        Err(e) => return Err(damaged(e)),
    };
    reader
        .deserialize()
        .map(|row| row.map_err(damaged))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_cuts_rows_past_its_checkpoint_and_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(EVALUATIONS);
        let rows = [
            EVALUATIONS_HEADER,
            "10,400,1.5,3.0,0.1,,,8",
            "20,800,3.25,4.0,0.1,,,8",
            "30,1200,5.0,4.5,0.1,,,8",
        ];
        std::fs::write(&path, format!("{}\n30,16", rows.join("\n") + "\n")).unwrap();
        assert_eq!(cut_after(&path, 1, 800).unwrap(), 3.25);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, rows[..3].join("\n") + "\n");
        let read = read_evaluations(&path).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!((read[1].step, read[1].reward_mean), (800, 4.0));
        assert_eq!(read[1].regret_mean, None);
        assert_eq!(cut_after(&dir.path().join("none.csv"), 1, 0).unwrap(), 0.0);
    }

    #[test]
    fn damaged_evaluations_are_one_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(EVALUATIONS);
        let write = |text: &str| std::fs::write(&path, text).unwrap();
        // Blank lines at the end (an editor's) are no damage; no regret column is no regret.
        write("update,step,t,reward_mean\n1,100,1.0,2.5\n\n\n");
        let rows = read_evaluations(&path).unwrap();
        assert_eq!(
            rows,
            [Evaluation {
                step: 100,
                reward_mean: 2.5,
                regret_mean: None
            }]
        );
        for damaged in [
            "\u{0}\u{ff}garbage\n1,2\n",
            "update,step,t,regret_mean\n1,100,1.0,0.5\n",
            &format!("{EVALUATIONS_HEADER}\n1,100,1.0,2.5,0.1,,,8\n2,200\n"),
            &format!("{EVALUATIONS_HEADER}\n1,1e2,1.0,2.5,0.1,,,8\n"),
        ] {
            write(damaged);
            let msg = format!("{:#}", read_evaluations(&path).unwrap_err());
            assert!(
                msg.contains(&format!("`{}` is damaged", path.display()))
                    && msg.contains("line")
                    && !msg.contains('\n'),
                "{damaged:?}: {msg}"
            );
        }
    }
}
