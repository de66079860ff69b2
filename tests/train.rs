//! Training, resuming and evaluating through the command line, and the TensorBoard files
//! read back by TensorBoard's own reader.
use plastic_agents::metrics::tags;
use predicates::prelude::PredicateBooleanExt;
use serde_json::Value;
use std::path::Path;

mod common;
use common::runs::{
    assert_succeeded, checkpoints, eval_json, failure_message, python, set_in_run_config,
    tensorboard_config, tiny_config, train, PLASTIC,
};
use common::{json_stdout, plastic};

#[test]
fn a_run_folder_holds_config_events_and_the_newest_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    // A folder name with a space: the commands the messages suggest quote it.
    let run = dir.path().join("my run");
    let quoted = format!("'{}'", run.display());
    plastic()
        .arg("train")
        .arg(&config)
        .args(["--out", run.to_str().unwrap(), "--set", "core.hidden=6"])
        .assert()
        .success()
        .stderr(
            predicates::str::contains(format!("plastic eval {quoted}"))
                // Off a terminal, the last progress line: training's own pace, time left.
                .and(predicates::str::is_match(
                    r"update 12/12: 480 steps, \d+ steps/s training, 0 seconds left, mean reward",
                ).unwrap()),
        );
    // 480 steps / (4 × 10) = 12 updates; checkpoints every 2, the newest 2 kept.
    assert_eq!(checkpoints(&run), ["00000010", "00000012"]);
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(resolved.contains("hidden = 6"), "{resolved}");
    let events = std::fs::read_dir(&run)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("events.out.tfevents")
        })
        .count();
    assert_eq!(events, 1);

    // The same folder again is refused, and nothing in it changes.
    plastic()
        .arg("train")
        .arg(&config)
        .arg("--out")
        .arg(&run)
        .assert()
        .failure()
        .stderr(predicates::str::contains(format!(
            "already holds a run; continue it with `plastic resume {quoted}`"
        )));
    assert_eq!(checkpoints(&run), ["00000010", "00000012"]);
    // So is a folder with other files: a new run's checkpoints must not mix with old ones.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    plastic()
        .arg("train")
        .arg(&config)
        .arg("--out")
        .arg(&other)
        .assert()
        .failure()
        .stderr(predicates::str::contains("is not empty"));
    let left: Vec<_> = std::fs::read_dir(&other).unwrap().collect();
    assert_eq!(left.len(), 1);
}

/// `plastic config` prints a whole config that `plastic train` takes, a config naming only
/// the environment trains, and `--total-steps` sets the run's length as
/// `--set run.total_steps=` does (exponent form included).
#[test]
fn a_printed_config_and_a_bare_one_train_for_the_steps_asked() {
    let dir = tempfile::tempdir().unwrap();
    let env = "bandit-dependent-easy:len=10";
    let out = plastic()
        .args(["config", env, "--set", "env.num_envs=4"])
        .output()
        .unwrap();
    assert_succeeded(&out);
    let printed = dir.path().join("printed.toml");
    std::fs::write(&printed, &out.stdout).unwrap();
    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, format!("[env]\nid = \"{env}\"\n")).unwrap();
    for (config, steps, total) in [(&printed, "80", 80), (&bare, "6e2", 600)] {
        let run = dir.path().join(config.file_stem().unwrap());
        train(
            config,
            &run,
            &[
                "--total-steps",
                steps,
                "--set",
                "core.hidden=6",
                "--set",
                "log.eval_episodes=8",
            ],
        );
        let written = std::fs::read_to_string(run.join("config.toml")).unwrap();
        let written: toml::Table = toml::from_str(&written).unwrap();
        assert_eq!(written["run"]["total_steps"].as_integer(), Some(total));
        assert_eq!(written["env"]["id"].as_str(), Some(env));
    }
}

/// The shipped bandit config learns, and `eval` judges it next to the references. Trained
/// briefly (200,000 steps, about 4 s of CPU), the LSTM already loses far less than random
/// pulls: regret 12.9 on these 200 episodes, and 8.0 to 16.0 with seeds 1 to 5, where random
/// loses 40.2; an agent that has not learned (6,400 steps) loses 40.1.
#[test]
fn eval_compares_the_agent_with_the_reference_policies() {
    let dir = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/bandit-dependent-easy.toml");
    let run = dir.path().join("run");
    let steps = [
        "--set",
        "run.total_steps=200000",
        "--set",
        "log.eval_episodes=50",
    ];
    train(&config, &run, &steps);
    let v = eval_json(&run, 200);
    assert_eq!(v["episodes"], 200);
    // Whole updates of 32 × 20 steps.
    assert_eq!(v["env_steps_trained"], 200_320);
    let policies: Vec<&str> = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    assert_eq!(policies, ["agent", "random", "thompson", "ucb1", "bayes"]);
    let regret = |row: usize| v["policies"][row]["regret"]["mean"].as_f64().unwrap();
    // A hundred pulls of arms 0.8 apart: random loses 0.4 a pull.
    assert!((regret(1) - 40.0).abs() < 3.0, "{v}");
    assert!(regret(0) < 0.6 * regret(1), "{v}");
    assert!(v["bayes_optimal_exact"].as_f64().is_some());

    // `rollout` reports in the same schema: the same fields, and the same in every row; and
    // its random policy on the same episodes (same default seed) gives eval's random row.
    let rolled = json_stdout(plastic().args([
        "rollout",
        "bandit-dependent-easy",
        "--episodes",
        "200",
        "--json",
    ]));
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&rolled), keys(&v));
    for row in v["policies"].as_array().unwrap() {
        assert_eq!(keys(row), keys(&rolled["policies"][0]), "{row}");
        assert_eq!(keys(&row["reward"]), ["ci95", "mean"]);
    }
    assert_eq!(rolled["policies"][0], v["policies"][1]);
    assert_eq!((&rolled["seed"], &v["seed"]), (&0.into(), &0.into()));
}

