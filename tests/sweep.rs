//! Sweeps through the command line: expansion and its errors, the local pool (interrupted
//! and resumed, failures), and the SLURM backend on a real one-node cluster (`compare` of
//! its runs; `compare` itself is tested in tests/compare.rs).
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::runs::{checkpoints, failure_message, tiny_config, PLASTIC};
use common::{json_stdout, plastic};

const BANDIT: &str = "bandit-dependent-easy:len=10";

/// A sweep file next to `config`: 2 variants × 2 seeds unless `extra` says more.
fn sweep_file(dir: &Path, name: &str, steps: u64, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
[sweep]
config = "tiny.toml"
seeds = [3, 5]
set = ["run.total_steps={steps}", "a2c.rollout_len=5", "log.checkpoint_every=20", "log.eval_every=20"]

[variants]
plastic = []
rnn = ["core.kind=rnn", "core.modulation=none"]
{extra}
"#
        ),
    )
    .unwrap();
    path
}

const RUNS: [&str; 4] = [
    "plastic/seed-3",
    "rnn/seed-3",
    "plastic/seed-5",
    "rnn/seed-5",
];

fn final_state(sweep: &Path, run: &str) -> Vec<u8> {
    let run = sweep.join(run);
    let last = checkpoints(&run).pop().unwrap();
    std::fs::read(run.join("checkpoints").join(last).join("state.safetensors")).unwrap()
}

fn status(sweep: &Path) -> Value {
    json_stdout(plastic().args(["sweep", "status"]).arg(sweep).arg("--json"))
}

