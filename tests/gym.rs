//! Gymnasium environments through the command line: training, resuming, evaluation on another
//! variant, rendering, the benchmark, and the errors a user meets (against the real gymnasium).
#![cfg(feature = "gym")]

use std::path::{Path, PathBuf};

mod common;
use common::{json_stdout, plastic};

/// The Python module with the test environments (plastic_test/Raising-v0).
fn test_envs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/tests/python")
}

fn config(dir: &Path, env: &str) -> PathBuf {
    let path = dir.join("gym.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[run]
name = "gym"
seed = 3
total_steps = 320
device = "cpu"
threads = 1

[env]
id = "{env}"
num_envs = 4

[core]
kind = "plastic-rnn"
hidden = 8

[a2c]
rollout_len = 8

[log]
every = 1
histograms_every = 5
images_every = 5
eval_every = 5
eval_episodes = 4
checkpoint_every = 5
keep_checkpoints = 2
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_cartpole_agent_trains_evaluates_on_a_variant_and_renders_a_gif() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    plastic()
        .arg("train")
        .arg(config(dir.path(), "gym:CartPole-v1"))
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    assert!(run.join("checkpoints").join("00000010").is_dir());
    // Gymnasium environments cannot save their episodes under way: resume says so.
    plastic()
        .arg("resume")
        .arg(&run)
        .args(["--total-steps", "384"])
        .assert()
        .success()
        .stderr(predicates::str::contains("fresh episodes"));
    assert!(run.join("checkpoints").join("00000012").is_dir());

    let report = json_stdout(
        plastic()
            .arg("eval")
            .arg(&run)
            .args(["--episodes", "5", "--json"]),
    );
    assert_eq!(report["env"], "gym:CartPole-v1");
    assert_eq!(report["episodes"], 5);
    assert!(report["policies"][0]["reward"]["mean"].as_f64().unwrap() >= 8.0);
    assert_eq!(report["policies"][1]["policy"], "random");

    // A shorter time limit: every episode, of reward 1 per step, ends by step 6.
    let short = json_stdout(plastic().arg("eval").arg(&run).args([
        "--env",
        "gym:CartPole-v1?max_episode_steps=6",
        "--episodes",
        "5",
        "--json",
    ]));
    assert_eq!(short["env"], "gym:CartPole-v1?max_episode_steps=6");
    assert!(short["policies"][0]["reward"]["mean"].as_f64().unwrap() <= 6.0);

    plastic()
        .arg("eval")
        .arg(&run)
        .args(["--env", "gym:Acrobot-v1"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("cannot act in `gym:Acrobot-v1`"));

    let gif = dir.path().join("cartpole.gif");
    plastic()
        .arg("eval")
        .arg(&run)
        .args(["--episodes", "2", "--render"])
        .arg(&gif)
        .assert()
        .success()
        .stderr(predicates::str::contains("frames"));
    let mut decoder = gif::DecodeOptions::new()
        .read_info(std::fs::File::open(&gif).unwrap())
        .unwrap();
    assert_eq!((decoder.width(), decoder.height()), (600, 400));
    let mut frames = 0;
    while decoder.read_next_frame().unwrap().is_some() {
        frames += 1;
    }
    assert!(frames >= 8, "{frames} frames");

    plastic()
        .arg("eval")
        .arg(&run)
        .args(["--render"])
        .arg(dir.path().join("cartpole.mp4"))
        .assert()
        .failure()
        .stderr(predicates::str::contains(".gif"));
    // A folder that is not there fails before the evaluation, whose results would be lost.
    plastic()
        .arg("eval")
        .arg(&run)
        .args(["--render"])
        .arg(dir.path().join("missing/cartpole.gif"))
        .assert()
        .failure()
        .stderr(predicates::str::contains("does not exist"))
        .stdout(predicates::str::is_empty());
}

#[test]
fn bench_env_compares_the_bridge_with_a_plain_python_loop() {
    // Discrete actions, and continuous ones drawn uniformly in Pendulum's box.
    for id in ["gym:CartPole-v1", "gym:Pendulum-v1"] {
        let report = json_stdout(plastic().args([
            "bench",
            "env",
            id,
            "--batch",
            "4",
            "--seconds",
            "0.2",
            "--json",
        ]));
        assert!(report["steps_per_second"].as_f64().unwrap() > 0.0, "{id}");
        assert!(
            report["python_loop_steps_per_second"].as_f64().unwrap() > 0.0,
            "{id}"
        );
    }
}

#[test]
fn a_wrong_gymnasium_id_is_an_error_before_any_run_folder_exists() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    plastic()
        .arg("train")
        .arg(config(dir.path(), "gym:CartPol-v1"))
        .arg("--out")
        .arg(&run)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("Did you mean: `CartPole`"));
    assert!(!run.exists());
}

