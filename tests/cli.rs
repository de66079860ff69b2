//! The `plastic` command line, as a user runs it.
use predicates::prelude::*;
use serde_json::Value;

mod common;
use common::{json_stdout, plastic};

fn json_of(args: &[&str]) -> Value {
    json_stdout(plastic().args(args).arg("--json"))
}

#[test]
fn envs_lists_every_environment_with_sizes() {
    let v = json_of(&["envs"]);
    let envs = v["envs"].as_array().unwrap();
    let maze = envs.iter().find(|e| e["name"] == "maze").unwrap();
    assert_eq!(
        (maze["obs_dim"].as_u64(), maze["num_actions"].as_u64()),
        (Some(16), Some(4))
    );
    for family in [
        "independent",
        "dependent-uniform",
        "dependent-easy",
        "dependent-medium",
        "dependent-hard",
        "restless",
        "switching",
        "informative-11",
    ] {
        assert!(
            envs.iter().any(|e| e["name"] == format!("bandit-{family}")),
            "{family} missing"
        );
    }
    plastic()
        .arg("envs")
        .assert()
        .success()
        .stdout(predicate::str::contains("maze:size=9,len=100"));
}

#[test]
fn random_maze_rollout_scores_about_5_4() {
    let v = json_of(&[
        "rollout",
        "maze",
        "--policy",
        "random",
        "--episodes",
        "10000",
        "--seed",
        "3",
    ]);
    let mean = v["policies"][0]["reward"]["mean"].as_f64().unwrap();
    assert!((mean - 5.4).abs() < 0.3, "random maze policy scored {mean}");
    assert_eq!(v["episodes"], 10000);
    assert!(v["env"]
        .as_str()
        .unwrap()
        .starts_with("maze:size=13,len=200"));
}

#[test]
fn rollouts_are_deterministic_per_seed() {
    let args = [
        "rollout",
        "maze:size=9,len=50",
        "--episodes",
        "300",
        "--seed",
        "5",
    ];
    assert_eq!(json_of(&args), json_of(&args));
    let other = json_of(&[
        "rollout",
        "maze:size=9,len=50",
        "--episodes",
        "300",
        "--seed",
        "6",
    ]);
    assert_ne!(json_of(&args)["policies"], other["policies"]);
}

#[test]
fn bandit_rollout_reports_regret_with_a_95_percent_interval() {
    let v = json_of(&[
        "rollout",
        "bandit-dependent-easy",
        "--policy",
        "bayes",
        "--episodes",
        "4000",
    ]);
    let regret = &v["policies"][0]["regret"];
    let (mean, ci) = (
        regret["mean"].as_f64().unwrap(),
        regret["ci95"].as_f64().unwrap(),
    );
    assert!(
        ci > 0.0 && (mean - 0.625).abs() < 2.0 * ci,
        "bayes regret {mean} ± {ci}"
    );
    let text = plastic()
        .args([
            "rollout",
            "bandit-dependent-easy",
            "--policy",
            "thompson",
            "--episodes",
            "200",
        ])
        .assert()
        .success();
    text.stdout(predicate::str::contains("regret (95% CI)"));
}

/// One episode has no spread: the interval is shown as unknown, not as a false ± 0.
#[test]
fn one_episode_has_no_interval() {
    let args = ["rollout", "bandit-dependent-easy", "--episodes", "1"];
    let v = json_of(&args);
    assert!(v["policies"][0]["regret"]["mean"].is_f64(), "{v}");
    assert!(v["policies"][0]["regret"]["ci95"].is_null(), "{v}");
    plastic()
        .args(args)
        .assert()
        .success()
        .stdout(predicate::str::contains("± n/a"));
}

/// A maze has no regret: no regret column, where bandits have one.
#[test]
fn the_regret_column_is_shown_where_there_is_regret() {
    let table = |env: &str| {
        let out = plastic()
            .args(["rollout", env, "--episodes", "50"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(!table("maze:size=9,len=50").contains("regret"));
    assert!(table("bandit-dependent-easy").contains("regret (95% CI)"));
}

#[test]
fn bad_input_is_a_clear_error() {
    let cases: &[(&[&str], &str)] = &[
        (&["rollout", "mase"], "unknown environment `mase`"),
        (&["rollout", "maze:size=8"], "must be odd"),
        (&["rollout", "maze:colour=red"], "no parameter `colour`"),
        (&["rollout", "maze:size=nine"], "`size`"),
        (
            &["rollout", "maze", "--policy", "thompson"],
            "has no policy `thompson`; its policies: random, oracle",
        ),
        (
            &["rollout", "bandit-restless", "--policy", "bayes"],
            "bayes",
        ),
        (
            &["rollout", "bandit-dependent-easy", "--policy", "genius"],
            "genius",
        ),
        (&["rollout", "maze", "--episodes", "0"], "episodes"),
        (&["bench", "env", "maze", "--seconds=0"], "--seconds"),
        (&["bench", "env", "maze", "--seconds=1e30"], "--seconds"),
        (&["bench", "env", "maze", "--seconds=nan"], "--seconds"),
        (&["rollout", "maze:size=1003"], "from 5 to 1001"),
        (&["rollout", "maze:reward=0"], "must be positive"),
        (&["rollout", "gym:CartPole-v1?foo"], "gym:<id>?key=value"),
        (&["bench", "core", "--threads", "100000"], "--threads"),
        (&["bench", "core", "--set", "core.hidden=8"], "here: alpha"),
        (&["rollout", "maze:wall_penalty=-1"], "wall_penalty"),
    ];
    for (args, needle) in cases {
        plastic()
            .args(*args)
            .assert()
            .failure()
            .stderr(predicate::str::contains(*needle))
            .stderr(predicate::str::contains("panicked").not());
    }
}

#[test]
fn bench_env_reports_steps_per_second() {
    let v = json_of(&[
        "bench",
        "env",
        "maze:size=9",
        "--batch",
        "8",
        "--seconds",
        "0.2",
    ]);
    assert!(v["steps_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(v["batch"], 8);
    assert_eq!(v["steps"].as_u64().unwrap() % 8, 0);
}

/// `bench train` reports the whole process's peak memory, training's own figure, next to its
/// speed; larger batches need more of it.
#[test]
fn bench_train_reports_the_peak_resident_memory() {
    let peak = |num_envs: &str| {
        let v = json_of(&[
            "bench",
            "train",
            "configs/bandit-dependent-easy.toml",
            "--updates",
            "1",
            "--set",
            &format!("env.num_envs={num_envs}"),
            "--set",
            "core.hidden=64",
        ]);
        assert!(v["env_steps_per_second"].as_f64().unwrap() > 0.0);
        v["peak_resident_bytes"].as_u64().unwrap()
    };
    let (small, large) = (peak("4"), peak("4096"));
    // libtorch alone holds more than 100 MiB.
    assert!(small > 100 << 20, "{small}");
    assert!(large > small, "{large} vs {small}");
}

#[test]
fn info_reports_what_libtorch_sees() {
    let v = json_of(&["info"]);
    assert!(v["cuda_available"].is_boolean());
    assert!(v["cpu_threads"].as_u64().unwrap() >= 1);
}