/// The shipped two-timescale config (`bandit-switching`, two traces per synapse) trains a
/// few updates, keeps its timescales in the resolved config, and `eval` judges it next to
/// random pulls, win-stay-lose-shift and the oracle that knows the arms.
#[test]
fn the_two_timescale_config_trains_and_is_judged_against_its_references() {
    let dir = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/bandit-switching.toml");
    let run = dir.path().join("run");
    let args = [
        "--set",
        "run.total_steps=1280",
        "--set",
        "core.hidden=8",
        "--set",
        "log.eval_episodes=8",
    ];
    train(&config, &run, &args);
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(resolved.contains("timescales = [4.0, 100.0]"), "{resolved}");
    let v = eval_json(&run, 20);
    // Whole updates of 32 × 20 steps.
    assert_eq!(v["env_steps_trained"], 1280);
    let policies: Vec<&str> = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    assert_eq!(policies, ["agent", "random", "win-stay", "oracle"], "{v}");
}

/// A damaged newest checkpoint is named, and the readers of the run go on from the one
/// before it; a resume writes a good one in its place.
#[test]
fn a_damaged_checkpoint_is_named_and_the_older_ones_serve_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    let run = dir.path().join("run");
    train(&config, &run, &[]);
    let newest = run.join("checkpoints/00000012");
    let state = newest.join("state.safetensors");
    let bytes = std::fs::read(&state).unwrap();
    std::fs::write(&state, &bytes[..bytes.len() / 2]).unwrap();
    let out = plastic()
        .args(["eval", run.to_str().unwrap(), "--episodes", "20", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["env_steps_trained"], 400);
    let warning = String::from_utf8(out.stderr).unwrap();
    assert!(
        warning.contains("00000012` is damaged or incomplete") && warning.contains("00000010`"),
        "{warning}"
    );
    let msg = failure_message(plastic().arg("eval").arg(&newest));
    assert!(msg.contains("00000012` is damaged or incomplete"), "{msg}");
    std::fs::remove_file(&state).unwrap();
    let msg = failure_message(plastic().arg("eval").arg(&newest));
    assert!(msg.contains("state.safetensors` is missing"), "{msg}");
    plastic()
        .args(["resume", run.to_str().unwrap()])
        .assert()
        .success()
        .stderr(
            predicates::str::contains("resuming").and(predicates::str::contains("from update 10")),
        );
    assert_eq!(checkpoints(&run), ["00000010", "00000012"]);
    assert_eq!(eval_json(&run, 20)["env_steps_trained"], 480);
}

/// `progress.json` counters edited by hand would end the run early or late: an update count
/// that is not the checkpoint's passes it over as damaged, and step counts that do not add up
/// are refused, naming the file.
#[test]
fn edited_progress_counters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    let run = dir.path().join("run");
    train(&config, &run, &[]);
    let progress = run.join("checkpoints/00000012/progress.json");
    let saved = std::fs::read_to_string(&progress).unwrap();
    let edit = |key: &str, value: u64| {
        let mut v: Value = serde_json::from_str(&saved).unwrap();
        v["progress"][key] = value.into();
        std::fs::write(&progress, v.to_string()).unwrap();
    };
    // 12 updates of 40 steps are 480 steps, the run's total.
    edit("env_steps", 400);
    let msg = failure_message(plastic().arg("resume").arg(&run));
    assert!(
        msg.contains(
            "00000012`: the checkpoint's `progress.json` does not add up: 12 updates of \
                      40 environment steps each, and 400"
        ) && msg.contains("delete that checkpoint folder"),
        "{msg}"
    );
    edit("updates", 11);
    plastic().arg("resume").arg(&run).assert().success().stderr(
        predicates::str::contains(
            "`progress.json` counts 11 updates in the checkpoint of update 12",
        )
        .and(predicates::str::contains("from update 10")),
    );
    assert_eq!(eval_json(&run, 20)["env_steps_trained"], 480);
}

