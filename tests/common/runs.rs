//! Runs for command-line tests: a tiny config, training it, reading what a run folder holds.
// Each test crate uses a part of these.
#![allow(dead_code)]
use super::{json_stdout, plastic};
use serde_json::Value;
use std::path::Path;

/// A config small enough to train in a second or two.
pub fn tiny_config(dir: &Path, env: &str, core: &str) -> std::path::PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[run]
name = "tiny"
seed = 5
total_steps = 480
device = "cpu"
threads = 1

[env]
id = "{env}"
num_envs = 4

[core]
{core}

[optim]
lr = 0.002

[log]
every = 1
histograms_every = 2
images_every = 3
eval_every = 2
eval_episodes = 8
checkpoint_every = 2
keep_checkpoints = 2
"#
        ),
    )
    .unwrap();
    path
}

pub const PLASTIC: &str = "kind = \"plastic-rnn\"\nhidden = 8";

pub fn train(config: &Path, out: &Path, extra: &[&str]) {
    plastic()
        .arg("train")
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(extra)
        .assert()
        .success();
}

/// `plastic eval <run> --episodes N --json`, parsed.
pub fn eval_json(run: &Path, episodes: u32) -> Value {
    json_stdout(plastic().arg("eval").arg(run).args([
        "--episodes",
        &episodes.to_string(),
        "--json",
    ]))
}

/// Edits `key = value` in a run's config.toml, as a user would (`key` must be unique in it).
pub fn set_in_run_config(run: &Path, key: &str, value: &str) {
    let path = run.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let prefix = format!("{key} = ");
    assert_eq!(text.lines().filter(|l| l.starts_with(&prefix)).count(), 1);
    let edited: Vec<String> = text
        .lines()
        .map(|l| match l.starts_with(&prefix) {
            true => format!("{prefix}{value}"),
            false => l.to_string(),
        })
        .collect();
    std::fs::write(&path, edited.join("\n")).unwrap();
}

/// The complete checkpoints of a run (hidden folders are unfinished or being removed).
pub fn checkpoints(run: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// stderr of a command that must fail with an error (status 1), not a panic or a signal.
pub fn failure_message(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.assert().code(1).get_output().stderr.clone();
    let msg = String::from_utf8(out).unwrap();
    assert!(!msg.contains("panicked"), "{msg}");
    msg
}

/// The cached environment's Python, which has TensorBoard.
pub fn python() -> std::process::Command {
    let venv = std::env::var("VIRTUAL_ENV").expect(
        "run the tests through scripts/with-env.sh (make test), which provides TensorBoard",
    );
    std::process::Command::new(Path::new(&venv).join("bin/python"))
}

/// Asserts that a command succeeded, showing its stderr otherwise.
pub fn assert_succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads a run's config back as TensorBoard does: the Text plugin's table, and the HParams
/// plugin's session start info (parsed by the plugin's own `metadata` module). Prints JSON:
/// the table, the text summary's plugin, and each hyperparameter as `str()` shows it.
const CONFIG_READER: &str = r#"
import json, sys
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import metadata
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.TENSORS: 0})
acc.Reload()
text = acc.Tensors("config")[-1].tensor_proto.string_val[0].decode()
plugin = acc.SummaryMetadata("config").plugin_data.plugin_name
content = acc.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content
info = metadata.parse_session_start_info_plugin_data(content)
hparams = {k: str(getattr(v, v.WhichOneof("kind"))) for k, v in info.hparams.items()}
print(json.dumps({"text": text, "plugin": plugin, "hparams": hparams}))
"#;

/// A run's config as TensorBoard reads it back ([`CONFIG_READER`]).
pub fn tensorboard_config(run: &Path) -> Value {
    let out = python()
        .args(["-c", CONFIG_READER])
        .arg(run)
        .output()
        .unwrap();
    assert_succeeded(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `(step, width, height)` of every image of `tag` in the run's event files, read by
/// TensorBoard's own loader.
pub fn images(run: &Path, tag: &str) -> Vec<(u64, u64, u64)> {
    const READER: &str = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"images": 0})
acc.Reload()
print(json.dumps([[e.step, e.width, e.height] for e in acc.Images(sys.argv[2])]))
"#;
    let out = python()
        .args(["-c", READER])
        .arg(run)
        .arg(tag)
        .output()
        .unwrap();
    assert_succeeded(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `(step, value)` of every point of `tag` in the run's event files, read by TensorBoard's
/// own loader without its purging of out-of-order points: what the files really hold.
pub fn scalars(run: &Path, tag: &str) -> Vec<(u64, f64)> {
    const READER: &str = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0}, purge_orphaned_data=False)
acc.Reload()
print(json.dumps([[e.step, e.value] for e in acc.Scalars(sys.argv[2])]))
"#;
    let out = python()
        .args(["-c", READER])
        .arg(run)
        .arg(tag)
        .output()
        .unwrap();
    assert_succeeded(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}
