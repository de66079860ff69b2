//! Multi-timescale synapses (`core.timescales`, docs/plasticity.md): one timescale is the
//! `decay` rule's network bit for bit (variables, outputs, traces and gradients, by autograd
//! and by the hand-written pass); with several, each trace follows `decay` at its own rate
//! and adds its own `α_k`-weighted input; bad settings are errors that name the key.
mod common;
use common::*;
use plastic_agents::cores::{
    AlphaShape, Bptt, Core, CoreConfig, CoreKind, Engine, EtaShape, Modulation, Rule, Tape,
    TraceCheckpoints, MAX_TIMESCALES,
};
use plastic_agents::parameters::{named_gradients, named_variables, zero_gradients};
use std::sync::{Mutex, MutexGuard, PoisonError};
use tch::{nn, Device, Kind, Tensor};

const IN: i64 = 3;
const B: i64 = 2;
const T: i64 = 6;

fn decay(kind: CoreKind, eta: EtaShape, alpha: AlphaShape) -> CoreConfig {
    CoreConfig {
        kind,
        hidden: 5,
        rule: Rule::Decay,
        modulation: Modulation::None,
        eta,
        alpha,
        ..CoreConfig::default()
    }
}

fn with_timescales(config: &CoreConfig, timescales: &[f64]) -> CoreConfig {
    CoreConfig {
        timescales: timescales.to_vec(),
        ..config.clone()
    }
}

/// libtorch's random generator is process-wide, and the tests of this file run on threads
/// side by side: one that seeds it twice and expects the same draws would get another test's
/// draws in between. Every test here holds this while it runs.
fn generator() -> MutexGuard<'static, ()> {
    static GENERATOR: Mutex<()> = Mutex::new(());
    GENERATOR.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A core in f32 (training's kind), its variables drawn after seeding with `seed`.
fn seeded(config: &CoreConfig, seed: i64) -> (nn::VarStore, Core) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let core = Core::new(&vs.root(), IN, config).expect("a valid config");
    (vs, core)
}

/// Outputs and every parameter's gradient (sorted by name) of `Σ h ⊙ weights` over an unroll
/// of `xs` by `engine`.
fn outputs_and_grads(
    vs: &nn::VarStore,
    core: &Core,
    engine: Engine,
    xs: &Tensor,
    weights: &Tensor,
) -> (Tensor, Vec<(String, Tensor)>) {
    zero_gradients(vs);
    let mut tape = Tape::new(
        core,
        &core.initial_state(B),
        engine,
        TraceCheckpoints::Every(1),
    );
    assert_eq!(tape.engine(), engine);
    let outs: Vec<Tensor> = xs
        .unbind(0)
        .iter()
        .map(|x| tape.step(x, &[false; B as usize]))
        .collect();
    let hs = Tensor::stack(&outs, 0).set_requires_grad(true);
    (&hs * weights).sum(Kind::Float).backward();
    tape.backward(&hs.grad());
    (hs.detach(), named_gradients(vs))
}

#[test]
fn one_timescale_is_the_decay_rule_bit_for_bit() {
    let _generator = generator();
    for kind in [CoreKind::PlasticRnn, CoreKind::PlasticLstm] {
        for &eta in EtaShape::ALL {
            for &alpha in AlphaShape::ALL {
                let base = decay(kind, eta, alpha);
                // η = 1/100 = 0.01, the rule's own starting rate.
                let one = with_timescales(&base, &[100.0]);
                let label = format!("{} eta={} alpha={}", kind.name(), eta.name(), alpha.name());
                let (vs_a, a) = seeded(&base, 7);
                let (vs_b, b) = seeded(&one, 7);
                let (pa, pb) = (named_variables(&vs_a), named_variables(&vs_b));
                assert_eq!(pa.len(), pb.len(), "{label}");
                for ((na, ta), (nb, tb)) in pa.iter().zip(&pb) {
                    assert!(na == nb && ta.equal(tb), "{label}: variable {na} / {nb}");
                }
                tch::manual_seed(8);
                let xs = Tensor::randn([T, B, IN], (Kind::Float, Device::Cpu));
                let weights = Tensor::randn([T, B, 5], (Kind::Float, Device::Cpu));
                let (sa, sb) = (
                    run(&a, &xs).1.hebb().unwrap().copy(),
                    run(&b, &xs).1.hebb().unwrap().copy(),
                );
                assert!(sa.equal(&sb), "{label}: traces differ");
                for engine in [Engine::Autograd, Engine::Fused] {
                    let (oa, ga) = outputs_and_grads(&vs_a, &a, engine, &xs, &weights);
                    let (ob, gb) = outputs_and_grads(&vs_b, &b, engine, &xs, &weights);
                    assert!(oa.equal(&ob), "{label} {engine:?}: outputs differ");
                    for ((name, ga), (_, gb)) in ga.iter().zip(&gb) {
                        assert!(ga.equal(gb), "{label} {engine:?}: d/d{name} differs");
                    }
                }
            }
        }
    }
}

