//! Runs that nothing damages: kills at random instants, signals, a full disk, memory sizes no
//! machine holds, non-finite numbers, and the leftovers of all of these.
use plastic_agents::metrics::tags;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::plastic;
use common::runs::{
    assert_succeeded, checkpoints, eval_json, failure_message, scalars, set_in_run_config,
    tiny_config, train, PLASTIC,
};

const BANDIT: &str = "bandit-dependent-easy:len=10";

fn spawn(args: &[&str], dir: &Path) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("plastic"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `plastic train <config> --out <run> --set <each of sets>`, once it has written the run's
/// config (so it is past start-up).
fn start_training(dir: &Path, config: &Path, run: &Path, sets: &[&str]) -> Child {
    let mut args = vec![
        "train",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    let child = spawn(&args, dir);
    wait_for(&run.join("config.toml"));
    child
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// The output of `child`, which must end within `limit` (it is killed otherwise).
fn output_within(child: Child, limit: Duration) -> std::process::Output {
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    watchdog.join().unwrap();
    assert!(
        out.status.code().is_some(),
        "still running after {limit:?}: killed"
    );
    out
}

/// Waits until `path` exists (the process got that far).
fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{path:?} never came"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Names under `run` (and its checkpoints) that only an interrupted process leaves.
fn leftovers(run: &Path) -> Vec<String> {
    [run.to_path_buf(), run.join("checkpoints")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with(".partial-") || n.starts_with(".pruned-") || n.starts_with(".tmp")
        })
        .collect()
}

fn file(run: &Path, checkpoint: &str, name: &str) -> Vec<u8> {
    std::fs::read(run.join("checkpoints").join(checkpoint).join(name)).unwrap()
}

/// Hundreds of SIGKILLs at random instants of starting, training, evaluating, writing
/// checkpoints and pruning them, with `eval` reading the run meanwhile: every eval finds a
/// complete checkpoint, every resume goes on, nothing is left behind, and the run ends with
/// the very numbers and evaluations of a run that was never interrupted.
#[test]
fn kills_at_random_instants_lose_nothing_and_change_no_number() {
    const KILLS: usize = 200;
    const UPDATES: u64 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    // 4 rows × 3 steps per update; episodes of 10 straddle updates, so checkpoints hold
    // episodes under way. A checkpoint every update: writing and pruning take much of the time.
    let settings = [
        "--set",
        "a2c.rollout_len=3",
        "--set",
        &format!("run.total_steps={}", UPDATES * 12),
        "--set",
        "log.checkpoint_every=1",
        "--set",
        "log.eval_every=10",
        "--set",
        "log.images_every=25",
    ];
    let straight = dir.path().join("straight");
    train(&config, &straight, &settings);

    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(15);
    let (mut kills, mut evals, mut during_saving) = (0, 0, 0);
    // Rounds until the kills are spent: on a fast machine a run can end before they are.
    for round in 0.. {
        if kills == KILLS {
            break;
        }
        let run = dir.path().join(format!("killed-{round}"));
        let run_arg = run.to_str().unwrap();
        let mut train_args = vec!["train", config.to_str().unwrap(), "--out", run_arg];
        train_args.extend(settings);
        while kills < KILLS {
            let args: &[&str] = match run.join("config.toml").exists() {
                true => &["resume", run_arg],
                false => &train_args,
            };
            let before = checkpoints_if_any(&run);
            let mut child = spawn(args, dir.path());
            // Every fifth round an evaluation reads the run while it trains and prunes.
            let reader = (kills % 5 == 0 && !before.is_empty())
                .then(|| spawn(&["eval", run_arg, "--episodes", "4", "--json"], dir.path()));
            // A quarter of the kills follow a Ctrl-C by a few milliseconds, as a
            // supervisor's TERM-then-KILL does: they land in the save the Ctrl-C asked for.
            let interrupt_first = rng.random_bool(0.25);
            // Starting takes about 0.4 s; kills land in it as well as in training.
            std::thread::sleep(Duration::from_millis(rng.random_range(50..500)));
            if child.try_wait().unwrap().is_none() {
                if interrupt_first {
                    signal(&child, "INT");
                    std::thread::sleep(Duration::from_millis(rng.random_range(0..10)));
                }
                // It may have stopped on the Ctrl-C already.
                let _ = child.kill();
                kills += 1;
                during_saving += usize::from(checkpoints_if_any(&run) != before);
            }
            let out = child.wait_with_output().unwrap();
            if let Some(reader) = reader {
                let out = output_within(reader, Duration::from_secs(60));
                assert_succeeded(&out);
                let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert!(report["env_steps_trained"].as_u64().unwrap() > 0);
                evals += 1;
            }
            match out.status.code() {
                None => {}
                Some(130) if interrupt_first => {}
                // It ended by itself: the run is done.
                Some(_) => {
                    assert_succeeded(&out);
                    break;
                }
            }
        }
        // On a slow machine every kill of a round may land before the run folder exists.
        let finish: &[&str] = match run.join("config.toml").exists() {
            true => &["resume", run_arg],
            false => &train_args,
        };
        plastic().args(finish).assert().success();
        assert_eq!(leftovers(&run), Vec::<String>::new());
        let last = format!("{UPDATES:08}");
        assert_eq!(checkpoints(&run).last(), Some(&last));
        for name in ["state.safetensors", "progress.json"] {
            assert!(
                file(&run, &last, name) == file(&straight, &last, name),
                "round {round}: {name} differs from the uninterrupted run's"
            );
        }
        // Evaluations that kills or stops cut short were done again, once each.
        assert_eq!(
            evaluation_rows(&run),
            evaluation_rows(&straight),
            "round {round}"
        );
    }
    eprintln!("{kills} kills ({during_saving} after checkpoints were written), {evals} evals");
    assert!(during_saving > KILLS / 10, "{during_saving} of {kills}");
}

fn checkpoints_if_any(run: &Path) -> Vec<String> {
    match run.join("checkpoints").is_dir() {
        true => checkpoints(run),
        false => Vec::new(),
    }
}

/// Ctrl-C asks for a checkpoint; a second signal, at any moment of the save or the update,
/// ends the process at once, cleanly: status 130, no panic, no crash.
#[test]
fn a_second_signal_exits_at_once_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    for (i, gap_ms) in [0, 1, 3, 10, 30, 300].into_iter().enumerate() {
        let run = dir.path().join(format!("run{i}"));
        let child = start_training(
            dir.path(),
            &config,
            &run,
            &[
                "run.total_steps=100000000",
                "log.checkpoint_every=1000000",
                "core.hidden=64",
            ],
        );
        std::thread::sleep(Duration::from_millis(800));
        signal(&child, "INT");
        std::thread::sleep(Duration::from_millis(gap_ms));
        let second = Instant::now();
        // TERM is what `kill` and schedulers send.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let out = output_within(child, Duration::from_secs(10));
        let waited = second.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "gap {gap_ms} ms: {stderr}");
        assert!(
            waited < Duration::from_secs(1),
            "gap {gap_ms} ms: {waited:?}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("frame #"),
            "gap {gap_ms} ms: {stderr}"
        );
        // Whatever checkpoint there is, is whole.
        if !checkpoints_if_any(&run).is_empty() {
            eval_json(&run, 2);
        }
    }
}

