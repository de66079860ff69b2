//! The STPN core (`kind = "stpn"`) against the authors' own layer, and its config and engine
//! errors.
mod common;
use common::*;
use plastic_agents::a2c::{Trainer, TrainerConfig};
use plastic_agents::cores::{
    steps_on_host, Bptt, CoreConfig, CoreConfigError, Engine, InitScheme, Modulation, Rule,
    StpShape, TraceCheckpoints,
};
use serde_json::Value;
use tch::{Device, Tensor};

const FIXTURE: &str = include_str!("fixtures/stpn_reference.json");

fn stpn(hidden: usize) -> CoreConfig {
    CoreConfig::stpn(hidden)
}

/// A JSON array of arrays (of any depth) of numbers as a flat f64 tensor of `dims`.
fn tensor(v: &Value, dims: &[i64]) -> Tensor {
    fn flatten(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
            x => out.push(x.as_f64().expect("a number")),
        }
    }
    let mut out = Vec::new();
    flatten(v, &mut out);
    Tensor::from_slice(&out).view(dims)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// `scripts/stpn_reference.py` ran the authors' `NetParallelEnergy(rnn_type = "stpn")` with
/// their maze config's settings; the same weights in our core give the same outputs and fast
/// weights, step by step, to rounding.
#[test]
fn stpn_reproduces_the_authors_layer() {
    let f: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    let dim = |k: &str| f[k].as_i64().expect("a size");
    let (b, n_in, h) = (dim("batch"), dim("input"), dim("hidden"));
    assert!(
        f["clamped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_i64() > Some(0)),
        "the fixture exercises the clamp"
    );
    let config = CoreConfig {
        clip: f["clip"].as_f64().unwrap(),
        ..stpn(h as usize)
    };
    let (vs, core) = build(&config, n_in);
    let weight = tensor(&f["weight"], &[h, n_in + h]);
    let copy = |name: &str, value: &Tensor| {
        let mut p = param(&vs, name);
        tch::no_grad(|| p.copy_(value));
    };
    copy("w_in", &weight.narrow(1, 0, n_in));
    copy("w", &weight.narrow(1, n_in, h));
    copy("b", &tensor(&f["bias"], &[h]));
    copy("stp_lambda", &tensor(&f["lambda"], &[h, n_in + h]));
    copy("stp_gamma", &tensor(&f["gamma"], &[h, n_in + h]));

    let steps = f["xs"].as_array().unwrap().len() as i64;
    let xs = tensor(&f["xs"], &[steps, b, n_in]);
    let hs = tensor(&f["h"], &[steps, b, h]);
    let fasts = tensor(&f["fast"], &[steps, b, h, n_in + h]);
    let mut state = core.initial_state(b);
    for t in 0..steps {
        let (out, next) = core.step(&xs.get(t), &state);
        let (dh, df) = (
            max_diff(&out, &hs.get(t)),
            max_diff(next.fast().expect("STPN state"), &fasts.get(t)),
        );
        assert!(
            dh <= 1e-12 && df <= 1e-12,
            "step {t}: |Δh| {dh:e}, |ΔF| {df:e}"
        );
        state = next;
    }
}

#[test]
fn stpn_draws_the_authors_ranges_and_shapes() {
    tch::manual_seed(0);
    let (h, n_in) = (50, 7);
    let (vs, core) = build(&stpn(h), n_in);
    let bound = 1.0 / (h as f64).sqrt();
    for (name, lo, hi) in [
        ("w_in", -bound, bound),
        ("w", -bound, bound),
        ("b", -bound, bound),
        ("stp_lambda", 0.0, 1.0),
        ("stp_gamma", -0.001 * bound, 0.001 * bound),
    ] {
        let p = param(&vs, name);
        let (min, max) = (p.min().double_value(&[]), p.max().double_value(&[]));
        assert!(
            lo <= min && max <= hi,
            "{name} in [{min}, {max}], not in [{lo}, {hi}]"
        );
        // Uniform draws fill their range: the extremes are near its ends.
        assert!(max - min > 0.9 * (hi - lo), "{name} spans [{min}, {max}]");
    }
    assert_eq!(param(&vs, "stp_lambda").size(), [h as i64, n_in + h as i64]);
    let state = core.initial_state(3);
    assert_eq!(state.fast().unwrap().size(), [3, h as i64, n_in + h as i64]);
    assert!(state.hebb().is_none());
    let names: Vec<_> = state.named().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["h", "fast"]);

    let (vs, _) = build(
        &CoreConfig {
            stp: StpShape::Scalar,
            ..stpn(h)
        },
        n_in,
    );
    assert_eq!(param(&vs, "stp_lambda").size(), [1]);
    assert_eq!(param(&vs, "stp_gamma").size(), [1]);
}

