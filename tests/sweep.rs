//! Sweeps through the command line: expansion and its errors, the local pool (interrupted
//! and resumed, failures), and the SLURM backend on a real one-node cluster (`compare` of
//! its runs; `compare` itself is tested in tests/compare.rs).
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::runs::{checkpoints, failure_message, tensorboard_config, tiny_config, PLASTIC};
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
    // In TensorBoard's HParams, a sweep's runs carry their variant.
    for (run, variant) in [("plastic/seed-3", "plastic"), ("rnn/seed-5", "rnn")] {
        let v = tensorboard_config(&sweep.join(run));
        assert_eq!(v["hparams"]["sweep.variant"], variant, "{v}");
    }
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
    // A fresh run's log opens plainly, not with words that read like an error.
    assert_eq!(
        log.lines().next(),
        Some("training `runs/f/diverging/seed-3` from the start"),
        "{log}"
    );
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
    assert!(
        retried[log_len..].contains("stopped before its first checkpoint"),
        "{retried}"
    );
}

/// What a start refuses, before it creates anything: the error it gives.
fn refused_before_anything(dir: &Path, text: &str) -> String {
    let file = dir.join("s.toml");
    std::fs::write(&file, text).unwrap();
    let out = dir.join("runs");
    let msg = failure_message(
        plastic()
            .current_dir(dir)
            .args(["sweep", "s.toml", "--out"])
            .arg(&out),
    );
    assert!(!out.exists(), "{text}: created {out:?}");
    msg
}

/// Two entries of a sweep that train one folder would count one run twice; a variant too
/// large for memory would fail only once the sweep has started.
#[test]
fn duplicate_runs_and_sizes_beyond_memory_are_refused_before_any_run_starts() {
    let dir = tempfile::tempdir().unwrap();
    tiny_config(dir.path(), BANDIT, PLASTIC);
    let head = "[sweep]\nconfig = \"tiny.toml\"\nseeds = 1\n";
    let cases = [
        (
            format!("{head}[grid]\n\"core.kind\" = [\"rnn\", \"rnn\"]\n"),
            "grid.\"core.kind\" lists the value \"rnn\" twice (items 1 and 2",
        ),
        (
            format!("{head}[grid]\n\"optim.lr\" = [3e-3, 1e-3, 0.001]\n"),
            "grid.\"optim.lr\" lists the value 0.001 twice (items 2 and 3",
        ),
        (
            format!("{head}[grid]\n\"optim.lr\" = [1, 1.0]\n"),
            "grid.\"optim.lr\" lists the value 1 twice",
        ),
        (
            "[sweep]\nconfig = \"tiny.toml\"\nseeds = [1, 2, 1]\n".to_string(),
            "sweep.seeds lists seed 1 twice (items 1 and 3)",
        ),
        // `a` with the name `x,run.name=x`, and `a,run.name=x` with the name `x`.
        (
            format!(
                "{head}[variants]\na = []\n\"a,run.name=x\" = []\n[grid]\n\
                 \"run.name\" = [\"x\", \"x,run.name=x\"]\n"
            ),
            "two runs named `a,run.name=x,run.name=x`",
        ),
        (
            format!("{head}[variants]\nsmall = []\nhuge = [\"env.num_envs=30000000\"]\n"),
            "variant `huge` of the sweep: this needs at least",
        ),
    ];
    for (text, named) in cases {
        let msg = refused_before_anything(dir.path(), &text);
        assert!(msg.contains(named), "{text}: {msg}");
    }
}

/// The `plastic sweep task` processes of the sweep in `sweep` that are alive (not zombies),
/// from /proc.
fn workers_of(sweep: &Path) -> Vec<u32> {
    let dir = sweep.to_str().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The state follows the command's name in parentheses.
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'));
            args.len() > 4 && args[1..4] == [&b"sweep"[..], b"task", dir.as_bytes()] && !zombie
        })
        .collect()
}

