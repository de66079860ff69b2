//! `plastic perturb` through the command line: at σ = 0 and without a lesion it gives
//! `plastic eval`'s numbers exactly, its draws are seeded, a mid-episode lesion reports
//! recovery windows, charts are drawn, and bad input is one clear error.
use serde_json::Value;
use std::path::Path;

mod common;
use common::runs::{eval_json, failure_message, tiny_config, train, PLASTIC};
use common::{json_stdout, plastic};

/// Ten-step bandit episodes: a tiny run trains in about a second.
const BANDIT: &str = "bandit-dependent-easy:len=10";

fn trained(dir: &Path, name: &str, core: &str) -> std::path::PathBuf {
    let config = tiny_config(dir, BANDIT, core);
    let run = dir.join(name);
    train(&config, &run, &[]);
    run
}

fn perturb_json(args: &[&str]) -> Value {
    json_stdout(plastic().arg("perturb").args(args).arg("--json"))
}

#[test]
fn unperturbed_evaluations_are_evals_and_draws_are_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path(), "a", PLASTIC);
    let run_arg = run.to_str().unwrap();
    let eval = eval_json(&run, 8);
    let agent = &eval["policies"][0];
    assert_eq!(agent["policy"], "agent");
    let charts = dir.path().join("charts");
    let args = [
        run_arg,
        "--episodes",
        "8",
        "--sigma",
        "0.5,0",
        "--lesion",
        "0,0.5",
        "--lesion-at",
        "4",
        "--charts",
        charts.to_str().unwrap(),
    ];
    let v = perturb_json(&args);
    let result = &v["runs"][0];
    let noise = result["noise"].as_array().unwrap();
    // Every group the plastic core has, each at σ = 0 and 0.5 (sorted).
    let groups: Vec<&str> = noise.iter().map(|n| n["group"].as_str().unwrap()).collect();
    assert_eq!(
        groups,
        ["w", "w", "alpha", "alpha", "input", "input", "heads", "heads"]
    );
    for at_zero in noise.iter().filter(|n| n["sigma"] == 0.0) {
        assert_eq!(at_zero["reward"], agent["reward"], "{at_zero}");
    }
    let lesions = result["lesions"].as_array().unwrap();
    assert_eq!(lesions[0]["reward"], agent["reward"]);
    assert_eq!(lesions[0]["silenced"], serde_json::json!([]));
    assert_eq!(lesions[1]["silenced"].as_array().unwrap().len(), 4);
    // Steps 4..=9 after the lesion at step 4: windows of 2 steps, at most 2 reward each.
    assert_eq!(v["window"], 2);
    for l in lesions {
        let windows: Vec<f64> = l["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_f64().unwrap())
            .collect();
        assert_eq!(windows.len(), 3);
        assert!(
            windows.iter().all(|w| (0.0..=2.0).contains(w)),
            "{windows:?}"
        );
        assert!(windows.iter().sum::<f64>() <= l["reward"]["mean"].as_f64().unwrap());
    }
    // One curve per parameter group, the lesion curve and a recovery curve per lesion size.
    let curves = v["curves"].as_array().unwrap();
    assert_eq!(curves.len(), 4 + 1 + 2);
    for file in [
        "noise-w.svg",
        "noise-alpha.svg",
        "lesion.svg",
        "recovery-0.5.svg",
    ] {
        let svg = std::fs::read_to_string(charts.join(file)).unwrap();
        assert!(svg.contains("<polyline"), "{file}");
    }
    // The same seed draws the same noise and lesions; the table form prints the curves.
    assert_eq!(perturb_json(&args), v);
    let table = plastic()
        .arg("perturb")
        .args(&args[..9])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(table).unwrap();
    assert!(table.contains("noise on `alpha`") && table.contains("recovery after a lesion of 0.5"));
}

#[test]
fn bad_perturbations_are_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let plastic_run = trained(dir.path(), "plastic", PLASTIC);
    let rnn = trained(
        dir.path(),
        "rnn",
        "kind = \"rnn\"\nmodulation = \"none\"\nhidden = 8",
    );
    let cases: [(&Path, &[&str], &str); 5] = [
        (
            &plastic_run,
            &["--sigma=0,-0.1"],
            "--sigma: σ = -0.1 is not a noise level",
        ),
        (
            &plastic_run,
            &["--lesion", "0,1.5"],
            "--lesion: a lesion fraction of 1.5 is outside [0, 1]",
        ),
        (
            &rnn,
            &["--group", "w,alpha"],
            "the `rnn` core has no `alpha` parameters",
        ),
        (
            &plastic_run,
            &["--lesion-at", "10"],
            "a lesion at step 10 never happens: episodes of",
        ),
        (
            &plastic_run,
            &["--window", "5"],
            "--window sets the recovery windows after a mid-episode lesion",
        ),
    ];
    for (run, args, expected) in cases {
        let msg = failure_message(plastic().arg("perturb").arg(run).args(args));
        assert!(msg.contains(expected), "{args:?}: {msg}");
        assert_eq!(msg.trim_end().lines().count(), 1, "{msg}");
    }
}
