//! `plastic compare` through the command line: its statistics against ones worked out by
//! hand, damaged records, and what it refuses or notes (mixed environments, NaN scores,
//! one-run groups, tests that cannot reach significance).
use serde_json::Value;
use std::path::Path;

mod common;
use common::runs::{failure_message, tiny_config, PLASTIC};
use common::{json_stdout, plastic};

const BANDIT: &str = "bandit-dependent-easy:len=10";

/// Writes a run folder of `env` whose held-out rewards are `rewards`, as `compare` reads it.
fn fake_run_on(env: &str, dir: &Path, name: &str, rewards: &[f64]) {
    std::fs::create_dir_all(dir).unwrap();
    let config = tiny_config(dir, env, PLASTIC);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("name = \"tiny\"", &format!("name = \"{name}\""));
    std::fs::write(dir.join("config.toml"), text).unwrap();
    std::fs::remove_file(config).unwrap();
    let mut csv =
        "update,step,t,reward_mean,reward_ci95,regret_mean,regret_ci95,episodes\n".to_string();
    for (i, r) in rewards.iter().enumerate() {
        csv.push_str(&format!("{},{},1.0,{r},0.1,,,8\n", i + 1, (i + 1) * 100));
    }
    std::fs::write(dir.join("evaluations.csv"), csv).unwrap();
}

fn fake_run(dir: &Path, name: &str, rewards: &[f64]) {
    fake_run_on(BANDIT, dir, name, rewards);
}

/// `compare` against statistics worked out by hand.
#[test]
fn compare_reports_what_hand_computed_statistics_give() {
    let dir = tempfile::tempdir().unwrap();
    // Group a: final rewards 1, 2, 3, 10; group b: 4, 5, 6, 7 (the first evaluation, at step
    // 100, is 0 everywhere).
    for (i, r) in [1.0, 2.0, 3.0, 10.0].iter().enumerate() {
        fake_run(&dir.path().join(format!("a{i}")), "a", &[0.0, *r]);
    }
    for (i, r) in [4.0, 5.0, 6.0, 7.0].iter().enumerate() {
        fake_run(&dir.path().join(format!("b{i}")), "b", &[0.0, *r]);
    }
    let chart = dir.path().join("curves.svg");
    let v = json_stdout(
        plastic()
            .arg("compare")
            .arg(dir.path())
            .arg("--chart")
            .arg(&chart)
            .arg("--json"),
    );
    assert_eq!(v["metric"], "reward");
    let a = &v["groups"][0];
    assert_eq!(a["name"], "a");
    assert_eq!(a["scores"], serde_json::json!([1.0, 2.0, 3.0, 10.0]));
    // Mean 4; NumPy's median 2.5 and quartiles 1.75 and 4.75; IQM: the middle two, 2.5.
    assert_eq!(
        (a["mean"].as_f64(), a["median"].as_f64()),
        (Some(4.0), Some(2.5))
    );
    assert_eq!(
        (a["q25"].as_f64(), a["q75"].as_f64()),
        (Some(1.75), Some(4.75))
    );
    assert_eq!(a["iqm"].as_f64(), Some(2.5));
    let (lo, hi) = (
        a["iqm_ci95"][0].as_f64().unwrap(),
        a["iqm_ci95"][1].as_f64().unwrap(),
    );
    assert!(
        (1.0..=2.5).contains(&lo) && (2.5..=10.0).contains(&hi),
        "{lo} {hi}"
    );
    // a beats b in 4 of 16 pairs (10 > 4..7): U = 4; exact two-sided p = 2·P(U ≤ 4) with
    // the counts of U = 0..4 for 4 against 4 being 1, 1, 2, 3, 5 of C(8,4) = 70: 24/70.
    let pair = &v["pairs"][0];
    assert_eq!(
        (pair["a"].as_str(), pair["b"].as_str()),
        (Some("a"), Some("b"))
    );
    assert_eq!(pair["u"].as_f64(), Some(4.0));
    assert_eq!(pair["method"], "exact");
    assert!(
        (pair["p_value"].as_f64().unwrap() - 24.0 / 70.0).abs() < 1e-12,
        "{pair}"
    );
    assert_eq!(pair["probability_a_better"].as_f64(), Some(0.25));
    assert_eq!(
        pair["verdict"],
        "`b` leads `a` (median 5.500 against 2.500); the difference is not significant \
         (p = 0.343 ≥ 0.05)"
    );
    // 4 against 4 can reach p = 2/70; intervals from 4 runs are flagged as rough.
    assert!((pair["smallest_possible_p"].as_f64().unwrap() - 2.0 / 70.0).abs() < 1e-12);
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("IQM interval of `a` is rough: a bootstrap of 4 runs")
            && notes.contains("`b` is rough")
            && !notes.contains("cannot reach"),
        "{notes}"
    );
    // At step 100 every score is 0.
    let early = json_stdout(
        plastic()
            .arg("compare")
            .arg(dir.path())
            .args(["--step", "150", "--json"]),
    );
    assert_eq!(
        early["groups"][1]["scores"],
        serde_json::json!([0.0, 0.0, 0.0, 0.0])
    );
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 2);
    assert!(svg.contains("a (4 runs)") && svg.contains("b (4 runs)"));
    assert!(
        svg.contains("held-out reward on bandit-dependent-easy")
            && svg.contains(": a vs b, p = 0.343 (rank-sum, two-sided)"),
        "{svg}"
    );
    // Labels regroup runs; a step before any evaluation is an error naming the run.
    let v = json_stdout(
        plastic()
            .arg("compare")
            .arg(format!("mine={}", dir.path().join("a0").display()))
            .arg(dir.path().join("b0"))
            .arg("--json"),
    );
    assert_eq!(v["groups"][1]["name"], "mine");
    let msg = failure_message(
        plastic()
            .arg("compare")
            .arg(dir.path())
            .args(["--step", "50"]),
    );
    assert!(msg.contains("no evaluation at or before step 50"), "{msg}");
    // A run without evaluations (not started yet) is left out, and said so.
    std::fs::remove_file(dir.path().join("b3/evaluations.csv")).unwrap();
    let out = plastic()
        .arg("compare")
        .arg(dir.path())
        .arg("--json")
        .assert()
        .success()
        .get_output()
        .clone();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["groups"][1]["scores"].as_array().unwrap().len(), 3);
    let note = String::from_utf8(out.stderr).unwrap();
    assert!(
        note.contains("1 runs have no evaluations yet") && note.contains("b3"),
        "{note}"
    );
}