#[test]
fn resume_continues_a_run_to_a_longer_budget() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    let run = dir.path().join("run");
    train(&config, &run, &[]);
    assert!(run.join("done.json").exists());
    // As if killed between the last checkpoint and marking the run done.
    std::fs::remove_file(run.join("done.json")).unwrap();
    plastic()
        .args(["resume", run.to_str().unwrap()])
        .assert()
        .success()
        .stderr(predicates::str::contains("already trained"));
    assert!(run.join("done.json").exists());
    plastic()
        .args(["resume", run.to_str().unwrap(), "--total-steps", "400"])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "--total-steps 400 is not above the 480 steps",
        ));
    // Keys that define the run cannot change between a checkpoint and its resumption ...
    set_in_run_config(&run, "rollout_len", "5");
    plastic()
        .args(["resume", run.to_str().unwrap(), "--total-steps", "800"])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "a2c.rollout_len = 5 (was \"episode\")",
        ));
    assert_eq!(checkpoints(&run), ["00000010", "00000012"]);
    // ... tuning ones can, and are named.
    set_in_run_config(&run, "rollout_len", "\"episode\"");
    set_in_run_config(&run, "lr", "0.001");
    plastic()
        .args(["resume", run.to_str().unwrap(), "--total-steps", "800"])
        .assert()
        .success()
        .stderr(predicates::str::contains("optim.lr = 0.001 (was 0.002)"));
    assert_eq!(checkpoints(&run), ["00000018", "00000020"]);
    let progress = std::fs::read_to_string(run.join("checkpoints/00000020/progress.json")).unwrap();
    assert!(progress.contains("\"env_steps\": 800"), "{progress}");
}

/// Truncated rollouts whose episodes straddle the checkpoint: the run stopped halfway and
/// resumed writes the very files of the run trained straight through, with A2C and PPO.
#[test]
fn a_resumed_truncated_run_ends_exactly_as_a_straight_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    let a2c = std::fs::read_to_string(&config).unwrap();
    // PPO whose KL target stops some updates early: its optimiser steps are not one per update.
    let ppo = "[ppo]\nn_epochs = 3\nminibatches = 2\ntarget_kl = 0.002\n";
    for (algorithm, text) in [("a2c", a2c.clone()), ("ppo", format!("{a2c}{ppo}"))] {
        std::fs::write(&config, text).unwrap();
        let straight = dir.path().join(format!("{algorithm}-straight"));
        let halves = dir.path().join(format!("{algorithm}-halves"));
        // 4 rows × 3 steps per update: 40 updates in all, episodes of 10 cut at every third step.
        let rollouts = ["--set", "a2c.rollout_len=3"];
        train(&config, &straight, &rollouts);
        train(
            &config,
            &halves,
            &[&rollouts[..], &["--set", "run.total_steps=240"]].concat(),
        );
        let progress = std::fs::read_to_string(halves.join("checkpoints/00000020/progress.json"));
        let progress = progress.unwrap();
        assert!(progress.contains("\"under_way\""), "{algorithm}");
        assert_eq!(progress.contains("\"optim_steps\""), algorithm == "ppo");
        plastic()
            .args(["resume", halves.to_str().unwrap(), "--total-steps", "480"])
            .assert()
            .success()
            .stderr(predicates::str::contains("note:").not());
        for file in ["state.safetensors", "progress.json"] {
            let read =
                |run: &Path| std::fs::read(run.join("checkpoints/00000040").join(file)).unwrap();
            assert!(
                read(&straight) == read(&halves),
                "{algorithm}: {file} differs"
            );
        }
    }
}

/// PPO's settings that cannot run are one-paragraph errors naming the key, before any run
/// folder exists; the resolved config of a PPO run reads back as the one it ran.
#[test]
fn ppo_runs_write_their_settings_and_refuse_impossible_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    let a2c = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{a2c}[ppo]\nminibatches = 2\n")).unwrap();
    let run = dir.path().join("run");
    for (set, key) in [
        ("ppo.n_epochs=0", "ppo.n_epochs = 0"),
        // env.num_envs = 4 rows.
        (
            "ppo.minibatches=3",
            "ppo.minibatches = 3 with env.num_envs = 4",
        ),
        ("ppo.clip_range=0", "ppo.clip_range = 0"),
        ("ppo.clip_range=-0.2", "ppo.clip_range = -0.2"),
        ("ppo.target_kl=nan", "ppo.target_kl = NaN"),
        ("ppo.epochs=3", "epochs"),
    ] {
        let msg = failure_message(plastic().arg("train").arg(&config).args([
            "--out",
            run.to_str().unwrap(),
            "--set",
            set,
        ]));
        assert!(msg.contains(key), "{set}: {msg}");
        assert!(!run.exists(), "{set} created a run folder");
    }
    train(&config, &run, &["--set", "ppo.clip_range_vf=0.3"]);
    let written = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        written.contains("[ppo]") && written.contains("clip_range_vf = 0.3"),
        "{written}"
    );
    assert!(written.contains("target_kl = inf"), "{written}");
    // The written config trains again, the same run.
    let again = dir.path().join("again");
    train(&run.join("config.toml"), &again, &[]);
    for file in ["state.safetensors", "progress.json"] {
        let read = |run: &Path| std::fs::read(run.join("checkpoints/00000012").join(file)).unwrap();
        assert!(read(&run) == read(&again), "{file} differs");
    }
}

