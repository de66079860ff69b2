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
    pub fn new() -> Self {
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