/// A stop asked for during a long evaluation is noticed within a step of it: the checkpoint
/// is saved and the process ends.
#[test]
fn a_signal_stops_a_long_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let run = dir.path().join("run");
    // Minutes of evaluation after the first update.
    let child = start_training(
        dir.path(),
        &config,
        &run,
        &["log.eval_every=1", "log.eval_episodes=100000000"],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    signal(&child, "TERM");
    let out = output_within(child, Duration::from_secs(10));
    let waited = sent.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(waited < Duration::from_secs(2), "{waited:?}: {stderr}");
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_eq!(checkpoints(&run), ["00000001"]);
}

/// The rows of a run's `evaluations.csv` without the seconds column (`t`, wall time).
fn evaluation_rows(run: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(run.join("evaluations.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut fields: Vec<String> = l.split(',').map(str::to_string).collect();
            fields.remove(2);
            fields
        })
        .collect()
}

/// A stop during a held-out evaluation, the run's last one included, leaves the run
/// unfinished and resumable: the resume does the evaluation that update left undone, so the
/// records and the best checkpoint equal those of a run never stopped.
#[test]
fn a_stop_during_an_evaluation_is_redone_by_the_resume() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    // 12 updates, a checkpoint every 2; evaluations at the last update alone, or at 6 and 12.
    for (case, eval_every, checkpoint_before) in [("last", 100, "00000010"), ("mid", 6, "00000004")]
    {
        let every = format!("log.eval_every={eval_every}");
        let straight = dir.path().join(format!("straight-{case}"));
        train(&config, &straight, &["--set", &every]);
        let run = dir.path().join(format!("stopped-{case}"));
        // That evaluation would take hours: the stop lands in it.
        let child = start_training(
            dir.path(),
            &config,
            &run,
            &[&every, "log.eval_episodes=100000000"],
        );
        wait_for(&run.join("checkpoints").join(checkpoint_before));
        std::thread::sleep(Duration::from_millis(1000));
        signal(&child, "TERM");
        let out = output_within(child, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{case}: {stderr}");
        assert!(!run.join("done.json").exists(), "{case}: {stderr}");
        set_in_run_config(&run, "eval_episodes", "8");
        let out = plastic()
            .args(["resume", run.to_str().unwrap()])
            .output()
            .unwrap();
        assert_succeeded(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("left undone"), "{case}: {stderr}");
        assert!(run.join("done.json").exists(), "{case}");
        assert_eq!(evaluation_rows(&run), evaluation_rows(&straight), "{case}");
        assert_eq!(
            scalars(&run, tags::eval::EP_REW_MEAN),
            scalars(&straight, tags::eval::EP_REW_MEAN),
            "{case}"
        );
        for name in ["state.safetensors", "progress.json"] {
            assert!(
                file(&run, "00000012", name) == file(&straight, "00000012", name),
                "{case}: {name} differs from the uninterrupted run's"
            );
        }
        let best = |run: &Path| std::fs::read_dir(run.join("best")).unwrap().count();
        assert_eq!(best(&run), best(&straight), "{case}");
    }
}