/// A run's `evaluations.csv` and `config.toml` damaged in the ways a disk, an editor or a
/// script damages them: one error naming the file, never a panic.
#[test]
fn compare_reads_damaged_records_with_one_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        fake_run(&dir.path().join(format!("a{i}")), "a", &[1.0, i as f64]);
    }
    let csv = dir.path().join("a0/evaluations.csv");
    let header = "update,step,t,reward_mean,reward_ci95,regret_mean,regret_ci95,episodes";
    // Blank lines after the rows are no damage.
    std::fs::write(
        &csv,
        format!("{header}\n1,100,1.0,1,0.1,,,8\n2,200,1.0,5,0.1,,,8\n\n\n"),
    )
    .unwrap();
    let v = json_stdout(plastic().arg("compare").arg(dir.path()).arg("--json"));
    assert_eq!(v["groups"][0]["scores"], serde_json::json!([5.0, 1.0, 2.0]));
    // An older file without the regret columns: rewards, and regret refused by name.
    std::fs::write(&csv, "update,step,t,reward_mean\n1,100,1.0,5\n").unwrap();
    let v = json_stdout(plastic().arg("compare").arg(dir.path()).arg("--json"));
    assert_eq!(v["metric"], "reward");
    let msg = failure_message(
        plastic()
            .arg("compare")
            .arg(dir.path())
            .args(["--metric", "regret"]),
    );
    assert!(
        msg.contains(&format!("`{}` has no regret_mean", csv.display())),
        "{msg}"
    );
    for damaged in [
        b"\x00\xff\xfe garbage\n\x01,\x02\n".to_vec(),
        format!("{header}\n1,100,1.0,1,0.1,,,8\n2,20").into_bytes(),
        format!("{header}\n1,100,1.0,one,0.1,,,8\n").into_bytes(),
        b"update,step\n1,100\n".to_vec(),
    ] {
        std::fs::write(&csv, &damaged).unwrap();
        let msg = failure_message(plastic().arg("compare").arg(dir.path()));
        assert!(
            msg.contains(&format!("`{}` is damaged", csv.display()))
                && msg.trim().lines().count() == 1,
            "{msg}"
        );
    }
    std::fs::write(&csv, format!("{header}\n1,100,1.0,1,0.1,,,8\n")).unwrap();
    // A broken config names its run's folder, read alone or in a folder of runs.
    let run = dir.path().join("a1");
    std::fs::write(run.join("config.toml"), "[run]\nname = \"a\"\n[env").unwrap();
    for arg in [dir.path(), run.as_path()] {
        let msg = failure_message(plastic().arg("compare").arg(arg));
        assert!(msg.contains(&format!("run `{}`", run.display())), "{msg}");
    }
}