#[test]
fn stpn_options_it_does_not_have_are_errors_naming_the_key() {
    let cases: [(CoreConfig, &str); 5] = [
        (
            CoreConfig {
                rule: Rule::Oja,
                ..stpn(4)
            },
            "rule",
        ),
        (
            CoreConfig {
                modulation: Modulation::Simple,
                ..stpn(4)
            },
            "modulation",
        ),
        (
            CoreConfig {
                init: InitScheme::Orthogonal,
                ..stpn(4)
            },
            "init",
        ),
        (
            CoreConfig {
                stp: StpShape::Scalar,
                ..CoreConfig::default()
            },
            "stp",
        ),
        (
            CoreConfig {
                stp_learned: false,
                ..CoreConfig::lstm(4)
            },
            "stp_learned",
        ),
    ];
    for (config, key) in cases {
        let err = config.validate().expect_err(key);
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(err.to_string().contains(&format!("core.{key}")), "{err}");
    }
    assert!(matches!(
        CoreConfig {
            modulation: Modulation::Simple,
            ..stpn(4)
        }
        .validate(),
        Err(CoreConfigError::PlasticityKeyOnStpn { .. })
    ));
    // The clamp is STPN's too.
    let clipped = CoreConfig {
        clip: 0.5,
        ..stpn(4)
    };
    assert_eq!(clipped.validate(), Ok(()));
}

#[test]
fn stpn_auto_runs_the_host_loops_on_the_cpu() {
    let (_vs, core) = build(&stpn(4), 3);
    // On the CPU `auto` picks the hand-written pass, whose steps run in host loops there.
    assert_eq!(Bptt::Auto.engine(&core), Ok(Engine::Fused));
    assert!(steps_on_host(&core, Engine::Fused));
    assert!(!steps_on_host(&core, Engine::Ops));
    // Rebuilding dropped fast weights costs a whole forward step: `auto` keeps every one.
    assert_eq!(TraceCheckpoints::Auto.every(&core, Engine::Fused), 1);
    assert_eq!(Bptt::Autograd.engine(&core), Ok(Engine::Autograd));
    assert_eq!(Bptt::Fused.engine(&core), Ok(Engine::Fused));
    assert_eq!(Bptt::Ops.engine(&core), Ok(Engine::Ops));
}

#[test]
fn stpn_state_counts_its_fast_weights() {
    let (lstm, stpn) = (CoreConfig::lstm(10), stpn(10));
    // h, and F: 10 × (7 + 10), in f32.
    assert_eq!(stpn.state_bytes_per_row(7), (10.0 + 170.0) * 4.0);
    assert_eq!(lstm.state_bytes_per_row(7), 20.0 * 4.0);
}

/// The parameter counts docs/plasticity.md gives for sizing STPN against the other cores on
/// the maze (16 inputs, 4 actions, heads included): the authors' sizes (STPN H 55, modulated
/// plastic RNN H 73, LSTM H 47, RNN H 100) and configs/maze-small-stpn.toml's H 78 against
/// maze-small's plastic RNN of H 100.
#[test]
fn stpn_sizes_in_the_docs_have_the_parameter_counts_they_state() {
    let count = |config: CoreConfig| -> i64 {
        let vs = vs64();
        plastic_agents::ActorCritic::new(&vs.root(), 16, 4, &config).unwrap();
        vs.variables().values().map(Tensor::numel).sum::<usize>() as i64
    };
    let sizes = [
        (CoreConfig::stpn(55), 12_050),
        (CoreConfig::backpropamine(73), 12_343),
        (CoreConfig::lstm(47), 12_272),
        (CoreConfig::rnn(100), 12_205),
        (CoreConfig::stpn(78), 22_469),
        (CoreConfig::backpropamine(100), 22_306),
        (CoreConfig::lstm(66), 22_247),
    ];
    for (config, expected) in sizes {
        assert_eq!(count(config.clone()), expected, "{config:?}");
    }
}

/// `stp_learned = false` (the authors' fixed-λ-and-γ ablation), in each shape of λ and γ and
/// under both engines: a few training updates move the fixed weights and leave λ and γ at
/// their initial draws, and the optimiser holds no moments for them.
#[test]
fn stpn_with_fixed_decay_and_gain_trains_only_its_weights() {
    for (stp, bptt) in [
        (StpShape::PerSynapse, Bptt::Auto),
        (StpShape::Scalar, Bptt::Fused),
    ] {
        let mut config = TrainerConfig {
            core: CoreConfig {
                stp,
                stp_learned: false,
                ..stpn(6)
            },
            ..TrainerConfig::default()
        };
        config.a2c.bptt = bptt;
        let env = plastic_envs::registry::make("maze:size=7,len=12", 4).unwrap();
        let mut t = Trainer::new(env, config, 1_000_000, 0, Device::Cpu).unwrap();
        let values = |t: &Trainer, name: &str| {
            let snapshot = t.snapshot();
            let (_, v) = snapshot
                .tensors
                .iter()
                .find(|(n, _)| n == &format!("model/ac.core.{name}"))
                .unwrap_or_else(|| panic!("{name} is saved"));
            Vec::<f64>::try_from(v.to_kind(tch::Kind::Double).flatten(0, -1)).unwrap()
        };
        let before: Vec<_> = ["stp_lambda", "stp_gamma", "w"]
            .map(|n| values(&t, n))
            .into();
        for _ in 0..3 {
            t.update().unwrap();
        }
        let label = format!("{stp:?} {bptt:?}");
        assert_eq!(values(&t, "stp_lambda"), before[0], "{label}: λ moved");
        assert_eq!(values(&t, "stp_gamma"), before[1], "{label}: γ moved");
        assert_ne!(values(&t, "w"), before[2], "{label}: W did not train");
        let moments: Vec<_> = t
            .snapshot()
            .tensors
            .into_iter()
            .filter(|(n, _)| n.starts_with("optim/") && n.contains("stp_"))
            .map(|(n, _)| n)
            .collect();
        assert!(moments.is_empty(), "{label}: optimiser state {moments:?}");
    }
}