#[test]
fn each_timescale_follows_decay_at_its_own_rate_and_adds_its_own_input() {
    let _generator = generator();
    // Two traces with α₂ = 0 are the one-trace core at η₁, whatever η₂ does to trace 2.
    let two = with_timescales(
        &decay(
            CoreKind::PlasticRnn,
            EtaShape::Scalar,
            AlphaShape::PerConnection,
        ),
        &[2.0, 50.0],
    );
    let one = decay(
        CoreKind::PlasticRnn,
        EtaShape::Scalar,
        AlphaShape::PerConnection,
    );
    tch::manual_seed(3);
    let (vs2, core2) = build(&two, IN);
    let (vs1, core1) = build(&one, IN);
    randomize(&vs2);
    assert_eq!(param(&vs2, "alpha").size(), [2, 5, 5]);
    assert_eq!(param(&vs2, "eta").size(), [2, 1]);
    let eta = values(&param(&vs2, "eta"));
    tch::no_grad(|| {
        for name in ["w", "w_in", "b"] {
            param(&vs1, name).copy_(&param(&vs2, name));
        }
        param(&vs1, "alpha").copy_(&param(&vs2, "alpha").get(0));
        param(&vs1, "eta").copy_(&param(&vs2, "eta").get(0));
        let _ = param(&vs2, "alpha").get(1).fill_(0.0);
    });
    let xs = Tensor::randn([T, B, IN], F64);
    let (out2, state2) = run(&core2, &xs);
    let (out1, state1) = run(&core1, &xs);
    assert!(out1.allclose(&out2, 0.0, 1e-12, false));
    let traces = state2.traces().unwrap().hebbs();
    assert_eq!(traces.len(), 2);
    assert!(traces[0].allclose(state1.hebb().unwrap(), 0.0, 1e-12, false));
    // Trace 2 by hand: Hebb ← (1 − η₂) Hebb + η₂ h_t h_{t−1}ᵀ over the same activity.
    let mut hebb = Tensor::zeros([B, 5, 5], F64);
    let mut pre = Tensor::zeros([B, 5], F64);
    for h in out2.unbind(0) {
        hebb = &hebb * (1.0 - eta[1]) + h.unsqueeze(2) * pre.unsqueeze(1) * eta[1];
        pre = h;
    }
    assert!(traces[1].allclose(&hebb, 0.0, 1e-12, false));
    // `plastic spectra`'s α is the first timescale's, the one the first trace is read with.
    let alpha = plastic_agents::spectra::alpha_matrix(&core2).unwrap();
    assert!(alpha.equal(&param(&vs2, "alpha").get(0)));
    // A saved state names every trace.
    let names: Vec<&str> = state2.named().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["h", "hebb", "hebb-2"]);
}

#[test]
fn rates_start_at_one_over_each_timescale() {
    let _generator = generator();
    let config = with_timescales(
        &decay(
            CoreKind::PlasticLstm,
            EtaShape::PerNeuron,
            AlphaShape::PerNeuron,
        ),
        &[1.0, 4.0, 1000.0],
    );
    let (vs, _) = build(&config, IN);
    let eta = param(&vs, "eta");
    assert_eq!(eta.size(), [3, 5]);
    for (k, tau) in [1.0, 4.0, 1000.0].into_iter().enumerate() {
        assert!(values(&eta.get(k as i64)).iter().all(|&r| r == 1.0 / tau));
    }
    assert_eq!(param(&vs, "alpha").size(), [3, 5]);
}

/// Several timescales run the hand-written pass (`agents/tests/fused.rs` checks it against
/// autograd): `auto` picks it on the CPU, and `fused` and `ops` take it.
#[test]
fn several_timescales_run_the_hand_written_pass() {
    let _generator = generator();
    let (_, core) = build(
        &with_timescales(
            &decay(
                CoreKind::PlasticRnn,
                EtaShape::Scalar,
                AlphaShape::PerConnection,
            ),
            &[3.0, 30.0],
        ),
        IN,
    );
    assert_eq!(Engine::fused_unsupported(&core), None);
    assert_eq!(Bptt::Auto.engine(&core), Ok(Engine::Fused));
    assert_eq!(Bptt::Fused.engine(&core), Ok(Engine::Fused));
    assert_eq!(Bptt::Ops.engine(&core), Ok(Engine::Ops));
}

#[test]
fn bad_timescales_are_errors_that_name_the_key() {
    let _generator = generator();
    let good = decay(
        CoreKind::PlasticRnn,
        EtaShape::Scalar,
        AlphaShape::PerConnection,
    );
    let too_many = vec![10.0; MAX_TIMESCALES + 1];
    for bad in [&[0.5][..], &[10.0, f64::NAN], &[f64::INFINITY], &too_many] {
        let err = with_timescales(&good, bad).validate().unwrap_err();
        assert_eq!(err.key(), Some("timescales"), "{bad:?}");
        assert!(err.to_string().contains("τ ≥ 1"), "{err}");
    }
    let others = [
        CoreConfig {
            rule: Rule::Hebb,
            ..good.clone()
        },
        CoreConfig {
            modulation: Modulation::Simple,
            ..good.clone()
        },
        CoreConfig {
            kind: CoreKind::Rnn,
            ..CoreConfig::rnn(5)
        },
    ];
    for config in others {
        let err = with_timescales(&config, &[3.0, 30.0])
            .validate()
            .unwrap_err();
        assert_eq!(err.key(), Some("timescales"));
        assert!(err.to_string().contains("rule = \"decay\""), "{err}");
    }
    assert!(with_timescales(&good, &[1.0, 1e6]).validate().is_ok());
}