/// A run that another process trains (a second pool, or a worker an earlier pool left) takes
/// one of the `--jobs` places, is neither failed nor trained twice meanwhile, and is trained
/// once it is free. `sweep status` ends quietly on a closed standard output.
#[test]
fn a_run_trained_elsewhere_holds_a_place_and_is_trained_once_free() {
    let dir = tempfile::tempdir().unwrap();
    tiny_config(dir.path(), BANDIT, PLASTIC);
    sweep_file(dir.path(), "held", 4000, "");
    let root = dir.path().join("out");
    let sweep = root.join("held");
    let held = sweep.join(RUNS[0]);
    std::fs::create_dir_all(&held).unwrap();
    // The lock a training process holds.
    let lock = std::fs::File::create(held.join(".lock")).unwrap();
    lock.lock().unwrap();
    let mut pool = Command::new(assert_cmd::cargo::cargo_bin("plastic"))
        .current_dir(dir.path())
        .args(["sweep", "held.toml", "--jobs", "2", "--out"])
        .arg(&root)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !sweep.join("sweep.json").exists() {
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    // A task for the held run leaves it alone, as taken, not failed.
    let out = plastic()
        .args(["sweep", "task"])
        .arg(&sweep)
        .arg("0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("another plastic process"), "{stderr}");
    assert!(!held.join("error.txt").exists());
    // One place is the held run's: one worker at a time until the others are done.
    let mut most = 0;
    while !RUNS[1..]
        .iter()
        .all(|r| sweep.join(r).join("done.json").exists())
    {
        let workers = workers_of(&sweep);
        assert!(workers.len() <= 1, "{} workers with 2 jobs", workers.len());
        most = most.max(workers.len());
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(most, 1, "no worker seen in /proc");
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        pool.try_wait().unwrap().is_none(),
        "the pool ended with a run not done"
    );
    drop(lock);
    let out = pool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = status(&sweep);
    for run in s["runs"].as_array().unwrap() {
        assert_eq!(
            (&run["state"], &run["error"]),
            (&"done".into(), &Value::Null)
        );
    }
    // The reward column says which reward it is.
    let text = plastic()
        .args(["sweep", "status"])
        .arg(&sweep)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("training reward (last 100 episodes)"),
        "{text}"
    );
    // `plastic sweep status DIR | head -0`.
    for json in [false, true] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut status = Command::new(assert_cmd::cargo::cargo_bin("plastic"));
        status.args(["sweep", "status"]).arg(&sweep);
        if json {
            status.arg("--json");
        }
        let out = status.stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.is_empty(), "{stderr}");
    }
}

/// Sends `signal` to `pid` (a negative pid: its process group).
fn send(pid: i32, signal: libc::c_int) {
    // The process may have ended by itself meanwhile.
    unsafe { libc::kill(pid, signal) };
}

