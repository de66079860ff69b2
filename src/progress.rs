//! Progress of long work: a bar on a terminal; off one (a log file, a pipe, a scheduler's
//! output) a line every [`LINE_EVERY`], so that a log says how far the work got without
//! growing with its speed.
use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

/// Off a terminal, a progress line this often.
pub const LINE_EVERY: Duration = Duration::from_secs(15);

/// When the next paced line is due: [`LINE_EVERY`] after the start, then after the last line.
pub struct Pace {
    last: Instant,
}

impl Pace {
    /// Crate-visible: a pace starts when its work does, which no `Default` would say.
    pub(crate) fn new() -> Self {
        Self {
            last: Instant::now(),
        }
    }

    /// Whether a line is due now (and if so, the next one is [`LINE_EVERY`] from now).
    pub fn due(&mut self) -> bool {
        let due = self.last.elapsed() >= LINE_EVERY;
        if due {
            self.last = Instant::now();
        }
        due
    }
}

/// Training's progress line off a terminal, every [`LINE_EVERY`] and at the end: the steps per
/// second of training alone since the last line (evaluations and pictures left out), and the
/// time left at this process's pace so far (theirs in, as they recur).
pub struct TrainingLines {
    pace: Pace,
    started: Instant,
    started_steps: u64,
    line_steps: u64,
    line_training: Duration,
}

impl TrainingLines {
    /// For a process that starts at environment step `steps`.
    pub fn new(steps: u64) -> Self {
        Self {
            pace: Pace::new(),
            started: Instant::now(),
            started_steps: steps,
            line_steps: steps,
            line_training: Duration::ZERO,
        }
    }

    /// The pace for the line due now (always with `last`), at `steps` of `total_steps` after
    /// `training` spent in updates by this process; `None` when no line is due.
    pub fn due(
        &mut self,
        steps: u64,
        total_steps: u64,
        training: Duration,
        last: bool,
    ) -> Option<String> {
        if !(self.pace.due() || last) {
            return None;
        }
        let trained = (training - self.line_training).as_secs_f64().max(1e-9);
        let rate = (steps - self.line_steps) as f64 / trained;
        (self.line_steps, self.line_training) = (steps, training);
        let left = time_left(
            total_steps.saturating_sub(steps),
            steps - self.started_steps,
            self.started.elapsed(),
        );
        let left = left.map_or("unknown".into(), |d| {
            indicatif::HumanDuration(d).to_string()
        });
        Some(format!("{rate:.0} steps/s training, {left} left"))
    }
}

/// The time `remaining` steps take at the pace of `done` steps in `elapsed`.
fn time_left(remaining: u64, done: u64, elapsed: Duration) -> Option<Duration> {
    (done > 0).then(|| elapsed.mul_f64(remaining as f64 / done as f64))
}

/// Episodes of an evaluation (`plastic eval`, `plastic rollout`), across the policies it runs.
pub struct EpisodeProgress {
    bar: ProgressBar,
    pace: Pace,
}

impl EpisodeProgress {
    pub fn new(total: usize) -> Self {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>16} {bar:30} {human_pos}/{human_len} episodes  [{elapsed_precise} < {eta_precise}]",
            )
            .expect("a valid template"),
        );
        Self {
            bar,
            pace: Pace::new(),
        }
    }

    /// `policy` is running, and `ended` episodes of the evaluation have ended.
    pub fn set(&mut self, policy: &str, ended: usize) {
        if self.bar.message() != policy {
            self.bar.set_message(policy.to_string());
        }
        self.bar.set_position(ended as u64);
        if self.bar.is_hidden() && self.pace.due() {
            eprintln!(
                "evaluating {policy}: {ended}/{} episodes after {:.0} s",
                self.bar.length().unwrap_or(0),
                self.bar.elapsed().as_secs_f64()
            );
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_goes_at_the_pace_so_far() {
        let minute = Duration::from_secs(60);
        assert_eq!(time_left(300, 100, minute), Some(3 * minute));
        assert_eq!(time_left(0, 100, minute), Some(Duration::ZERO));
        assert_eq!(time_left(300, 0, minute), None);
    }
}
