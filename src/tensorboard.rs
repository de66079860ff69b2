//! TensorBoard event files through `tensorboard-rs`'s file writer and summaries, behind the
//! trainer's metrics sink.
//!
//! `tensorboard-rs` panics on I/O errors (and in some of its functions unconditionally, which
//! are never called here). Every call, and the writer's drop, is therefore caught: the first
//! failure is reported once and logging stops, and training goes on.
use plastic_agents::metrics::{MetricsSink, RgbImage};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use tensorboard_rs::summary;
use tensorboard_rs::summary_writer::FileWriter;

pub struct TensorBoard {
    writer: Option<FileWriter>,
}

/// Buckets of a histogram: TensorBoard draws them, so a few dozen suffice.
const BUCKETS: usize = 30;

impl TensorBoard {
    pub fn new(dir: &Path) -> Self {
        let writer = catch_unwind(|| FileWriter::new(dir)).ok();
        if writer.is_none() {
            eprintln!(
                "warning: cannot write TensorBoard logs to `{}`; training goes on without them",
                dir.display()
            );
        }
        Self { writer }
    }

    fn with(&mut self, what: &str, f: impl FnOnce(&mut FileWriter)) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(|| f(writer))).is_err() {
            eprintln!(
                "warning: writing {what} to TensorBoard failed; training goes on without logs"
            );
            self.close();
        }
    }

    /// Drops the writer: its drop panics too when its thread has died (a full disk).
    fn close(&mut self) {
        if let Some(writer) = self.writer.take() {
            let _ = catch_unwind(AssertUnwindSafe(|| drop(writer)));
        }
    }
}

impl Drop for TensorBoard {
    fn drop(&mut self) {
        self.close();
    }
}

impl MetricsSink for TensorBoard {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) {
        self.with(tag, |w| {
            w.add_summary(summary::scalar(tag, value as f32), step as usize)
        });
    }

    fn histogram(&mut self, tag: &str, step: u64, values: &[f32]) {
        let Some(h) = Histogram::of(values) else {
            return;
        };
        self.with(tag, |w| {
            let s = summary::histogram_raw(
                tag,
                h.min,
                h.max,
                h.num,
                h.sum,
                h.sum_squares,
                &h.limits,
                &h.counts,
            );
            w.add_summary(s, step as usize)
        });
    }

    fn image(&mut self, tag: &str, step: u64, image: &RgbImage) {
        let (width, height) = (image.width, image.height);
        self.with(tag, |w| {
            // tensorboard-rs encodes the PNG from (channels, width, height) but records the
            // two sizes the other way round: put them right.
            let mut s = summary::image(tag, &image.pixels, &[3, width, height]);
            for v in s.mut_value().iter_mut() {
                v.mut_image().set_width(width as i32);
                v.mut_image().set_height(height as i32);
            }
            w.add_summary(s, step as usize)
        });
    }

    fn flush(&mut self) {
        self.with("events", FileWriter::flush);
    }
}

/// A histogram in TensorBoard's form: right bucket edges and counts.
struct Histogram {
    min: f64,
    max: f64,
    num: f64,
    sum: f64,
    sum_squares: f64,
    limits: Vec<f64>,
    counts: Vec<f64>,
}

impl Histogram {
    fn of(values: &[f32]) -> Option<Self> {
        let v: Vec<f64> = values
            .iter()
            .map(|&x| f64::from(x))
            .filter(|x| x.is_finite())
            .collect();
        if v.is_empty() {
            return None;
        }
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let width = ((max - min) / BUCKETS as f64).max(1e-12);
        let mut counts = vec![0.0; BUCKETS];
        for x in &v {
            let i = (((x - min) / width) as usize).min(BUCKETS - 1);
            counts[i] += 1.0;
        }
        let limits = (1..=BUCKETS).map(|i| min + width * i as f64).collect();
        Some(Self {
            min,
            max,
            num: v.len() as f64,
            sum: v.iter().sum(),
            sum_squares: v.iter().map(|x| x * x).sum(),
            limits,
            counts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_every_finite_value_once() {
        let h = Histogram::of(&[0.0, 1.0, 1.0, 2.0, f32::NAN]).unwrap();
        assert_eq!(h.counts.iter().sum::<f64>(), 4.0);
        assert_eq!((h.min, h.max, h.sum, h.sum_squares), (0.0, 2.0, 4.0, 6.0));
        assert_eq!(*h.counts.last().unwrap(), 1.0);
        assert!(Histogram::of(&[f32::NAN]).is_none());
        assert_eq!(Histogram::of(&[3.0, 3.0]).unwrap().counts[0], 2.0);
    }
}
