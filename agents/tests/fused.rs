//! The hand-written backward pass against autograd (itself checked against finite
//! differences in `gradients.rs`): same outputs, same gradient for every parameter, through
//! row resets, a carried-in state and active clipping, for every core it runs (every plastic
//! RNN and LSTM, and STPN in each shape of λ and γ; f64), by both of its engines: the host
//! loops (`fused` on the CPU) and libtorch operations (`ops`, what `fused` runs on CUDA).
mod common;
use common::*;
use plastic_agents::cores::{
    AlphaShape, Bptt, Core, CoreConfig, CoreKind, Engine, EtaShape, Modulation, Rule, State, Tape,
    TraceCheckpoints,
};
use plastic_agents::parameters::{named_gradients, named_variables, zero_gradients};
use std::sync::{Mutex, PoisonError};
use tch::{Kind, Tensor};

const IN: i64 = 3;
const B: i64 = 3;
const T: i64 = 7;

/// Rows whose episode ends after each step: row 1 twice, row 2 once, row 0 never.
fn done_after(t: i64) -> [bool; B as usize] {
    [false, t == 1 || t == 4, t == 3]
}

/// A state reached by running the core a few steps, so traces and hidden state are non-zero.
fn carried_state(core: &Core) -> State {
    let xs = Tensor::randn([3, B, IN], F64);
    tch::no_grad(|| core.unroll(&xs, &core.initial_state(B)).1)
}

/// Unrolls with `engine` (keeping every `checkpoint_every`-th step's traces),
/// backpropagates `Σ h ⊙ weights`; returns the outputs and every parameter's gradient
/// (sorted by name).
fn run_engine(
    vs: &tch::nn::VarStore,
    core: &Core,
    (engine, checkpoint_every): (Engine, usize),
    start: &State,
    xs: &Tensor,
    weights: &Tensor,
) -> (Tensor, Vec<(String, Tensor)>) {
    zero_gradients(vs);
    let mut tape = Tape::new(
        core,
        start,
        engine,
        TraceCheckpoints::Every(checkpoint_every),
    );
    assert_eq!(
        tape.engine(),
        engine,
        "{}: the tape runs another engine",
        label(core.config())
    );
    let mut outs = Vec::new();
    let mut episode_start = [false; B as usize];
    for (t, x) in xs.unbind(0).iter().enumerate() {
        outs.push(tape.step(x, &episode_start));
        episode_start = done_after(t as i64);
    }
    let hs = Tensor::stack(&outs, 0).set_requires_grad(true);
    (&hs * weights).sum(Kind::Double).backward();
    tape.backward(&hs.grad());
    let grads = named_gradients(vs);
    (hs.detach(), grads)
}

/// libtorch's thread count is process-wide. The thread-count test changes it, and a comparison
/// running meanwhile could see its unrolls under different counts, where libtorch's own sums
/// (the `ops` engine, autograd) differ in the last bits; each holds this while it runs.
static THREAD_COUNT: Mutex<()> = Mutex::new(());

fn compare(config: &CoreConfig, seed: i64) {
    let _count = THREAD_COUNT.lock().unwrap_or_else(PoisonError::into_inner);
    tch::manual_seed(seed);
    let (vs, core) = build(config, IN);
    randomize(&vs);
    let start = carried_state(&core);
    let xs = Tensor::randn([T, B, IN], F64);
    let weights = Tensor::randn([T, B, core.hidden()], F64);
    let run = |engine| run_engine(&vs, &core, engine, &start, &xs, &weights);
    let (h_auto, g_auto) = run((Engine::Autograd, 1));
    let who = label(config);
    // The host loops (what the CPU runs) and libtorch operations (what CUDA runs, forced here
    // by `bptt = "ops"`).
    for engine in [Engine::Fused, Engine::Ops] {
        let who = format!("{who} ({})", engine.name());
        let (h_fused, g_fused) = run((engine, 1));
        // Keeping every third trace (of T = 7 steps: segments of 3, 3 and 1, resets inside
        // them) rebuilds the others exactly: the same numbers, bit for bit.
        let (h_kept, g_kept) = run((engine, 3));
        assert!(
            h_kept.equal(&h_fused),
            "{who}: trace checkpoints change the outputs"
        );
        for ((name, a), (_, k)) in g_fused.iter().zip(&g_kept) {
            assert!(
                a.equal(k),
                "{who}: trace checkpoints change the gradient of {name} by {:e}",
                max_abs_diff(a, k)
            );
        }
        assert!(
            max_abs_diff(&h_auto, &h_fused) < 1e-12,
            "{who}: outputs differ by {}",
            max_abs_diff(&h_auto, &h_fused)
        );
        for ((name, a), (_, f)) in g_auto.iter().zip(&g_fused) {
            let scale = a.abs().max().double_value(&[]).max(1e-3);
            let diff = max_abs_diff(a, f);
            assert!(
                diff <= 1e-10 * scale,
                "{who}: gradient of {name} differs: max |autograd − hand-written| = {diff:e} (scale {scale:e})"
            );
        }
        // The comparison means something only if gradients flow to every parameter.
        for (name, g) in &g_fused {
            assert!(
                g.abs().max().double_value(&[]) > 0.0,
                "{who}: hand-written gradient of {name} is identically zero"
            );
        }
    }
}

