//! Row resets (episode ends in one environment) and detaching (truncated BPTT).
mod common;
use common::*;
use plastic_agents::cores::{CoreConfig, Modulation, State};
use tch::{Kind, Tensor};

const IN: i64 = 3;

fn tensors(s: &State) -> Vec<(&'static str, &Tensor)> {
    let mut v = vec![("h", s.h())];
    for (name, t) in [
        ("c", s.c()),
        ("hebb", s.hebb()),
        ("elig", s.elig()),
        ("fast", s.fast()),
        ("modulator", s.modulator()),
    ] {
        if let Some(t) = t {
            v.push((name, t));
        }
    }
    v
}

/// State of 3 rows after 4 steps of random input.
fn warm_state(config: &CoreConfig, seed: i64) -> State {
    tch::manual_seed(seed);
    let (vs, core) = build(config, IN);
    randomize(&vs);
    run(&core, &Tensor::randn([4, 3, IN], F64)).1
}

#[test]
fn reset_rows_zeroes_done_rows_and_keeps_others_bit_for_bit() {
    for (i, config) in all_configs().iter().enumerate() {
        let state = warm_state(config, i as i64);
        let masks = [
            Tensor::from_slice(&[0.0f32, 1.0, 0.0]),
            Tensor::from_slice(&[false, true, false]),
        ];
        let resets = [
            state.reset_rows(&masks[0]),
            state.reset_rows(&masks[1]),
            state.reset_rows_bool(&[false, true, false]),
        ];
        for reset in &resets {
            let before = tensors(&state);
            let after = tensors(reset);
            assert_eq!(before.len(), after.len());
            for ((name, b), (_, a)) in before.iter().zip(&after) {
                assert_eq!(
                    a.size(),
                    b.size(),
                    "{}: {name} changed shape",
                    label(config)
                );
                assert!(
                    a.get(1).eq(0.0).all().int64_value(&[]) == 1,
                    "{}: {name} row 1 not zeroed",
                    label(config)
                );
                assert!(
                    b.get(1).ne(0.0).any().int64_value(&[]) == 1,
                    "{}: {name} row 1 was zero already",
                    label(config)
                );
                for r in [0, 2] {
                    assert!(
                        a.get(r).equal(&b.get(r)),
                        "{}: {name} row {r} changed",
                        label(config)
                    );
                }
            }
        }
    }
}

#[test]
fn a_reset_row_continues_like_a_fresh_episode() {
    for (i, config) in all_configs().iter().enumerate() {
        tch::manual_seed(50 + i as i64);
        let (vs, core) = build(config, IN);
        randomize(&vs);
        let (_, state) = run(&core, &Tensor::randn([3, 2, IN], F64));
        let state = state.reset_rows_bool(&[true, false]);
        let xs = Tensor::randn([3, 2, IN], F64);
        let (out, _) = core.unroll(&xs, &state);
        let (fresh, _) = run(&core, &xs.narrow(1, 0, 1));
        let d = max_abs_diff(&out.narrow(1, 0, 1), &fresh);
        assert!(
            d < 1e-12,
            "{}: reset row differs from a fresh episode by {d:e}",
            label(config)
        );
    }
}

/// Gradient of a loss at step t + k w.r.t. the input at step t: zero across a detach.
#[test]
fn detach_cuts_gradients_exactly_at_the_boundary() {
    for (i, config) in all_configs().iter().enumerate() {
        tch::manual_seed(80 + i as i64);
        let (vs, core) = build(config, IN);
        randomize(&vs);
        let x0 = Tensor::randn([2, IN], F64).set_requires_grad(true);
        let later = Tensor::randn([3, 2, IN], F64);
        let grad_through = |detach: bool| {
            let (_, s) = core.step(&x0, &core.initial_state(2));
            let (_, s) = core.step(&later.get(0), &s);
            let s = if detach { s.detach() } else { s };
            let (out, _) = core.unroll(&later.narrow(0, 1, 2), &s);
            // `0 · x0` keeps x0 in the graph, so its gradient is defined (and zero) when cut.
            let loss = out.get(-1).sum(Kind::Double) + (&x0 * 0.0).sum(Kind::Double);
            grads(&loss, &[x0.shallow_clone()])
                .remove(0)
                .abs()
                .max()
                .double_value(&[])
        };
        assert!(
            grad_through(false) > 1e-8,
            "{}: no gradient without detach",
            label(config)
        );
        assert_eq!(
            grad_through(true),
            0.0,
            "{}: gradient leaked across detach",
            label(config)
        );
        // Detaching keeps the values.
        let (_, s) = core.step(&x0, &core.initial_state(2));
        let d = s.detach();
        assert!(tensors(&d).iter().all(|(_, t)| !t.requires_grad()));
        for ((_, a), (_, b)) in tensors(&s).iter().zip(tensors(&d).iter()) {
            assert!(a.equal(b));
        }
    }
}

#[test]
fn initial_state_shapes_and_diagnostics() {
    let (_vs, core) = build(
        &CoreConfig {
            hidden: 5,
            ..CoreConfig::default()
        },
        IN,
    );
    let s = core.initial_state(3);
    assert_eq!(s.h().size(), [3, 5]);
    assert_eq!(s.hebb().unwrap().size(), [3, 5, 5]);
    assert!(s.c().is_none() && s.elig().is_none() && s.modulator().is_none());
    assert_eq!(s.mean_abs_hebb(), Some(0.0));
    let (_, s) = core.step(&Tensor::randn([3, IN], F64), &s);
    let (_, s) = core.step(&Tensor::randn([3, IN], F64), &s);
    let expected = s.hebb().unwrap().abs().mean(Kind::Double).double_value(&[]);
    assert_eq!(s.mean_abs_hebb(), Some(expected));
    assert!(expected > 0.0);
    assert_eq!(s.mean_abs_elig(), None);
    let (mean, std) = s.modulator_stats().unwrap();
    let m = s.modulator().unwrap();
    assert_eq!(m.size(), [3, 1]);
    // The three rows saw different inputs: their modulators differ, and the statistics are
    // theirs (the sample standard deviation, as TensorBoard's `modulator std` is).
    let rows: Vec<f64> = (0..3).map(|b| m.double_value(&[b, 0])).collect();
    let by_hand = rows.iter().sum::<f64>() / 3.0;
    let spread = (rows.iter().map(|x| (x - by_hand).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!(spread > 1e-6, "{rows:?}");
    assert!((mean - by_hand).abs() < 1e-12, "{mean} {rows:?}");
    assert!(
        (std - spread).abs() < 1e-12,
        "{std} against {spread}: {rows:?}"
    );
    // Retroactive modulation also reports its eligibility trace.
    let (_vs, retro) = build(
        &CoreConfig {
            hidden: 5,
            modulation: Modulation::Retroactive,
            ..CoreConfig::default()
        },
        IN,
    );
    let (_, s) = retro.step(&Tensor::randn([3, IN], F64), &retro.initial_state(3));
    // The first step's pre-synaptic activity is zero: E grows from the second.
    let (_, s) = retro.step(&Tensor::randn([3, IN], F64), &s);
    let elig = s.elig().unwrap().abs().mean(Kind::Double);
    assert_eq!(s.mean_abs_elig(), Some(elig.double_value(&[])));
    assert!(elig.double_value(&[]) > 0.0);
    let (_vs, lstm) = build(&CoreConfig::lstm(5), IN);
    assert_eq!(lstm.initial_state(2).c().unwrap().size(), [2, 5]);
    assert!(lstm.initial_state(2).hebb().is_none());
}