/// libtorch's sums depend on the thread count: a resume keeps the count the run was trained
/// with (`run.threads = 0`), or warns that numbers will differ (another explicit count).
#[test]
fn a_resume_keeps_the_thread_count_or_says_numbers_will_differ() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let run = dir.path().join("run");
    train(&config, &run, &["--set", "run.threads=2"]);
    set_in_run_config(&run, "threads", "0");
    // libtorch would take one thread here.
    let out = plastic()
        .env("OMP_NUM_THREADS", "1")
        .args(["resume", run.to_str().unwrap(), "--total-steps", "560"])
        .assert()
        .success()
        .get_output()
        .stderr
        .clone();
    let msg = String::from_utf8(out).unwrap();
    assert!(
        msg.contains("keeping the 2 libtorch threads the run was trained with"),
        "{msg}"
    );
    let progress = String::from_utf8(file(&run, "00000014", "progress.json")).unwrap();
    assert!(progress.contains("\"threads\": 2"), "{progress}");
    set_in_run_config(&run, "threads", "1");
    plastic()
        .args(["resume", run.to_str().unwrap(), "--total-steps", "640"])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "run.threads = 1, and the run was trained with 2 threads",
        ))
        .stderr(predicates::str::contains(
            "differ from those of an uninterrupted run",
        ));
}

/// Sizes no machine holds are refused before anything is allocated, naming the key.
#[test]
fn sizes_beyond_the_memory_are_one_line_errors_that_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let run = dir.path().join("run");
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "train",
                config.to_str().unwrap(),
                "--set",
                "env.num_envs=30000000",
            ],
            "env.num_envs = 30000000",
        ),
        (
            &[
                "train",
                config.to_str().unwrap(),
                "--set",
                "a2c.rollout_len=1000000000",
            ],
            "a2c.rollout_len = 1000000000",
        ),
        (
            &[
                "train",
                config.to_str().unwrap(),
                "--set",
                "log.eval_episodes=100000000000",
            ],
            "log.eval_episodes = 100000000000",
        ),
        (
            &["bench", "env", "maze", "--batch", "1000000000"],
            "--batch 1000000000",
        ),
        (
            &["rollout", "maze", "--episodes", "100000000000000"],
            "--episodes 100000000000000",
        ),
    ];
    for (args, key) in cases {
        let start = Instant::now();
        let mut cmd = plastic();
        cmd.args(args);
        if args[0] == "train" {
            cmd.args(["--out", run.to_str().unwrap()]);
        }
        let out = cmd.assert().code(1).get_output().clone();
        let msg = String::from_utf8(out.stderr).unwrap();
        assert!(
            msg.contains("of memory and") && msg.contains(key) && msg.lines().count() == 1,
            "{args:?}: {msg}"
        );
        assert!(start.elapsed() < Duration::from_secs(20), "{args:?}");
        assert!(!run.exists(), "{args:?} created a run folder");
    }
}

