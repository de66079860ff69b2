//! `plastic spectra` and `log.spectra_every` through the command line: the singular values
//! drawn are those of the checkpoints' tensors, the Jacobian's spectrum is logged from the
//! start, and bad input is one clear error.
use plastic_agents::metrics::tags;
use serde_json::Value;
use tch::{Kind, Tensor};

mod common;
use common::runs::{checkpoints, failure_message, images, scalars, tiny_config, train, PLASTIC};
use common::{json_stdout, plastic};

/// Ten-step bandit episodes: a tiny run trains in about a second.
const BANDIT: &str = "bandit-dependent-easy:len=10";

/// Singular values by another road than the command's: the square roots of `WᵀW`'s
/// eigenvalues, largest first.
fn singular_values_by_eigenvalues(w: &Tensor) -> Vec<f64> {
    let w = w.to_kind(Kind::Double);
    let eig = w.tr().matmul(&w).linalg_eigvalsh("L").clamp_min(0.0).sqrt();
    let mut values = Vec::<f64>::try_from(eig).unwrap();
    values.sort_by(|a, b| b.total_cmp(a));
    values
}

#[test]
fn spectra_are_the_checkpoints_singular_values() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), BANDIT, PLASTIC);
    let run = dir.path().join("run");
    train(&config, &run, &["--set", "log.spectra_every=4"]);
    let out = dir.path().join("spectra");
    let v: Value = json_stdout(
        plastic()
            .arg("spectra")
            .arg(&run)
            .args(["--episodes", "3", "--json", "--out"])
            .arg(&out),
    );
    let kept = checkpoints(&run);
    let updates: Vec<u64> = v["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["update"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = kept.iter().map(|c| c.parse().unwrap()).collect();
    assert_eq!(updates, expected);
    let spectra = v["spectra"].as_array().unwrap();
    let names: Vec<&str> = spectra
        .iter()
        .map(|s| s["matrix"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["w", "alpha", "hebb"]);
    for (i, checkpoint) in kept.iter().enumerate() {
        let path = run
            .join("checkpoints")
            .join(checkpoint)
            .join("state.safetensors");
        let tensors = Tensor::read_safetensors(&path).unwrap();
        let tensor = |name: &str| &tensors.iter().find(|(n, _)| n == name).unwrap().1;
        for (matrix, name) in [("w", "model/ac.core.w"), ("alpha", "model/ac.core.alpha")] {
            let s = spectra.iter().find(|s| s["matrix"] == matrix).unwrap();
            let got: Vec<f64> = serde_json::from_value(s["singular_values"][i].clone()).unwrap();
            let want = singular_values_by_eigenvalues(tensor(name));
            assert_eq!(got.len(), 8);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-6,
                    "{matrix} at {checkpoint}: {got:?} against {want:?}"
                );
            }
        }
    }
    let hebb = &spectra[2]["singular_values"];
    let last: Vec<f64> = serde_json::from_value(hebb[kept.len() - 1].clone()).unwrap();
    assert!(
        last[0] > 0.0 && last.windows(2).all(|w| w[0] >= w[1]),
        "{last:?}"
    );
    // One chart per matrix, one line per singular value; the JSON as printed.
    for matrix in names {
        let svg = std::fs::read_to_string(out.join(format!("{matrix}.svg"))).unwrap();
        assert_eq!(svg.matches("<polyline").count(), 8, "{matrix}");
    }
    let written: Value =
        serde_json::from_slice(&std::fs::read(out.join("spectra.json")).unwrap()).unwrap();
    assert_eq!(written, v);
    // The Jacobian's spectrum, at the start (step 0) and every 4 updates of 40 steps.
    for tag in [
        tags::spectra::JACOBIAN_LARGEST,
        tags::spectra::JACOBIAN_MEAN_LOG,
    ] {
        let steps: Vec<u64> = scalars(&run, tag).iter().map(|p| p.0).collect();
        assert_eq!(steps, [0, 160, 320, 480], "{tag}");
    }
    let largest = scalars(&run, tags::spectra::JACOBIAN_LARGEST);
    assert!(largest.iter().all(|p| p.1 > 0.0 && p.1.is_finite()));
    // The learning-dynamics pictures at the same points, one column more each time: 8
    // singular values (rows of 8 px), 1 to 4 columns of 16 px.
    for tag in [
        tags::spectra::SINGULAR_VALUES_W,
        tags::spectra::SINGULAR_VALUES_ALPHA,
        tags::spectra::SINGULAR_VALUES_HEBB,
    ] {
        let want: Vec<(u64, u64, u64)> = [0, 160, 320, 480]
            .into_iter()
            .zip(1..)
            .map(|(step, columns)| (step, columns * 16, 64))
            .collect();
        assert_eq!(images(&run, tag), want, "{tag}");
    }
}

#[test]
fn bad_input_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let plain = "kind = \"rnn\"\nmodulation = \"none\"\nhidden = 4";
    let config = tiny_config(dir.path(), BANDIT, plain);
    let run = dir.path().join("rnn");
    train(&config, &run, &["--total-steps", "80"]);
    let spectra = |args: &[&str]| failure_message(plastic().arg("spectra").args(args));
    let run_arg = run.to_str().unwrap();
    let msg = spectra(&[run_arg, "--of", "w,alpha"]);
    assert!(
        msg.contains("--of alpha") && msg.contains("no plasticity"),
        "{msg}"
    );
    let msg = spectra(&[run_arg, "--of", "hebb"]);
    assert!(msg.contains("--of hebb"), "{msg}");
    // A run folder without checkpoints, and no run at all.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::copy(run.join("config.toml"), empty.join("config.toml")).unwrap();
    let msg = spectra(&[empty.to_str().unwrap()]);
    assert!(msg.contains("has no checkpoint yet"), "{msg}");
    let msg = spectra(&[dir.path().to_str().unwrap()]);
    assert!(msg.contains("is not a run folder"), "{msg}");
    // Gains: > 0, and only where the init reads one.
    for (set, key) in [
        ("core.gain=0", "core.gain = 0"),
        ("core.gain=-1", "core.gain = -1"),
        ("core.gain=0.5", "init = \"critical\""),
    ] {
        let msg = failure_message(plastic().arg("train").arg(&config).args([
            "--set",
            "core.init=critical",
            "--set",
            set,
        ]));
        assert!(
            msg.contains(key) && !msg.trim().contains('\n'),
            "{set}: {msg}"
        );
    }
}