#[test]
fn a_pendulum_agent_trains_with_a2c_and_ppo_and_acts_with_continuous_actions() {
    for (algorithm, ppo) in [
        ("a2c", ""),
        ("ppo", "\n[ppo]\nn_epochs = 2\nminibatches = 2\n"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let path = config(dir.path(), "gym:Pendulum-v1");
        let text = std::fs::read_to_string(&path).unwrap() + ppo;
        std::fs::write(&path, text).unwrap();
        // Training stops at a non-finite loss: success means every loss was finite.
        plastic()
            .arg("train")
            .arg(&path)
            .arg("--out")
            .arg(&run)
            .assert()
            .success();
        assert!(
            run.join("checkpoints").join("00000010").is_dir(),
            "{algorithm}"
        );
        for greedy in [false, true] {
            let mut eval = plastic();
            eval.arg("eval")
                .arg(&run)
                .args(["--episodes", "2", "--json"]);
            if greedy {
                eval.arg("--greedy");
            }
            let report = json_stdout(&mut eval);
            // Pendulum pays between about −16.3 and 0 a step, 200 steps an episode.
            let mean = report["policies"][0]["reward"]["mean"].as_f64().unwrap();
            assert!(
                (-3300.0..=0.0).contains(&mean),
                "{algorithm} {greedy}: {mean}"
            );
            assert_eq!(report["policies"][1]["policy"], "random");
        }
    }
    let report =
        json_stdout(plastic().args(["rollout", "gym:Pendulum-v1", "--episodes", "2", "--json"]));
    assert_eq!(report["episodes"], 2);
}

#[test]
fn a_two_by_two_box_action_trains_and_evaluates_within_its_bounds() {
    // Echo-v0 pays the sum of the (clipped) 2 × 2 action: at most 1 + 1 + 2 + 3 = 7 a step,
    // at least −3, for 10 steps.
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    plastic()
        .env("PYTHONPATH", test_envs())
        .arg("train")
        .arg(config(
            dir.path(),
            "gym:plastic_test_envs:plastic_test/Echo-v0",
        ))
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let report = json_stdout(
        plastic()
            .env("PYTHONPATH", test_envs())
            .arg("eval")
            .arg(&run)
            .args(["--episodes", "4", "--json"]),
    );
    for policy in [0, 1] {
        let mean = report["policies"][policy]["reward"]["mean"]
            .as_f64()
            .unwrap();
        assert!((-30.0..=70.0).contains(&mean), "{policy}: {mean}");
    }
    // `plastic perturb` evaluates through its own environment wrapper.
    let report = json_stdout(
        plastic()
            .env("PYTHONPATH", test_envs())
            .arg("perturb")
            .arg(&run)
            .args([
                "--sigma",
                "0",
                "--lesion",
                "0,0.5",
                "--episodes",
                "2",
                "--json",
            ]),
    );
    assert!(report.is_object(), "{report}");
}

#[test]
fn an_environment_that_raises_stops_training_with_its_traceback() {
    let dir = tempfile::tempdir().unwrap();
    plastic()
        .env("PYTHONPATH", test_envs())
        .arg("train")
        .arg(config(
            dir.path(),
            "gym:plastic_test_envs:plastic_test/Raising-v0",
        ))
        .arg("--out")
        .arg(dir.path().join("run"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "RuntimeError: the reactor overheated",
        ))
        .stderr(predicates::str::contains("plastic_test_envs.py"));
}

/// NaN from the environment is the environment's fault: the message says so, and does not
/// send the user to lower the learning rate.
#[test]
fn an_environment_that_returns_nan_is_named_as_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let out = plastic()
        .env("PYTHONPATH", test_envs())
        .arg("train")
        .arg(config(
            dir.path(),
            "gym:plastic_test_envs:plastic_test/NanReward-v0",
        ))
        .arg("--out")
        .arg(dir.path().join("run"))
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    let msg = String::from_utf8(out).unwrap();
    assert!(
        msg.contains("returned a reward that is not finite")
            && msg.contains("plastic_test/NanReward-v0")
            && msg.contains("The model is not at fault")
            && !msg.contains("optim.lr")
            && !msg.contains("panicked"),
        "{msg}"
    );
}