/// Kills at random instants of a local sweep: SIGKILL of the pool, of its process group or
/// of a worker, and Ctrl-C alone or followed 10–200 ms later by a second signal. No worker
/// outlives its pool, there are never more workers than `--jobs`, a stopped pool says how to
/// continue this very sweep, and once the same command has completed it, every run's final
/// checkpoint is byte for byte an uninterrupted sweep's.
#[test]
fn sweep_kills_at_random_instants_leave_no_worker_and_change_no_number() {
    const KILLS: usize = 50;
    // How long a worker may take to save and exit once its pool is gone.
    const GRACE: Duration = Duration::from_secs(5);
    let dir = tempfile::tempdir().unwrap();
    tiny_config(dir.path(), BANDIT, PLASTIC);
    // Runs of a few seconds each: long enough that a worker left training would outlive the
    // grace.
    let steps = 20_000;
    let reference = sweep_file(dir.path(), "reference", steps, "");
    plastic()
        .current_dir(dir.path())
        .args(["sweep", "--jobs", "2"])
        .arg(&reference)
        .assert()
        .success();
    sweep_file(dir.path(), "k", steps, "");
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(27);
    let (mut kills, mut of_workers, mut pairs, mut rounds, mut most) = (0, 0, 0, 0, 0);
    while kills < KILLS {
        let root = dir.path().join(format!("round-{rounds}"));
        let sweep = root.join("k");
        let again = format!("plastic sweep k.toml --out {} --jobs 2", root.display());
        rounds += 1;
        loop {
            let mut pool = Command::new(assert_cmd::cargo::cargo_bin("plastic"))
                .current_dir(dir.path())
                .args(["sweep", "k.toml", "--jobs", "2", "--out"])
                .arg(&root)
                .process_group(0)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let pid = pool.id() as i32;
            let mut stopped_alone = false;
            // Until the pool is stopped or killed, or ends by itself.
            while kills < KILLS {
                // A fifth of the kills land in the pool's start-up (about a second), the rest
                // once workers train.
                let started = Instant::now();
                let wait_for_workers = rng.random_bool(0.8);
                while wait_for_workers
                    && workers_of(&sweep).is_empty()
                    && pool.try_wait().unwrap().is_none()
                {
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "no worker started"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                let until = Instant::now() + Duration::from_millis(rng.random_range(0..500));
                while Instant::now() < until && pool.try_wait().unwrap().is_none() {
                    let workers = workers_of(&sweep);
                    assert!(workers.len() <= 2, "{} workers with 2 jobs", workers.len());
                    most = most.max(workers.len());
                    std::thread::sleep(Duration::from_millis(50));
                }
                if pool.try_wait().unwrap().is_some() {
                    break;
                }
                kills += 1;
                match rng.random_range(0..10) {
                    0..5 => {
                        let workers = workers_of(&sweep);
                        if let Some(&w) = workers.get(rng.random_range(0..workers.len().max(1))) {
                            send(w as i32, libc::SIGKILL);
                            of_workers += 1;
                            continue;
                        }
                        send(pid, libc::SIGKILL);
                    }
                    5 => send(pid, libc::SIGKILL),
                    6 => send(-pid, libc::SIGKILL),
                    7..9 => {
                        send(pid, libc::SIGINT);
                        std::thread::sleep(Duration::from_millis(rng.random_range(10..200)));
                        let second = [libc::SIGINT, libc::SIGTERM][rng.random_range(0..2)];
                        send(pid, second);
                        pairs += 1;
                    }
                    _ => {
                        send(pid, libc::SIGINT);
                        stopped_alone = true;
                    }
                }
                break;
            }
            let out = pool.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stopped_alone && out.status.code() == Some(130) {
                assert!(
                    stderr.contains(&format!("continue with: {again}")),
                    "{stderr}"
                );
            }
            let gone = Instant::now();
            while !workers_of(&sweep).is_empty() {
                assert!(
                    gone.elapsed() < GRACE,
                    "workers {:?} outlived their pool by {GRACE:?}",
                    workers_of(&sweep)
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            match out.status.code() {
                Some(0) => break,
                // A worker was killed: the runs it left are continued by the next start.
                Some(1) => assert!(stderr.contains("killed from outside"), "{stderr}"),
                _ => {}
            }
        }
        assert_eq!(states(&sweep), ["done"; 4]);
        for run in RUNS {
            let last = checkpoints(&sweep.join(run)).pop().unwrap();
            for name in ["state.safetensors", "progress.json"] {
                let read = |sweep: &Path| {
                    std::fs::read(sweep.join(run).join("checkpoints").join(&last).join(name))
                        .unwrap()
                };
                assert!(
                    read(&sweep) == read(&dir.path().join("runs/reference")),
                    "round {rounds}: {run}: {name} differs from the uninterrupted sweep's"
                );
            }
        }
    }
    eprintln!("{kills} kills ({of_workers} of workers, {pairs} double signals), {rounds} rounds");
    assert_eq!(most, 2, "never 2 workers seen in /proc");
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