#[test]
fn config_mistakes_are_one_line_errors_that_create_no_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    let run = dir.path().join("run");
    for (set, key) in [
        ("optim.lrr=1", "lrr"),
        ("a2c.gamma=7", "a2c.gamma"),
        ("a2c.trace_checkpoint_every=0", "a2c.trace_checkpoint_every"),
        ("core.kind=transformer", "transformer"),
        ("env.id=mase", "mase"),
        // More memory than any machine has: an error, not libtorch's panic.
        ("core.hidden=10000000", "of memory"),
        ("core=5", "`core` is a section"),
        ("run.name=1", "quote it"),
        ("run.name=../elsewhere", "run.name"),
    ] {
        let out = plastic()
            .arg("train")
            .arg(&config)
            .args(["--out", run.to_str().unwrap(), "--set", set])
            .assert()
            .failure()
            .get_output()
            .stderr
            .clone();
        let msg = String::from_utf8(out).unwrap();
        assert!(
            msg.contains(key) && !msg.contains("panicked"),
            "{set}: {msg}"
        );
        assert!(!run.exists(), "{set} created a run folder");
    }
    // A setting that does not fit the core says why, once.
    let msg = failure_message(plastic().arg("train").arg(&config).args([
        "--out",
        run.to_str().unwrap(),
        "--set",
        "core.kind=lstm",
        "--set",
        "core.modulation=none",
        "--set",
        "a2c.bptt=fused",
    ]));
    assert_eq!(msg.matches("runs plastic cores").count(), 1, "{msg}");
    plastic()
        .args(["eval", dir.path().to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicates::str::contains("not a run folder"));
}

/// Reads the event files with TensorBoard's `EventAccumulator` (the Python package installed
/// by scripts/setup.sh) and prints scalars, histograms and images as JSON.
const READER: &str = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "histograms": 0, "images": 0})
acc.Reload()
tags = acc.Tags()
print(json.dumps({
    "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
    "histograms": {t: [e.histogram_value.num for e in acc.Histograms(t)] for t in tags["histograms"]},
    "images": {t: [[e.width, e.height] for e in acc.Images(t)] for t in tags["images"]},
}))
"#;

fn read_events(run: &Path) -> Value {
    let out = python().args(["-c", READER]).arg(run).output().unwrap();
    assert_succeeded(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs scripts/curves.py with `args`.
fn curves_py<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    python()
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/curves.py"))
        .args(args)
        .output()
        .unwrap()
}

/// scripts/curves.py draws one polyline per run from the same events: 12 points of a constant
/// episode length lie on one horizontal line; a tag the run lacks is an error that lists its tags.
fn check_curves_chart(run: &Path, dir: &Path) {
    let svg = dir.join("curve.svg");
    let curves = |tag: &str| {
        curves_py(&[
            "--tag".into(),
            tag.into(),
            "--out".into(),
            svg.clone().into_os_string(),
            format!("tiny={}", run.display()).into(),
        ])
    };
    let missing = curves(tags::rollout::REGRET_MEAN);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && stderr.contains(tags::rollout::EP_LEN_MEAN),
        "{stderr}"
    );
    assert!(!svg.exists());
    assert_succeeded(&curves(tags::rollout::EP_LEN_MEAN));
    let text = std::fs::read_to_string(&svg).unwrap();
    let lines = polylines(&text);
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0].len(), 12, "{:?}", lines[0]);
    assert!(
        lines[0].iter().all(|p| p.1 == lines[0][0].1),
        "{:?}",
        lines[0]
    );
    assert!(text.contains(">tiny</text>"), "{text}");
}

