//! Actor-critic heads on every core, diagnostics accessors, and the benchmark entry point.
mod common;
use common::*;
use plastic_agents::cores::{CoreConfig, InitScheme};
use plastic_agents::parameters::named_variables;
use plastic_agents::ActorCritic;
use tch::{Device, Kind, Tensor};

#[test]
fn heads_give_logits_and_values_and_train_every_parameter() {
    for (i, config) in all_configs().iter().enumerate() {
        tch::manual_seed(i as i64);
        let vs = vs64();
        let ac = ActorCritic::new(&vs.root(), 3, 5, config).unwrap();
        assert_eq!(ac.num_actions(), 5);
        let mut state = ac.initial_state(2);
        let mut loss = Tensor::zeros([], F64);
        // Retroactive traces reach the output from the fourth step on.
        for _ in 0..5 {
            let s = ac.step(&Tensor::randn([2, 3], F64), &state);
            assert_eq!(s.logits.size(), [2, 5]);
            assert_eq!(s.value.size(), [2]);
            loss = loss + s.logits.sum(Kind::Double) * 0.3 + s.value.sum(Kind::Double);
            state = s.state;
        }
        let named = named_variables(&vs);
        let leaves: Vec<Tensor> = named.iter().map(|(_, t)| t.shallow_clone()).collect();
        for ((name, _), g) in named.iter().zip(grads(&loss, &leaves)) {
            assert!(
                g.abs().max().double_value(&[]) > 0.0,
                "{}: no gradient for {name}",
                label(config)
            );
        }
        let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
        for expected in [
            "core.w_in",
            "core.b",
            "core.w",
            "policy.weight",
            "policy.bias",
            "value.weight",
            "value.bias",
        ] {
            assert!(
                names.contains(&expected),
                "{}: missing {expected} in {names:?}",
                label(config)
            );
        }
    }
}

#[test]
fn plasticity_diagnostics_are_exposed() {
    let vs = vs64();
    let ac = ActorCritic::new(&vs.root(), 3, 4, &CoreConfig::backpropamine(6)).unwrap();
    let core = &ac.core;
    assert_eq!(core.alpha().unwrap().size(), [6, 6]);
    assert_eq!(core.w().size(), [6, 6]);
    assert!(core.eta().is_none(), "the modulator replaces η");
    let m = core.modulator().unwrap();
    assert_eq!(m.w.size(), [1, 6]);
    // Backpropamine initialisation: W and α in [0, 0.01).
    for t in [core.w(), core.alpha().unwrap()] {
        assert!(t.min().double_value(&[]) >= 0.0 && t.max().double_value(&[]) < 0.01);
    }
    let plain = ActorCritic::new(
        &vs64().root(),
        3,
        4,
        &CoreConfig::plastic_rnn(6, Default::default()),
    )
    .unwrap();
    assert_eq!(values(plain.core.eta().unwrap()), vec![0.01]);
}

#[test]
fn orthogonal_initialisation_has_the_requested_gain() {
    let vs = vs64();
    let config = CoreConfig {
        init: InitScheme::Orthogonal,
        gain: 1.7,
        ..CoreConfig::lstm(5)
    };
    let ac = ActorCritic::new(&vs.root(), 3, 2, &config).unwrap();
    let w = ac.core.w();
    assert_eq!(w.size(), [20, 5]);
    for g in 0..4 {
        let block = w.narrow(0, 5 * g, 5);
        let gram = block.matmul(&block.tr());
        let d = max_abs_diff(&gram, &(Tensor::eye(5, F64) * 1.7 * 1.7));
        assert!(d < 1e-12, "gate block {g} is not gain · orthogonal ({d:e})");
    }
    assert_eq!(ac.core.plastic_layer_w().size(), [5, 5]);
}

/// The benchmark code is there with the `bench` feature only (the CLI's, and so the
/// workspace's).
#[cfg(feature = "bench")]
#[test]
fn bench_reports_time_throughput_and_memory() {
    use plastic_agents::bench::{forward_backward, BenchSpec};
    let spec = BenchSpec {
        batch: 2,
        steps: 3,
        input_dim: 4,
        core: CoreConfig::backpropamine(5),
        warmup: 0,
        repeats: 3,
        ..BenchSpec::default()
    };
    let r = forward_backward(&spec).unwrap();
    assert_eq!(r.runs.len(), 3);
    assert!(r.seconds_per_batch > 0.0 && r.seconds_per_batch.is_finite());
    assert!((r.env_steps_per_sec - 6.0 / r.seconds_per_batch).abs() < 1e-6 * r.env_steps_per_sec);
    assert!(r.runs.contains(&r.seconds_per_batch));
    if cfg!(target_os = "linux") {
        assert!(r.peak_rss_growth_bytes.is_some());
    }
    assert!(r.threads >= 1);
}

/// Run on a machine with a GPU: `cargo test --release -p plastic-agents --test actor_critic
/// -- --ignored`. Ignored elsewhere, where it would otherwise pass without checking anything.
#[test]
#[ignore = "needs a CUDA device"]
fn runs_on_cuda() {
    assert!(tch::Cuda::is_available(), "no CUDA device");
    let vs = tch::nn::VarStore::new(Device::Cuda(0));
    let ac = ActorCritic::new(&vs.root(), 3, 4, &CoreConfig::backpropamine(8)).unwrap();
    let s = ac.step(
        &Tensor::randn([2, 3], (Kind::Float, Device::Cuda(0))),
        &ac.initial_state(2),
    );
    assert_eq!(s.logits.device(), Device::Cuda(0));
    assert_eq!(s.state.hebb().unwrap().device(), Device::Cuda(0));
    let reset = s.state.reset_rows_bool(&[true, false]);
    assert_eq!(
        reset.h().get(0).abs().sum(Kind::Float).double_value(&[]),
        0.0
    );
}