fn states(sweep: &Path) -> Vec<String> {
    status(sweep)["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sweep_mistakes_are_named_before_any_run_starts() {
    let dir = tempfile::tempdir().unwrap();
    tiny_config(dir.path(), BANDIT, PLASTIC);
    let cases = [
        ("[sweep]\nconfig = \"tiny.toml\"\nseeds = 2\nseed = 3\n", "unknown field `seed`"),
        ("[sweep]\nconfig = \"tiny.toml\"\nseeds = 0\n", "sweep.seeds"),
        ("[sweep]\nconfig = \"nope.toml\"\nseeds = 1\n", "nope.toml"),
        (
            "[sweep]\nconfig = \"tiny.toml\"\nseeds = 1\n[variants]\nok = []\nbad = [\"core.hiden=3\"]\n",
            "variant `bad`",
        ),
        (
            "[sweep]\nconfig = \"tiny.toml\"\nseeds = 1\n[grid]\n\"optim.lrr\" = [1, 2]\n",
            "optim.lrr",
        ),
        (
            "[sweep]\nconfig = \"tiny.toml\"\nseeds = 1\n[variants]\n\"a/b\" = []\n",
            "variant `a/b`",
        ),
    ];
    for (text, named) in cases {
        let file = dir.path().join("s.toml");
        std::fs::write(&file, text).unwrap();
        let out = dir.path().join("runs");
        let msg = failure_message(
            plastic()
                .current_dir(dir.path())
                .args(["sweep", "s.toml", "--out"])
                .arg(&out),
        );
        assert!(msg.contains(named), "{text}: {msg}");
        assert!(!out.exists(), "{text}: created {out:?}");
    }
    // The grid crosses every variant; folders show variant and seed.
    let file = dir.path().join("g.toml");
    std::fs::write(
        &file,
        "[sweep]\nconfig = \"tiny.toml\"\nseeds = [4]\nset = [\"run.total_steps=40\"]\n\
         [variants]\na = []\nb = [\"core.hidden=4\"]\n[grid]\n\"optim.lr\" = [0.001, 0.01]\n",
    )
    .unwrap();
    plastic()
        .current_dir(dir.path())
        .args(["sweep", "g.toml"])
        .assert()
        .success();
    let listed: Vec<String> = status(&dir.path().join("runs/g"))["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["run"].as_str().unwrap(),
                r["state"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            "a,optim.lr=0.001/seed-4 done",
            "a,optim.lr=0.01/seed-4 done",
            "b,optim.lr=0.001/seed-4 done",
            "b,optim.lr=0.01/seed-4 done"
        ]
    );
    let config =
        std::fs::read_to_string(dir.path().join("runs/g/b,optim.lr=0.01/seed-4/config.toml"))
            .unwrap();
    assert!(
        config.contains("seed = 4")
            && config.contains("hidden = 4")
            && config.contains("lr = 0.01"),
        "{config}"
    );
}

/// Ctrl-C stops the pool: every running run saves a checkpoint. The same command again skips
/// the finished runs, resumes the others, and the sweep ends as an uninterrupted one.
#[test]
fn an_interrupted_local_sweep_resumes_and_ends_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    tiny_config(dir.path(), BANDIT, PLASTIC);
    let steps = 24_000;
    let straight = sweep_file(dir.path(), "straight", steps, "");
    plastic()
        .current_dir(dir.path())
        .arg("sweep")
        .arg(&straight)
        .assert()
        .success();
    sweep_file(dir.path(), "halves", steps, "");
    let child = Command::new(assert_cmd::cargo::cargo_bin("plastic"))
        .current_dir(dir.path())
        .args(["sweep", "halves.toml", "--jobs", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sweep = dir.path().join("runs/halves");
    // Until the second pair of runs is under way (so the first pair is done).
    let start = Instant::now();
    while !["plastic/seed-5", "rnn/seed-5"]
        .iter()
        .all(|r| sweep.join(r).join("episodes.csv").exists())
    {
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("continue with: plastic sweep halves.toml"),
        "{stderr}"
    );
    let stopped = states(&sweep);
    assert_eq!(stopped[..2], ["done", "done"], "{stopped:?}");
    assert!(
        stopped[2..].iter().all(|s| s == "stopped" || s == "done"),
        "{stopped:?}"
    );
    assert!(stopped.iter().any(|s| s == "stopped"), "{stopped:?}");
    let finished_before = std::fs::metadata(sweep.join("plastic/seed-3/done.json"))
        .unwrap()
        .modified()
        .unwrap();
    plastic()
        .current_dir(dir.path())
        .args(["sweep", "halves.toml"])
        .assert()
        .success();
    assert_eq!(states(&sweep), ["done"; 4]);
    // Finished runs were not trained again.
    let finished_after = std::fs::metadata(sweep.join("plastic/seed-3/done.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(finished_before, finished_after);
    for run in RUNS {
        assert!(
            final_state(&dir.path().join("runs/straight"), run) == final_state(&sweep, run),
            "{run} differs from the uninterrupted sweep"
        );
    }
}

/// A run that fails never stops the others; its error is kept, shown, and the run is
/// skipped by the next start unless failed runs are retried.
#[test]
fn a_failed_run_never_stops_the_others() {
    let dir = tempfile::tempdir().unwrap();
    tiny_config(dir.path(), BANDIT, PLASTIC);
    let file = sweep_file(dir.path(), "f", 400, "diverging = [\"optim.lr=1e300\"]");
    let stderr = failure_message(plastic().current_dir(dir.path()).arg("sweep").arg(&file));
    assert!(
        stderr.contains("failed: diverging/seed-3 (error.txt): ")
            && stderr.contains("not finite")
            && stderr.contains("2 of 6 runs failed"),
        "{stderr}"
    );
    let sweep = dir.path().join("runs/f");
    let s = status(&sweep);
    let failed: Vec<&str> = s["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "failed")
        .map(|r| r["run"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["diverging/seed-3", "diverging/seed-5"]);
    assert!(s["runs"][0]["error"]
        .as_str()
        .unwrap()
        .contains("not finite"));
    let log = std::fs::read_to_string(sweep.join("diverging/seed-3/train.log")).unwrap();
    assert!(log.contains("not finite"), "{log}");
    // Skipped, then retried when asked (and failing again).
    let log_len = log.len();
    failure_message(plastic().current_dir(dir.path()).arg("sweep").arg(&file));
    let again = std::fs::read_to_string(sweep.join("diverging/seed-3/train.log")).unwrap();
    assert_eq!(again.len(), log_len);
    failure_message(
        plastic()
            .current_dir(dir.path())
            .arg("sweep")
            .arg(&file)
            .arg("--retry-failed"),
    );
    let retried = std::fs::read_to_string(sweep.join("diverging/seed-3/train.log")).unwrap();
    assert!(retried.len() > log_len);
}

/// The one-node cluster of `tests/slurm/one-node.sh`, stopped on drop.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the one-node SLURM cluster did not start"
        );
        let conf = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        Self { dir, conf }
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn plastic(&self) -> assert_cmd::Command {
        let mut c = plastic();
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Job ids (`<array>_<task>`) in the queue, with their state and reason.
    fn queue(&self) -> Vec<(String, String, String)> {
        let out = self
            .command("squeue")
            .args(["-h", "-o", "%i %T %r"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (
                    f[0].to_string(),
                    f[1].to_string(),
                    f.get(2).unwrap_or(&"").to_string(),
                )
            })
            .collect()
    }

    /// Waits for the queue to empty; a requeued task waits for a begin time SLURM sets a
    /// couple of minutes ahead, which is moved to now.
    fn drain(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            let queue = self.queue();
            if queue.is_empty() {
                return;
            }
            for (id, state, reason) in &queue {
                if state == "PENDING" && reason == "BeginTime" {
                    let _ = self
                        .command("scontrol")
                        .args(["update", &format!("JobId={id}"), "StartTime=now"])
                        .status();
                }
            }
            assert!(
                start.elapsed() < limit,
                "the queue never emptied: {queue:?}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm/one-node.sh")
}

/// A real SLURM: a 2 × 2 sweep submitted as a job array runs to the end and `compare` reads
/// it; a task requeued mid-run (as `scontrol requeue` or a preemption does) and a task
/// warned of its time limit both checkpoint, go back to the queue, resume, and end with the
/// numbers of an uninterrupted local sweep.
#[test]
fn sweeps_run_as_slurm_job_arrays_and_survive_requeues_and_time_limits() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    tiny_config(dir.path(), BANDIT, PLASTIC);
    let quick = sweep_file(dir.path(), "quick", 400, "");
    cluster
        .plastic()
        .current_dir(dir.path())
        .args(["sweep", "--backend", "slurm"])
        .arg(&quick)
        .assert()
        .success()
        .stderr(predicates::str::contains("submitted job array"));
    cluster.drain(Duration::from_secs(120));
    let sweep = dir.path().join("runs/quick");
    assert_eq!(states(&sweep), ["done"; 4]);
    let v = json_stdout(plastic().arg("compare").arg(&sweep).arg("--json"));
    let names: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["plastic", "rnn"]);
    assert_eq!(v["groups"][0]["scores"].as_array().unwrap().len(), 2);

    // Runs of a few seconds, with a time limit and its warning (SIGUSR1, 60 s before it).
    let steps = 60_000;
    let slurm = "[slurm]\ntime = \"10\"\nsignal_seconds = 60\n";
    let long = sweep_file(dir.path(), "long", steps, slurm);
    let reference = sweep_file(dir.path(), "reference", steps, slurm);
    plastic()
        .current_dir(dir.path())
        .arg("sweep")
        .arg(&reference)
        .assert()
        .success();
    cluster
        .plastic()
        .current_dir(dir.path())
        .args(["sweep", "--backend", "slurm"])
        .arg(&long)
        .assert()
        .success();
    let sweep = dir.path().join("runs/long");
    let array = std::fs::read_to_string(sweep.join("slurm/array.sh")).unwrap();
    assert!(
        array.contains("#SBATCH --signal=B:USR1@60") && array.contains("#SBATCH --time=10"),
        "{array}"
    );
    // Task 0 is requeued (as by `scontrol requeue` or a preemption); task 2 gets the
    // time-limit warning SLURM would send (its own timer is too coarse for a test).
    let interrupt = |task: usize, args: &[&str]| {
        let episodes = sweep.join(RUNS[task]).join("episodes.csv");
        let start = Instant::now();
        while std::fs::read_to_string(&episodes).map_or(0, |t| t.lines().count()) < 200 {
            assert!(start.elapsed() < Duration::from_secs(60));
            std::thread::sleep(Duration::from_millis(20));
        }
        let suffix = format!("_{task}");
        let id = cluster
            .queue()
            .into_iter()
            .find(|q| q.0.ends_with(&suffix))
            .unwrap()
            .0;
        // SLURM refuses ("try again later") while a task is still starting.
        for _ in 0..50 {
            let out = cluster
                .command(args[0])
                .args(&args[1..])
                .arg(&id)
                .output()
                .unwrap();
            if out.status.success() {
                return id;
            }
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("try again later"),
                "{out:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{args:?} {id} was refused for 5 s");
    };
    let requeued = interrupt(0, &["scontrol", "requeue"]);
    let warned = interrupt(2, &["scancel", "--batch", "--signal=USR1"]);
    cluster.drain(Duration::from_secs(240));
    assert_eq!(states(&sweep), ["done"; 4]);
    for id in [requeued, warned] {
        let out = std::fs::read_to_string(sweep.join(format!("slurm/{id}.out"))).unwrap();
        let stopped = out
            .find("stopped at update")
            .unwrap_or_else(|| panic!("{id}: {out}"));
        assert!(out[stopped..].contains("resuming "), "{id}: {out}");
        assert!(out.contains("done: 3000 updates"), "{id}: {out}");
    }
    for run in RUNS {
        assert!(
            final_state(&dir.path().join("runs/reference"), run) == final_state(&sweep, run),
            "{run} differs from the uninterrupted sweep"
        );
    }
}