/// The points of each polyline of an SVG chart, in drawing coordinates.
fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
    svg.match_indices("<polyline points=\"")
        .map(|(i, m)| {
            let rest = &svg[i + m.len()..];
            rest[..rest.find('"').unwrap()]
                .split(' ')
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

/// Writes the event files of a run trained for a minute, stopped, and resumed an hour later
/// for another minute: two files, as two processes write them, each with an evaluation at 30
/// and 60 seconds (and the progress tag `time/sps` at 0 and 60). Arguments: the folder, then
/// the two tags.
const RESUMED_RUN_EVENTS: &str = r#"
import sys
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
sps, reward = sys.argv[2:4]
step = 0
for start in [1000.0, 1000.0 + 3600.0]:
    writer = EventFileWriter(sys.argv[1])
    for second, tag in [(0, sps), (30, reward), (60, reward), (60, sps)]:
        step += 1
        value = summary_pb2.Summary.Value(tag=tag, simple_value=float(step))
        writer.add_event(event_pb2.Event(wall_time=start + second, step=step, summary=summary_pb2.Summary(value=[value])))
    writer.close()
"#;

#[test]
fn curves_by_minutes_leave_out_the_time_between_a_stop_and_its_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    assert_succeeded(
        &python()
            .args(["-c", RESUMED_RUN_EVENTS])
            .arg(&run)
            .args([tags::time::SPS, tags::eval::EP_REW_MEAN])
            .output()
            .unwrap(),
    );
    let svg = dir.path().join("minutes.svg");
    assert_succeeded(&curves_py(&[
        "--tag".as_ref(),
        tags::eval::EP_REW_MEAN.as_ref(),
        "--x".as_ref(),
        "minutes".as_ref(),
        "--out".as_ref(),
        svg.as_os_str(),
        run.as_os_str(),
    ]));
    let text = std::fs::read_to_string(&svg).unwrap();
    let lines = polylines(&text);
    assert_eq!(lines.len(), 1, "{text}");
    // Half a minute apart in training time (0.5, 1, 1.5, 2), not an hour's gap in the middle.
    let xs: Vec<f64> = lines[0].iter().map(|p| p.0).collect();
    assert_eq!(xs.len(), 4, "{xs:?}");
    let gap = xs[1] - xs[0];
    assert!(gap > 10.0, "{xs:?}");
    for pair in xs.windows(2) {
        assert!((pair[1] - pair[0] - gap).abs() < 0.5, "{xs:?}");
    }
    assert!(text.contains(">minutes of training</text>"), "{text}");
}

/// STPN's pictures and histograms: its fast weights in place of the Hebbian trace, and λ and γ
/// per synapse (`H × (in + H)` = 6 × (16 + 6) each on the maze), trained by its hand-written
/// pass.
#[test]
fn tensorboard_shows_stpn_fast_weights_and_its_decay_and_gain() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(
        dir.path(),
        "maze:size=7,len=10",
        "kind = \"stpn\"\nhidden = 6\nmodulation = \"none\"",
    );
    let run = dir.path().join("run");
    train(&config, &run, &["--set", "a2c.bptt=fused"]);
    let v = read_events(&run);
    for tag in [tags::weights::STP_LAMBDA, tags::weights::STP_GAMMA] {
        let nums = v["histograms"][tag].as_array().unwrap();
        assert_eq!(nums.len(), 6, "{tag}");
        assert!(
            nums.iter().all(|n| n.as_f64() == Some(132.0)),
            "{tag}: {nums:?}"
        );
    }
    let fast = v["images"][tags::plasticity::FAST].as_array().unwrap();
    assert_eq!(fast.len(), 4, "{v}");
    let (w, h) = (fast[0][0].as_u64().unwrap(), fast[0][1].as_u64().unwrap());
    // 22 columns and 6 rows of 16-pixel cells, wider than tall.
    assert!(w > h && (300..2000).contains(&w), "{w}×{h}");
    assert!(v["images"].get(tags::plasticity::HEBB).is_none(), "{v}");
}