#[test]
fn missing_gymnasium_says_how_to_install_it() {
    // A package that fails to import shadows the real one, as if gymnasium were not installed.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("gymnasium");
    std::fs::create_dir(&fake).unwrap();
    std::fs::write(
        fake.join("__init__.py"),
        "raise ModuleNotFoundError(\"No module named 'gymnasium'\")\n",
    )
    .unwrap();
    plastic()
        .env("PYTHONPATH", dir.path())
        .args(["rollout", "gym:CartPole-v1"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("No module named 'gymnasium'"))
        .stderr(predicates::str::contains("scripts/setup.sh"));
}

/// A Gymnasium GIF ends on the frame the episode ended on (the vector env has already reset
/// when the step returns): plastic_test/Countdown-v0 ends after 5 steps whatever the agent
/// does, and paints each step its own colour.
#[test]
fn a_gymnasium_gif_has_a_frame_per_step_and_the_last_shows_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let id = "gym:plastic_test_envs:plastic_test/Countdown-v0";
    plastic()
        .env("PYTHONPATH", test_envs())
        .arg("train")
        .arg(config(dir.path(), id))
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let gif = dir.path().join("countdown.gif");
    plastic()
        .env("PYTHONPATH", test_envs())
        .arg("eval")
        .arg(&run)
        .args(["--episodes", "1", "--render"])
        .arg(&gif)
        .assert()
        .success()
        .stderr(predicates::str::contains("6 frames"));
    let frames = common::pictures::gif_frames(&gif);
    assert_eq!(frames.len(), 6, "5 steps and the start");
    // Step t is painted [40 t, 0, 255 − 40 t].
    for (t, frame) in frames.iter().enumerate() {
        let t = t as u8;
        let [r, g, b] = frame.pixel(3, 3);
        assert!(
            r.abs_diff(40 * t) <= 4 && g <= 4 && b.abs_diff(255 - 40 * t) <= 4,
            "frame {t}: {:?}",
            [r, g, b]
        );
    }
}

/// An id's module in the current folder is found there, as `python` finds it, and the run
/// records that folder, so it evaluates and resumes from elsewhere without `PYTHONPATH`.
#[test]
fn a_module_in_the_current_folder_is_found_and_recorded_for_eval() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::copy(
        test_envs().join("plastic_test_envs.py"),
        project.join("plastic_test_envs.py"),
    )
    .unwrap();
    let run = dir.path().join("run");
    plastic()
        .env_remove("PYTHONPATH")
        .current_dir(&project)
        .arg("train")
        .arg(config(
            dir.path(),
            "gym:plastic_test_envs:plastic_test/Echo-v0",
        ))
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let written = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        written.contains(&format!("python_path = [\"{}\"]", project.display())),
        "{written}"
    );
    let elsewhere = dir.path();
    let report = json_stdout(
        plastic()
            .env_remove("PYTHONPATH")
            .current_dir(elsewhere)
            .arg("eval")
            .arg(&run)
            .args(["--episodes", "2", "--json"]),
    );
    assert_eq!(report["policies"][0]["policy"], "agent", "{report}");
    plastic()
        .env_remove("PYTHONPATH")
        .current_dir(elsewhere)
        .args(["resume"])
        .arg(&run)
        .args(["--total-steps", "640"])
        .assert()
        .success();
    // Without the record (in the run's config and its checkpoints'), the module is not found
    // from elsewhere: the test can fail.
    let record = format!("python_path = [\"{}\"]\n", project.display());
    let checkpoints = std::fs::read_dir(run.join("checkpoints")).unwrap();
    for config in checkpoints
        .map(|c| c.unwrap().path().join("config.toml"))
        .chain([run.join("config.toml")])
    {
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(text.contains(&record), "{}", config.display());
        std::fs::write(&config, text.replace(&record, "")).unwrap();
    }
    plastic()
        .env_remove("PYTHONPATH")
        .current_dir(elsewhere)
        .arg("eval")
        .arg(&run)
        .args(["--episodes", "2"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("plastic_test_envs"));
}