/// Replaces every value of the tensor `name` in a checkpoint with NaN.
fn poison(checkpoint: &Path, name: &str) {
    let path = checkpoint.join("state.safetensors");
    let tensors: Vec<(String, tch::Tensor)> = tch::Tensor::read_safetensors(&path)
        .unwrap()
        .into_iter()
        .map(|(n, t)| match n == name {
            true => (n, t.fill(f64::NAN)),
            false => (n, t),
        })
        .collect();
    assert!(tensors.iter().any(|(n, _)| n == name));
    tch::Tensor::write_safetensors(&tensors, &path).unwrap();
}

/// A checkpoint with NaN weights is refused by name; a run folder's readers pass over it to
/// the newest good one; the training guard names a really good checkpoint; and updates
/// that explode while staying finite are warned about and logged.
#[test]
fn non_finite_checkpoints_are_refused_and_exploding_updates_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let run = dir.path().join("run");
    train(&config, &run, &[]);
    let newest = run.join("checkpoints/00000012");
    poison(&newest, "model/ac.core.w");
    let msg = failure_message(plastic().arg("eval").arg(&newest));
    assert!(
        msg.contains("not finite") && msg.contains("`model/ac.core.w`"),
        "{msg}"
    );
    let out = plastic()
        .args(["eval", run.to_str().unwrap(), "--episodes", "4", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["env_steps_trained"], 400);
    let warning = String::from_utf8(out.stderr).unwrap();
    assert!(
        warning.contains("00000012` holds values that are not finite")
            && warning.contains("using `"),
        "{warning}"
    );
    // Resumed, the run goes on from update 10 and writes a good update 12 in place.
    set_in_run_config(&run, "lr", "1e300");
    let msg = failure_message(
        plastic()
            .args(["resume", run.to_str().unwrap()])
            .args(["--total-steps", "800"]),
    );
    assert!(
        msg.contains("last good checkpoint") && msg.contains("00000010"),
        "{msg}"
    );
    set_in_run_config(&run, "lr", "0.002");
    plastic()
        .args(["resume", run.to_str().unwrap()])
        .assert()
        .success()
        .stderr(predicates::str::contains("warning:").count(1));
    // The failed resume asked for 800 steps.
    assert_eq!(eval_json(&run, 4)["env_steps_trained"], 800);

    // A learning rate of 1e9 keeps every number finite and trains nothing.
    let exploding = dir.path().join("exploding");
    plastic()
        .arg("train")
        .arg(&config)
        .args([
            "--out",
            exploding.to_str().unwrap(),
            "--set",
            "optim.lr=1e9",
        ])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "training is exploding; lower optim.lr",
        ));
    let ratios = scalars(&exploding, tags::train::UPDATE_RATIO);
    assert_eq!(ratios.len(), 12);
    assert!(ratios[0].1 > 1e3, "{ratios:?}");
    let healthy = scalars(&run, tags::train::UPDATE_RATIO);
    assert!(healthy.iter().all(|&(_, r)| r < 0.1), "{healthy:?}");
}