#[test]
fn tensorboard_reads_back_the_tags_and_values_of_a_maze_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(
        dir.path(),
        "maze:size=7,len=10",
        "kind = \"plastic-rnn\"\nhidden = 8\nmodulation = \"none\"",
    );
    let run = dir.path().join("run");
    let entropy = [
        "--set",
        "a2c.entropy_coef=0.6",
        "--set",
        "a2c.entropy_schedule=linear",
    ];
    train(&config, &run, &entropy);
    let v = read_events(&run);
    let scalars = &v["scalars"];
    for tag in [
        tags::rollout::EP_REW_MEAN,
        tags::rollout::EP_LEN_MEAN,
        tags::train::POLICY_LOSS,
        tags::train::VALUE_LOSS,
        tags::train::ENTROPY,
        tags::train::EXPLAINED_VARIANCE,
        tags::train::GRAD_NORM,
        tags::train::LEARNING_RATE,
        tags::train::ENTROPY_COEF,
        tags::time::SPS,
        tags::plasticity::MEAN_ABS_HEBB,
    ] {
        assert_eq!(
            scalars[tag].as_array().map(Vec::len),
            Some(12),
            "{tag}: {v}"
        );
    }
    for tag in [tags::plasticity::ETA, tags::eval::EP_REW_MEAN] {
        assert_eq!(scalars[tag].as_array().map(Vec::len), Some(6), "{tag}: {v}");
    }
    // Values as logged: steps are environment steps, episodes last 10 steps, lr is constant.
    let lens = scalars[tags::rollout::EP_LEN_MEAN].as_array().unwrap();
    assert_eq!(lens[0], serde_json::json!([40, 10.0]));
    assert_eq!(lens[11][0], 480);
    for point in scalars[tags::train::LEARNING_RATE].as_array().unwrap() {
        assert!((point[1].as_f64().unwrap() - 0.002).abs() < 1e-9, "{point}");
    }
    // The entropy weight falls linearly from 0.6 towards 0 over the 12 updates.
    for (u, point) in scalars[tags::train::ENTROPY_COEF]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let expected = 0.6 * (1.0 - u as f64 / 12.0);
        assert!(
            (point[1].as_f64().unwrap() - expected).abs() < 1e-6,
            "{point}"
        );
    }
    // Histograms every 2 updates (+ none extra at the end, 12 being even), of 8×8 = 64 values.
    for tag in [tags::weights::W, tags::weights::ALPHA] {
        let nums = v["histograms"][tag].as_array().unwrap();
        assert_eq!(nums.len(), 6, "{tag}");
        assert!(
            nums.iter().all(|n| n.as_f64() == Some(64.0)),
            "{tag}: {nums:?}"
        );
    }
    // Pictures every 3 updates, titled and legended, so some hundreds of pixels each way
    // (python/tests/test_pictures.py looks into them).
    for tag in [tags::maze::VISITS, tags::maze::PATH, tags::plasticity::HEBB] {
        let images = v["images"][tag].as_array().unwrap();
        assert_eq!(images.len(), 4, "{tag}");
        let (w, h) = (
            images[0][0].as_u64().unwrap(),
            images[0][1].as_u64().unwrap(),
        );
        assert!(
            (200..2000).contains(&w) && (150..2000).contains(&h),
            "{tag}: {w}×{h}"
        );
    }

    check_curves_chart(&run, dir.path());

    // A maze agent is judged against the shortest-path oracle.
    let e = eval_json(&run, 20);
    assert_eq!(e["policies"][2]["policy"], "oracle");
    let oracle = e["policies"][2]["reward"]["mean"].as_f64().unwrap();
    let agent = e["policies"][0]["reward"]["mean"].as_f64().unwrap();
    let pct = e["percent_of_oracle"].as_f64().unwrap();
    assert!(
        oracle > 0.0 && (pct - 100.0 * agent / oracle).abs() < 1e-9,
        "{e}"
    );
}

#[test]
fn ctrl_c_saves_a_checkpoint_that_resume_continues_from() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    let run = dir.path().join("run");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("plastic"))
        .arg("train")
        .arg(&config)
        .args([
            "--out",
            run.to_str().unwrap(),
            "--set",
            "run.total_steps=100000000",
        ])
        .args(["--set", "log.checkpoint_every=1000000"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it train for a moment (the config is written before the first update).
    while !run.join("config.toml").exists() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // One process trains a run at a time.
    plastic()
        .args(["resume", run.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicates::str::contains("another plastic process"));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Saved and stopped, but not finished: the shell's code for an interrupt.
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("stopped at update") && stderr.contains("plastic resume"),
        "{stderr}"
    );
    let saved = checkpoints(&run);
    assert_eq!(saved.len(), 1, "{saved:?}");
    let update: u64 = saved[0].parse().unwrap();
    assert!(update >= 1);
    plastic()
        .args(["resume", run.to_str().unwrap(), "--total-steps"])
        .arg(((update + 2) * 40).to_string())
        .assert()
        .success();
    assert_eq!(
        checkpoints(&run).last().unwrap(),
        &format!("{:08}", update + 2)
    );
}

#[test]
fn a_diverging_run_stops_with_a_message_and_keeps_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    let run = dir.path().join("run");
    train(&config, &run, &[]);
    // Finite as a config value, infinite once applied to f32 weights.
    set_in_run_config(&run, "lr", "1e300");
    let msg = failure_message(
        plastic()
            .args(["resume", run.to_str().unwrap()])
            .args(["--total-steps", "800"]),
    );
    assert!(
        msg.contains("not finite")
            && msg.contains("optim.lr = 1e300")
            && msg.contains("last good checkpoint")
            && msg.contains("00000012"),
        "{msg}"
    );
    assert_eq!(checkpoints(&run), ["00000010", "00000012"]);
}

/// A run that stops before its first checkpoint (here: diverging at once) is not a dead end:
/// `plastic resume` trains it from the start.
#[test]
fn a_run_without_a_checkpoint_resumes_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    let run = dir.path().join("run");
    let msg = failure_message(plastic().arg("train").arg(&config).args([
        "--out",
        run.to_str().unwrap(),
        "--set",
        "optim.lr=1e300",
    ]));
    assert!(
        msg.contains("not finite") && msg.contains("trains it again from the start"),
        "{msg}"
    );
    assert!(run.join("config.toml").exists() && !run.join("checkpoints").exists());
    set_in_run_config(&run, "lr", "0.002");
    plastic()
        .args(["resume", run.to_str().unwrap()])
        .assert()
        .success()
        .stderr(predicates::str::contains("training it from the start"));
    assert_eq!(checkpoints(&run), ["00000010", "00000012"]);
}