/// The configurations the fused engine runs, with H = 11: the passes work in chunks of 8
/// neurons and then the rest, and both paths must be right.
fn fused_configs() -> Vec<CoreConfig> {
    let configs: Vec<CoreConfig> = all_configs()
        .into_iter()
        .map(|c| CoreConfig { hidden: 11, ..c })
        .filter(|c| {
            let (_, core) = build(c, IN);
            Engine::fused_unsupported(&core).is_none()
        })
        .collect();
    let count = |f: fn(&CoreConfig) -> bool| configs.iter().filter(|c| f(c)).count();
    let retroactive = count(|c| c.modulation == Modulation::Retroactive);
    let lstm = count(|c| c.kind == CoreKind::PlasticLstm);
    let stpn = count(|c| c.kind == CoreKind::Stpn);
    assert!(
        configs.len() >= 30 && retroactive >= 6 && lstm >= 6 && stpn >= 2,
        "fused config matrix shrank to {} ({retroactive} retroactive, {lstm} LSTM, {stpn} STPN)",
        configs.len()
    );
    configs
}

#[test]
fn fused_backward_matches_autograd_for_every_core_it_runs() {
    for (i, config) in fused_configs().iter().enumerate() {
        compare(config, 100 + i as i64);
    }
}

/// Several timescales (`core.timescales`, K = 2 and 3), whose traces the hand-written pass
/// stacks into one: every plastic kind and η and α shape, against autograd and with trace
/// checkpoints, through resets and a carried-in state, by both engines.
#[test]
fn fused_backward_matches_autograd_with_several_timescales() {
    let mut seed = 500;
    for timescales in [vec![2.0, 20.0], vec![1.5, 6.0, 40.0]] {
        for &kind in &[CoreKind::PlasticRnn, CoreKind::PlasticLstm] {
            for &eta in EtaShape::ALL {
                for &alpha in AlphaShape::ALL {
                    let config = CoreConfig {
                        kind,
                        hidden: 11,
                        rule: Rule::Decay,
                        modulation: Modulation::None,
                        eta,
                        alpha,
                        timescales: timescales.clone(),
                        ..CoreConfig::default()
                    };
                    compare(&config, seed);
                    seed += 1;
                }
            }
        }
    }
}

/// With a low bound the trace sits on its bound in many cells, so the clip's mask matters;
/// `randomize` puts rates in [0.1, 0.6) and activities near ±1, which reach 0.05 within the
/// steps a comparison runs (a carried state, then `T` more).
#[test]
fn fused_backward_matches_autograd_with_the_clip_active() {
    for (i, config) in fused_configs().iter().enumerate() {
        let config = CoreConfig {
            clip: 0.05,
            ..config.clone()
        };
        tch::manual_seed(7);
        let (vs, core) = build(&config, IN);
        randomize(&vs);
        if config.kind.is_stpn() {
            // STPN's fast weights are divided by a row norm after the clamp, so they sit on
            // no bound; the clamp is active where it changes the outputs.
            tch::manual_seed(7);
            let (unclamped_vs, unclamped) = build(
                &CoreConfig {
                    clip: 1e9,
                    ..config.clone()
                },
                IN,
            );
            randomize(&unclamped_vs);
            let xs = Tensor::randn([3 + T, B, IN], F64);
            let (clamped_h, _) = tch::no_grad(|| run(&core, &xs));
            let (unclamped_h, _) = tch::no_grad(|| run(&unclamped, &xs));
            assert!(
                max_abs_diff(&clamped_h, &unclamped_h) > 1e-6,
                "{}: the clamp is never reached",
                label(&config)
            );
        } else if config.rule.clipped() || config.modulation == Modulation::Retroactive {
            let mut state = core.initial_state(B);
            let mut at_bound = 0;
            for x in Tensor::randn([3 + T, B, IN], F64).unbind(0) {
                state = tch::no_grad(|| core.step(&x, &state).1);
                let hebb = state.hebb().expect("a plastic core's state");
                at_bound += hebb
                    .abs()
                    .ge(0.05 - 1e-12)
                    .sum(Kind::Int64)
                    .int64_value(&[]);
            }
            assert!(
                at_bound > 0,
                "{}: the clip is never reached",
                label(&config)
            );
        }
        compare(&config, 300 + i as i64);
    }
}