/// A process killed after its last checkpoint has logged points the resumed run logs again:
/// the resume cuts them from the old event files, so each step appears once.
#[test]
fn points_logged_after_the_last_checkpoint_are_not_repeated_after_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let run = dir.path().join("run");
    train(&config, &run, &[]);
    // As if killed after update 12 was logged but before its checkpoint was written.
    std::fs::remove_dir_all(run.join("checkpoints/00000012")).unwrap();
    plastic()
        .args(["resume", run.to_str().unwrap()])
        .assert()
        .success();
    let steps: Vec<u64> = scalars(&run, tags::train::POLICY_LOSS)
        .iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(steps, (1..=12).map(|u| u * 40).collect::<Vec<_>>());
    // A process that failed at once left an events file with nothing in it: gone too.
    let events = || {
        std::fs::read_dir(&run)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("events.out")
            })
            .count()
    };
    assert_eq!(events(), 2);
    // Again: the second file now holds nothing before the checkpoint, and goes.
    std::fs::remove_dir_all(run.join("checkpoints/00000012")).unwrap();
    plastic()
        .args(["resume", run.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(events(), 2);
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    set_in_run_config(&run, "lr", "1e300");
    failure_message(plastic().args(["resume", run.to_str().unwrap()]));
    assert_eq!(events(), 1);
}

/// A stop asked for during the evaluation that precedes a periodic checkpoint saves the same
/// update twice: the second save leaves the first in place (rewriting it would leave an
/// instant with no complete checkpoint, where a kill loses the run).
#[test]
fn saving_the_same_update_again_leaves_its_checkpoint_in_place() {
    ensure_strace();
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let run = dir.path().join("run");
    let child = start_training(
        dir.path(),
        &config,
        &run,
        &[
            "log.checkpoint_every=1",
            "log.eval_every=1",
            "log.eval_episodes=100000000",
        ],
    );
    // In the evaluation after update 1 by now; watch what the process does to its files.
    std::thread::sleep(Duration::from_millis(1000));
    let trace = dir.path().join("trace");
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-e",
            "trace=rename,renameat,renameat2,unlink,unlinkat,rmdir",
            "-o",
        ])
        .arg(&trace)
        .args(["-p", &child.id().to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    signal(&child, "TERM");
    let out = output_within(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(130));
    strace.wait().unwrap();
    let calls = std::fs::read_to_string(&trace).unwrap();
    let touching: Vec<&str> = calls
        .lines()
        .filter(|l| l.contains("checkpoints/00000001"))
        .collect();
    // Once: renamed into place; never removed or replaced.
    assert_eq!(touching.len(), 1, "{touching:#?}");
    assert!(touching[0].contains("rename"), "{touching:#?}");
    assert_eq!(checkpoints(&run), ["00000001"]);
}

/// What killed processes leave (unfinished checkpoints and files, a half-pruned checkpoint)
/// is removed by the next process that trains the run, and readers never take it for a
/// checkpoint.
#[test]
fn leftovers_of_killed_processes_are_removed_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let run = dir.path().join("run");
    train(&config, &run, &[]);
    let ckpts = run.join("checkpoints");
    std::fs::create_dir(ckpts.join(".partial-abc")).unwrap();
    std::fs::write(ckpts.join(".partial-abc/progress.json"), "{").unwrap();
    std::fs::create_dir(ckpts.join(".pruned-00000008")).unwrap();
    std::fs::write(run.join(".partial-config"), "[run").unwrap();
    assert_eq!(eval_json(&run, 4)["env_steps_trained"], 480);
    plastic()
        .args(["resume", run.to_str().unwrap(), "--total-steps", "560"])
        .assert()
        .success();
    assert_eq!(leftovers(&run), Vec::<String>::new());
    assert_eq!(checkpoints(&run), ["00000012", "00000014"]);
}

/// Mounts a tmpfs of `kib` KiB at `dir` (the tests run as root); unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, kib: u64) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "cannot mount a tmpfs (the tests run as root)");
        Self(dir.into())
    }

    fn resize(&self, kib: u64) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={kib}k")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A full disk stops the run with one paragraph naming its good checkpoint and the fix;
/// retries on the full disk add nothing; once space is freed, the run resumes to the end.
#[test]
fn a_full_disk_stops_the_run_with_its_good_checkpoint_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let disk = Tmpfs::mount(&dir.path().join("disk"), 400);
    let run = disk.0.join("run");
    // A checkpoint of 64 plastic neurons is about 110 KiB: the fourth one does not fit.
    let msg = failure_message(plastic().arg("train").arg(&config).args([
        "--out",
        run.to_str().unwrap(),
        "--set",
        "core.hidden=64",
        "--set",
        "log.keep_checkpoints=3",
    ]));
    let error = msg
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        error.contains("is full (No space left on device)")
            && error.contains("its newest checkpoint")
            && error.contains("is complete. Free some space, then continue with `plastic resume")
            && msg.trim_end().ends_with(error)
            && !msg.contains("Os {"),
        "{msg}"
    );
    let saved = checkpoints(&run);
    assert!(!saved.is_empty());
    assert!(error.contains(&saved[saved.len() - 1]), "{msg}");
    let files = |run: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(run)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = files(&run);
    for _ in 0..2 {
        let msg = failure_message(plastic().args(["resume", run.to_str().unwrap()]));
        assert!(msg.contains("is full"), "{msg}");
    }
    assert_eq!(files(&run), before);
    disk.resize(8192);
    plastic()
        .args(["resume", run.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(checkpoints(&run).last().unwrap(), "00000012");
    assert_eq!(leftovers(&run), Vec::<String>::new());
}

/// `plastic envs | head -1`: a closed pipe ends the listing quietly, as it ends `ls | head`.
#[test]
fn a_closed_pipe_ends_output_quietly() {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("plastic"))
        .arg("envs")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}