/// The best held-out mean reward in `evaluations.csv` and its update (the first of ties).
fn best_evaluation(run: &Path) -> (u64, f64) {
    let csv = std::fs::read_to_string(run.join("evaluations.csv")).unwrap();
    let rows: Vec<(u64, f64)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect();
    rows.iter()
        .copied()
        .fold(rows[0], |b, r| if r.1 > b.1 { r } else { b })
}

/// Held-out evaluations during training are printed, greedy on request; the best checkpoint is
/// kept as `best/<update>/` (read by `plastic eval <run>/best`, kept across a resume); and a
/// target stops the run, as finished.
#[test]
fn evaluations_during_training_print_keep_the_best_and_stop_at_a_target() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    let run = dir.path().join("run");
    let train_err = |cmd: &mut assert_cmd::Command| {
        String::from_utf8(cmd.assert().success().get_output().stderr.clone()).unwrap()
    };
    let err = train_err(
        plastic()
            .arg("train")
            .arg(&config)
            .arg("--out")
            .arg(&run)
            .args(["--set", "log.eval_greedy=true"]),
    );
    // 12 updates of 4 × 10 steps, evaluated every 2.
    let evals: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("eval at update"))
        .collect();
    assert_eq!(evals.len(), 6, "{err}");
    assert!(
        evals.iter().all(|l| l.contains("8 episodes, greedy")),
        "{err}"
    );
    let best_of = |run: &Path| {
        let kept: Vec<String> = std::fs::read_dir(run.join("best"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        let score: Value = serde_json::from_slice(
            &std::fs::read(run.join("best").join(&kept[0]).join("evaluation.json")).unwrap(),
        )
        .unwrap();
        (kept[0].clone(), score["reward_mean"].as_f64().unwrap())
    };
    let (update, reward) = best_evaluation(&run);
    assert_eq!(best_of(&run), (format!("{update:08}"), reward));
    let e = eval_json(&run.join("best"), 8);
    assert!(
        e["checkpoint"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{update:08}")),
        "{e}"
    );
    // Resumed, the run keeps the best so far: best/ holds the best of all its evaluations.
    plastic()
        .args(["resume", run.to_str().unwrap(), "--total-steps", "960"])
        .assert()
        .success();
    let (update, reward) = best_evaluation(&run);
    assert_eq!(best_of(&run), (format!("{update:08}"), reward));

    // A target below any score stops the run at its first evaluation, as finished.
    let stopped = dir.path().join("stopped");
    let err = train_err(
        plastic()
            .arg("train")
            .arg(&config)
            .arg("--out")
            .arg(&stopped)
            .args(["--set", "log.eval_target=-1e9"]),
    );
    assert!(
        err.contains("reached log.eval_target = -1000000000"),
        "{err}"
    );
    assert_eq!(checkpoints(&stopped), ["00000002"]);
    assert!(stopped.join("done.json").is_file());
}

/// An event file says what produced it: every key of the resolved config, as a table in the
/// Text tab and as hyperparameters in the HParams dashboard.
#[test]
fn the_resolved_config_is_in_tensorboard_as_text_and_hparams() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    let run = dir.path().join("run");
    train(&config, &run, &["--set", "optim.lr=3e-3"]);
    let v = tensorboard_config(&run);
    assert_eq!(v["plugin"], "text");
    let hparams = v["hparams"].as_object().unwrap();
    let written = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let table: toml::Table = toml::from_str(&written).unwrap();
    let keys: usize = table.values().map(|s| s.as_table().unwrap().len()).sum();
    assert_eq!(hparams.len(), keys, "{v}");
    for (key, shown) in [
        ("core.kind", "plastic-rnn"),
        ("core.hidden", "8.0"),
        ("optim.lr", "0.003"),
        ("run.seed", "5.0"),
        ("log.keep_best", "True"),
        ("env.id", "bandit-dependent-easy:len=10"),
    ] {
        assert_eq!(hparams[key], shown, "{key}: {v}");
    }
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with("| key | value |") && text.contains("| core.hidden | 8 |"),
        "{text}"
    );
    assert_eq!(text.lines().count(), keys + 2, "{text}");
}

