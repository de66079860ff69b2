//! TensorBoard event files through `tensorboard-rs`'s file writer and summaries, behind the
//! trainer's metrics sink, and the run's config as TensorBoard's text and HParams plugins
//! read it.
//!
//! `tensorboard-rs` panics on I/O errors (and in some of its functions unconditionally, such
//! as `add_text` and `add_hparams`, which are never called here: the config's summaries are
//! built from `tensorboard-proto`'s messages instead). Every call, and the writer's drop, is
//! therefore caught: the first failure is reported once and logging stops, and training goes
//! on.
use plastic_agents::metrics::{MetricsSink, RgbImage};
use protobuf::well_known_types::Value;
use protobuf::{Message, RepeatedField};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use tensorboard_proto::plugin_hparams::{HParamsPluginData, SessionStartInfo};
use tensorboard_proto::summary::{
    Summary, SummaryMetadata, SummaryMetadata_PluginData, Summary_Value,
};
use tensorboard_proto::tensor::TensorProto;
use tensorboard_proto::tensor_shape::TensorShapeProto;
use tensorboard_proto::types::DataType;
use tensorboard_rs::summary::{self, histogram_raw, scalar};
use tensorboard_rs::summary_writer::FileWriter;

pub struct TensorBoard {
    writer: Option<FileWriter>,
}

/// The tag of the config's table in TensorBoard's Text tab.
pub const CONFIG_TAG: &str = "config";
/// The tag the HParams plugin reads a run's hyperparameters from (TensorBoard's
/// `hparams.metadata.SESSION_START_INFO_TAG`).
pub const SESSION_START_INFO_TAG: &str = "_hparams_/session_start_info";

/// One hyperparameter, as the HParams dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum HParam {
    /// Shown as the integer it is in the Text tab. The HParams plugin has no integer type
    /// (its values are `google.protobuf.Value`s, whose numbers are doubles, and its data types
    /// are string, bool and float64), so there it is a number where a double holds it
    /// exactly, and its digits as text beyond (a seed above 2^53).
    Int(i64),
    Number(f64),
    Text(String),
    Bool(bool),
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

impl TensorBoard {
    /// The run's resolved config at `step`: a markdown table of every key in the Text tab
    /// (tag [`CONFIG_TAG`]), and the keys as hyperparameters in the HParams dashboard.
    pub fn config(&mut self, step: u64, hparams: &[(String, HParam)]) {
        let text = plugin_value(CONFIG_TAG, "text", Vec::new(), Some(config_table(hparams)));
        let mut session = SessionStartInfo::new();
        for (key, value) in hparams {
            session
                .mut_hparams()
                .insert(key.clone(), hparam_value(value));
        }
        let mut data = HParamsPluginData::new();
        data.set_version(0);
        data.set_session_start_info(session);
        let content = data.write_to_bytes().expect("an in-memory message encodes");
        let hparams = plugin_value(SESSION_START_INFO_TAG, "hparams", content, None);
        let mut summary = Summary::new();
        summary.set_value(RepeatedField::from(vec![text, hparams]));
        self.with("the config", |w| w.add_summary(summary, step as usize));
    }
}

/// The config as a markdown table for the Text tab, every value as the config writes it.
fn config_table(hparams: &[(String, HParam)]) -> String {
    let mut table = String::from("| key | value |\n|---|---|\n");
    for (key, value) in hparams {
        let shown = match value {
            HParam::Int(i) => i.to_string(),
            HParam::Number(x) => x.to_string(),
            HParam::Text(t) => format!("`{}`", t.replace('|', "\\|")),
            HParam::Bool(b) => b.to_string(),
        };
        table += &format!("| {key} | {shown} |\n");
    }
    table
}

/// A hyperparameter as the HParams plugin reads it.
fn hparam_value(value: &HParam) -> Value {
    let mut v = Value::new();
    match value {
        HParam::Int(i) => match crate::config::integral_float(*i as f64) {
            Some(exact) if exact == *i => v.set_number_value(*i as f64),
            _ => v.set_string_value(i.to_string()),
        },
        HParam::Number(x) => v.set_number_value(*x),
        HParam::Text(t) => v.set_string_value(t.clone()),
        HParam::Bool(b) => v.set_bool_value(*b),
    }
    v
}

/// A summary value for TensorBoard plugin `plugin` (with its `content`), holding `text` as a
/// string tensor (what the Text plugin shows) or an empty one.
fn plugin_value(tag: &str, plugin: &str, content: Vec<u8>, text: Option<String>) -> Summary_Value {
    let mut plugin_data = SummaryMetadata_PluginData::new();
    plugin_data.set_plugin_name(plugin.to_string());
    plugin_data.set_content(content);
    let mut metadata = SummaryMetadata::new();
    metadata.set_plugin_data(plugin_data);
    let mut tensor = TensorProto::new();
    tensor.set_dtype(DataType::DT_STRING);
    tensor.set_tensor_shape(TensorShapeProto::new());
    tensor.set_string_val(RepeatedField::from(
        text.map(String::into_bytes).into_iter().collect::<Vec<_>>(),
    ));
    let mut value = Summary_Value::new();
    value.set_tag(tag.to_string());
    value.set_metadata(metadata);
    value.set_tensor(tensor);
    value
}

impl Drop for TensorBoard {
    fn drop(&mut self) {
        self.close();
    }
}

impl MetricsSink for TensorBoard {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) {
        self.with(tag, |w| {
            w.add_summary(scalar(tag, value as f32), step as usize)
        });
    }

    fn histogram(&mut self, tag: &str, step: u64, values: &[f32]) {
        let Some(h) = Histogram::of(values) else {
            return;
        };
        self.with(tag, |w| {
            let summary = histogram_raw(
                tag,
                h.min,
                h.max,
                h.num,
                h.sum,
                h.sum_squares,
                &h.limits,
                &h.counts,
            );
            w.add_summary(summary, step as usize)
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
    fn integers_keep_every_digit() {
        let big = (1i64 << 53) + 1;
        let hparams = [
            ("run.seed".to_string(), HParam::Int(big)),
            ("core.hidden".to_string(), HParam::Int(100)),
            ("optim.lr".to_string(), HParam::Number(3e-4)),
        ];
        let table = config_table(&hparams);
        assert!(
            table.contains("| run.seed | 9007199254740993 |")
                && table.contains("| core.hidden | 100 |")
                && table.contains("| optim.lr | 0.0003 |"),
            "{table}"
        );
        // A double holds 100 exactly, not 2^53 + 1: its digits go as text.
        assert_eq!(hparam_value(&hparams[1].1).get_number_value(), 100.0);
        assert_eq!(
            hparam_value(&hparams[0].1).get_string_value(),
            big.to_string()
        );
    }

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