/// A run config cut off at a section break would resume with defaults nobody chose: refused,
/// naming the file and the missing keys.
#[test]
fn a_cut_off_run_config_is_refused_with_the_missing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let run = dir.path().join("run");
    train(&config, &run, &[]);
    let path = run.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.find("[optim]").unwrap()]).unwrap();
    let msg =
        failure_message(plastic().args(["resume", run.to_str().unwrap(), "--total-steps", "800"]));
    assert!(
        msg.contains("config.toml` lacks")
            && msg.contains("optim.lr")
            && msg.contains("log.every")
            && msg.contains("checkpoints/00000012/config.toml"),
        "{msg}"
    );
    // Cut inside a section, before a key that has no default: the same message, not the
    // parser's complaint about the key.
    let env = text.find("[env]").unwrap();
    let num_envs = env + text[env..].find("num_envs").unwrap();
    std::fs::write(&path, &text[..num_envs]).unwrap();
    let msg = failure_message(plastic().args(["resume", run.to_str().unwrap()]));
    assert!(
        msg.contains("config.toml` lacks") && msg.contains("env.num_envs"),
        "{msg}"
    );
}

/// `--total-steps` that shortens a run says so, and that the schedules change.
#[test]
fn a_new_total_says_what_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let run = dir.path().join("run");
    train(
        &config,
        &run,
        &[
            "--set",
            "optim.schedule=\"linear\"",
            "--set",
            "run.total_steps=240",
        ],
    );
    set_in_run_config(&run, "total_steps", "960");
    plastic()
        .args(["resume", run.to_str().unwrap(), "--total-steps", "480"])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "the run is shortened from 960 to 480 steps; the learning rate schedule spans the \
             whole run, so it changes from here on",
        ));
}

/// A number too large for a config is named as such, not as a type mismatch.
#[test]
fn an_integer_beyond_the_config_range_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let msg = failure_message(
        plastic()
            .arg("train")
            .arg(&config)
            .args(["--set", "run.total_steps=18446744073709551615"]),
    );
    assert!(
        msg.contains("18446744073709551615 is beyond the integers a config holds"),
        "{msg}"
    );
}

/// Renames are made durable: the folder is synced after a checkpoint is moved into place.
#[test]
fn checkpoint_renames_are_followed_by_a_folder_sync() {
    ensure_strace();
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let run = dir.path().join("run");
    let trace = dir.path().join("trace");
    let ok = Command::new("strace")
        .args([
            "-f",
            "-e",
            "trace=rename,renameat,renameat2,fsync,openat",
            "-o",
        ])
        .arg(&trace)
        .arg(assert_cmd::cargo::cargo_bin("plastic"))
        .arg("train")
        .arg(&config)
        .arg("--out")
        .arg(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let calls = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    let renamed = lines
        .iter()
        .position(|l| l.contains("rename") && l.contains("checkpoints/00000012\""))
        .expect("the last checkpoint renamed into place");
    // After it: the checkpoints folder opened and synced.
    let folder = run.join("checkpoints");
    let opened = lines[renamed..]
        .iter()
        .position(|l| l.contains("openat") && l.contains(&format!("\"{}\"", folder.display())))
        .expect("the checkpoints folder opened after the rename");
    assert!(
        lines[renamed + opened..]
            .iter()
            .any(|l| l.contains("fsync(")),
        "no fsync after the rename"
    );
}

/// Debian's strace, for the tests that watch system calls, on a machine without it.
fn ensure_strace() {
    if Command::new("strace").arg("-V").output().is_ok() {
        return;
    }
    let ok = Command::new("sh")
        .args([
            "-c",
            "(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace) >/dev/null 2>&1",
        ])
        .status()
        .unwrap();
    assert!(ok.success(), "cannot install strace with apt-get");
}