/// The engines are one computation. On the README's maze (`configs/maze-small.toml`, one
/// seed), training with the hand-written backward pass on the host follows libtorch's
/// autograd update for update, to rounding, over the first ten updates (here the runs stay
/// together for about twenty). After that, rounding has changed which actions are sampled
/// and the two runs differ as two seeds would: one seed each cannot tell reward bands
/// apart, so the check on the rest is that both learn, ending well above where they began.
#[test]
fn the_hand_written_engine_trains_the_maze_as_autograd_does() {
    const UPDATES: usize = 100;
    const TOGETHER: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let run = |bptt: &str| {
        let out = dir.path().join(bptt);
        let mut args = vec![
            format!("run.total_steps={}", UPDATES * 30 * 100),
            format!("a2c.bptt={bptt}"),
            "log.every=1".to_string(),
        ];
        for key in ["histograms", "images", "eval", "checkpoint"] {
            args.push(format!("log.{key}_every={}", 10 * UPDATES));
        }
        let args: Vec<&str> = args.iter().flat_map(|a| ["--set", a.as_str()]).collect();
        train(Path::new("configs/maze-small.toml"), &out, &args);
        let scalars = read_events(&out)["scalars"].clone();
        let series = |tag: &str| -> Vec<f64> {
            let points = scalars[tag].as_array().unwrap_or_else(|| panic!("{tag}"));
            points.iter().map(|p| p[1].as_f64().unwrap()).collect()
        };
        [
            tags::rollout::EP_REW_MEAN,
            tags::train::GRAD_NORM,
            tags::train::POLICY_LOSS,
            tags::train::VALUE_LOSS,
        ]
        .map(series)
    };
    let (host, autograd) = (run("auto"), run("autograd"));
    for (h, a) in host.iter().zip(&autograd) {
        assert_eq!((h.len(), a.len()), (UPDATES, UPDATES));
    }
    for u in 0..TOGETHER {
        for (k, what) in ["reward", "gradient norm", "policy loss", "value loss"]
            .iter()
            .enumerate()
        {
            let (h, a) = (host[k][u], autograd[k][u]);
            assert!(
                (h - a).abs() <= 1e-3 * h.abs().max(a.abs()) + 1e-6,
                "update {}: {what} {h} (host) against {a} (autograd)",
                u + 1
            );
        }
    }
    // Mean reward per episode over the first and the last 20 updates (600 episodes each);
    // the random policy scores about 7.5.
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    for (engine, rewards) in [("host", &host[0]), ("autograd", &autograd[0])] {
        let (first, last) = (mean(&rewards[..20]), mean(&rewards[UPDATES - 20..]));
        assert!(
            last >= first + 1.5,
            "{engine}: mean reward {first:.2} over the first 20 updates and {last:.2} over the \
             last 20: it did not learn"
        );
    }
}

/// The files of a run's newest checkpoint, by name.
fn newest_checkpoint_files(run: &Path) -> Vec<(String, Vec<u8>)> {
    let newest = run
        .join("checkpoints")
        .join(checkpoints(run).last().unwrap());
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(newest)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// `plastic train --env` trains the starting defaults with no config file: the run's config
/// holds every key (`[ppo]` included) and is what `plastic config` prints, and the run
/// resumes exactly: trained in two halves, its checkpoint is the one trained in one go.
#[test]
fn train_env_trains_the_starting_defaults_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let env = "bandit-dependent-easy:len=8";
    // One update is 16 × 128 steps; a small core keeps it quick.
    let sets = ["--set", "core.hidden=8", "--set", "log.eval_episodes=8"];
    let train_env = |out: &Path, steps: &str| {
        plastic()
            .args(["train", "--env", env, "--total-steps", steps, "--out"])
            .arg(out)
            .args(sets)
            .assert()
            .success();
    };
    let whole = dir.path().join("whole");
    train_env(&whole, "4096");
    let written = std::fs::read_to_string(whole.join("config.toml")).unwrap();
    let printed = plastic()
        .args(["config", env, "--set", "run.total_steps=4096"])
        .args(sets)
        .output()
        .unwrap();
    assert_succeeded(&printed);
    let table = |text: &str| text.parse::<toml::Table>().unwrap();
    assert_eq!(
        table(&written),
        table(&String::from_utf8(printed.stdout).unwrap())
    );
    assert!(written.contains("[ppo]\nn_epochs = "), "{written}");
    // Reward scaling is on, so the halves below also resume its running statistics exactly.
    assert!(written.contains("normalize_rewards = true"), "{written}");

    let halves = dir.path().join("halves");
    train_env(&halves, "2048");
    plastic()
        .args(["resume", halves.to_str().unwrap(), "--total-steps", "4096"])
        .assert()
        .success();
    assert_eq!(checkpoints(&whole).last(), checkpoints(&halves).last());
    assert!(newest_checkpoint_files(&whole) == newest_checkpoint_files(&halves));
}

/// `--env` is instead of a config file: both, or neither, is refused with what to do; an
/// unknown environment is one error naming it.
#[test]
fn train_takes_a_config_file_or_env_and_names_a_bad_env() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "bandit-dependent-easy:len=10", PLASTIC);
    let both = plastic()
        .arg("train")
        .arg(&config)
        .args(["--env", "maze"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let both = String::from_utf8(both).unwrap();
    assert!(both.contains("cannot be used with"), "{both}");
    let neither = plastic()
        .arg("train")
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let neither = String::from_utf8(neither).unwrap();
    assert!(neither.contains("--env"), "{neither}");
    let msg = failure_message(plastic().args(["train", "--env", "mase"]));
    assert!(
        msg.contains("unknown environment `mase`")
            && msg.contains("maze")
            && msg.lines().count() == 1,
        "{msg}"
    );
}