#[test]
fn bptt_setting_picks_the_engine_and_explains_a_refusal() {
    let (_, plastic) = build(&CoreConfig::backpropamine(4), IN);
    assert_eq!(Bptt::Auto.engine(&plastic), Ok(Engine::Fused));
    assert_eq!(Bptt::Autograd.engine(&plastic), Ok(Engine::Autograd));
    assert_eq!(Bptt::Ops.engine(&plastic), Ok(Engine::Ops));
    let (_, lstm) = build(&CoreConfig::lstm(4), IN);
    assert_eq!(Bptt::Auto.engine(&lstm), Ok(Engine::Autograd));
    for bptt in [Bptt::Fused, Bptt::Ops] {
        let err = bptt.engine(&lstm).unwrap_err().to_string();
        let setting = format!("bptt = \"{}\"", bptt.name());
        assert!(
            err.contains(&setting) && err.contains("kind = \"lstm\"") && err.contains("\"auto\""),
            "{err}"
        );
    }
}

/// The trace loops split the batch over the cores (`run.threads`); α's gradient (and STPN's
/// parameters'), a sum over the batch, is added in groups that depend on the batch size only,
/// so the gradients are
/// the same bit for bit with 1 thread (every pass on the calling thread) and with 3 (with
/// enough rows for several per group, and enough trace cells, 70 · 48², for the passes to be
/// shared out).
#[test]
fn fused_gradients_are_the_same_for_any_thread_count() {
    let _count = THREAD_COUNT.lock().unwrap_or_else(PoisonError::into_inner);
    const ROWS: i64 = 70;
    const HIDDEN: usize = 48;
    let retroactive = CoreConfig {
        modulation: Modulation::Retroactive,
        ..CoreConfig::backpropamine(HIDDEN)
    };
    for config in [
        CoreConfig::backpropamine(HIDDEN),
        retroactive,
        CoreConfig::stpn(HIDDEN),
    ] {
        tch::manual_seed(11);
        let (vs, core) = build(&config, IN);
        randomize(&vs);
        let xs = Tensor::randn([T, ROWS, IN], F64);
        let weights = Tensor::randn([T, ROWS, core.hidden()], F64);
        let run = |threads: usize| {
            plastic_agents::threads::assign(threads, true);
            zero_gradients(&vs);
            let mut tape = Tape::new(
                &core,
                &core.initial_state(ROWS),
                Engine::Fused,
                TraceCheckpoints::Every(1),
            );
            let mut outs = Vec::new();
            for (t, x) in xs.unbind(0).iter().enumerate() {
                // Every seventh row starts a new episode at step 3.
                let start: Vec<bool> = (0..ROWS).map(|b| t == 3 && b % 7 == 0).collect();
                outs.push(tape.step(x, &start));
            }
            let hs = Tensor::stack(&outs, 0).set_requires_grad(true);
            (&hs * &weights).sum(Kind::Double).backward();
            tape.backward(&hs.grad());
            named_variables(&vs)
                .into_iter()
                .map(|(n, p)| (n, p.grad().copy()))
                .collect::<Vec<_>>()
        };
        let (one, three) = (run(1), run(3));
        for ((name, a), (_, b)) in one.iter().zip(&three) {
            assert!(
                a.equal(b),
                "{}: gradient of {name} differs between 1 and 3 threads by {:e}",
                label(&config),
                max_abs_diff(a, b)
            );
        }
    }
    plastic_agents::threads::assign(0, false);
}