/// Scores that cannot be ranked, and groups that cannot be compared, are refused with the
/// runs named.
#[test]
fn compare_refuses_nan_scores_and_mixed_environments_naming_the_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (a0, a1, m0) = (
        dir.path().join("a0"),
        dir.path().join("a1"),
        dir.path().join("m0"),
    );
    fake_run(&a0, "a", &[1.0, 2.0]);
    fake_run(&a1, "a", &[1.0, f64::NAN]);
    let msg = failure_message(plastic().arg("compare").arg(dir.path()));
    assert!(
        msg.contains(&format!(
            "run `{}` scores NaN (reward_mean) at step 200",
            a1.display()
        )),
        "{msg}"
    );
    fake_run(&a1, "a", &[1.0, 3.0]);
    fake_run_on("maze", &m0, "m", &[4.0]);
    // Two groups on two environments.
    let msg = failure_message(plastic().arg("compare").arg(dir.path()));
    assert!(
        msg.contains("different environments")
            && msg.contains("`bandit-dependent-easy")
            && msg.contains(": a;")
            && msg.contains("`maze")
            && msg.ends_with(": m); scores of different environments cannot be compared: compare each environment's groups on their own\n"),
        "{msg}"
    );
    // One group holding both.
    let msg = failure_message(
        plastic()
            .arg("compare")
            .arg(format!("all={}", a0.display()))
            .arg(format!("all={}", m0.display())),
    );
    assert!(
        msg.contains("group `all` mixes environments")
            && msg.contains(&format!("`{}` runs on `bandit", a0.display()))
            && msg.contains(&format!("`{}` on `maze", m0.display())),
        "{msg}"
    );
}

/// A one-run group has no interval, and a pair too small for any p below 0.05 says so.
#[test]
fn compare_notes_one_run_groups_and_tests_that_cannot_reach_significance() {
    let dir = tempfile::tempdir().unwrap();
    fake_run(&dir.path().join("a0"), "a", &[1.0]);
    fake_run(&dir.path().join("b0"), "b", &[2.0]);
    fake_run(&dir.path().join("b1"), "b", &[3.0]);
    let v = json_stdout(plastic().arg("compare").arg(dir.path()).arg("--json"));
    assert_eq!(v["groups"][0]["iqm_ci95"], Value::Null);
    assert!(v["groups"][1]["iqm_ci95"].is_array());
    // 1 against 2: C(3, 1) = 3 arrangements, the smallest two-sided p 2/3.
    let pair = &v["pairs"][0];
    assert!((pair["smallest_possible_p"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    let out = plastic()
        .arg("compare")
        .arg(dir.path())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let row = text.lines().find(|l| l.starts_with("a ")).unwrap();
    assert!(row.trim_end().ends_with("n/a"), "{text}");
    assert!(
        text.contains("note: `a` has one run: no interval")
            && text.contains("note: the IQM interval of `b` is rough: a bootstrap of 2 runs")
            && text.contains("note: `a` vs `b` cannot reach p < 0.05 with 1 and 2 runs (the smallest p is 0.667)"),
        "{text}"
    );
}

/// `--steps-to`: each run's score is the step of its first evaluation that reaches the mark;
/// fewer steps lead, and a run that never gets there ranks last.
#[test]
fn compare_steps_to_scores_the_steps_each_run_took_to_reach_a_score() {
    let dir = tempfile::tempdir().unwrap();
    // Evaluations at steps 100, 200, ...: a reward of 6 is first reached at step 300 by the
    // first run and at 200 by the second; the third never reaches it.
    fake_run(
        &dir.path().join("f0"),
        "fast",
        &[-10.0, 0.0, 6.0, 8.0, 10.0],
    );
    fake_run(&dir.path().join("f1"), "fast", &[0.0, 9.0, 5.0, 10.0, 10.0]);
    fake_run(&dir.path().join("s0"), "slow", &[5.0, 1.0, 2.0, 3.0, 2.0]);
    fake_run(&dir.path().join("s1"), "slow", &[0.0, 0.0, 0.0, 0.0, 7.0]);
    let v =
        json_stdout(
            plastic()
                .arg("compare")
                .arg(dir.path())
                .args(["--steps-to", "6", "--json"]),
        );
    assert_eq!(v["steps_to"].as_f64(), Some(6.0));
    assert_eq!(v["higher_is_better"], false);
    assert_eq!(v["groups"][0]["scores"], serde_json::json!([300.0, 200.0]));
    // Never: infinity, null in JSON.
    assert_eq!(v["groups"][1]["scores"], serde_json::json!([null, 500.0]));
    // fast's 200 and 300 both beat slow's 500 and never: U = 4, P(fast better) = 1.
    assert_eq!(v["pairs"][0]["probability_a_better"].as_f64(), Some(1.0));
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("1 of the 2 runs of `slow` never reached 6"),
        "{notes}"
    );
    // `--step 300` stops the search there: the second slow run no longer gets there, and a
    // negative mark needs no `=`.
    let v = json_stdout(plastic().arg("compare").arg(dir.path()).args([
        "--steps-to",
        "6",
        "--step",
        "300",
        "--json",
    ]));
    assert_eq!(v["groups"][1]["scores"], serde_json::json!([null, null]));
    let v =
        json_stdout(
            plastic()
                .arg("compare")
                .arg(dir.path())
                .args(["--steps-to", "-5", "--json"]),
        );
    assert_eq!(v["groups"][0]["scores"], serde_json::json!([200.0, 100.0]));
    for bad in ["nan", "inf"] {
        let message = failure_message(
            plastic()
                .arg("compare")
                .arg(dir.path())
                .args(["--steps-to", bad]),
        );
        assert!(
            message.contains("--steps-to") && message.contains("a number"),
            "{message}"
        );
    }
}
