//! Gradients of every learned parameter and of the input against central finite differences
//! (f64), and batched runs against element-by-element runs.
mod common;
use common::*;
use plastic_agents::cores::{Core, CoreConfig, Modulation};
use plastic_agents::parameters::named_variables;
use tch::{Kind, Tensor};

const IN: i64 = 3;
const B: i64 = 2;
const T: i64 = 4;
const EPS: f64 = 1e-6;
const RTOL: f64 = 1e-5;
const ATOL: f64 = 1e-9;

/// Compares autograd with central differences for every element of `params` and `xs`.
fn check(config: &CoreConfig, seed: i64) {
    tch::manual_seed(seed);
    let (vs, core) = build(config, IN);
    randomize(&vs);
    let xs = Tensor::randn([T, B, IN], F64).set_requires_grad(true);
    let weights = Tensor::randn([T, B, core.hidden()], F64);
    let mut named = named_variables(&vs);
    named.push(("input".into(), xs.shallow_clone()));
    let leaves: Vec<Tensor> = named.iter().map(|(_, t)| t.shallow_clone()).collect();
    let analytic = grads(&loss(&core, &xs, &weights), &leaves);
    let mut checked = 0;
    for ((name, leaf), grad) in named.iter().zip(&analytic) {
        let flat = leaf.view([-1]);
        let grad = values(grad);
        for (k, &g) in grad.iter().enumerate() {
            let k = k as i64;
            let orig = flat.double_value(&[k]);
            let at = |v: f64| {
                tch::no_grad(|| {
                    let _ = flat.get(k).fill_(v);
                    loss(&core, &xs, &weights).double_value(&[])
                })
            };
            let fd = (at(orig + EPS) - at(orig - EPS)) / (2.0 * EPS);
            tch::no_grad(|| {
                let _ = flat.get(k).fill_(orig);
            });
            let tol = RTOL * g.abs().max(fd.abs()) + ATOL;
            assert!(
                (g - fd).abs() <= tol,
                "{}: d loss / d {name}[{k}]: autograd {g:.12e}, finite differences {fd:.12e}",
                label(config)
            );
            checked += 1;
        }
    }
    // Every parameter exists and mattered: a gradient of exactly zero everywhere would mean a
    // parameter that is not wired in.
    for ((name, _), grad) in named.iter().zip(&analytic) {
        let clipped_away = config.clip < 1.0 && (name == "eta" || name.starts_with("mod"));
        assert!(
            clipped_away || grad.abs().max().double_value(&[]) > 0.0,
            "{}: gradient of {name} is identically zero",
            label(config)
        );
    }
    assert!(checked > 0);
}

#[test]
fn gradients_match_finite_differences_for_every_core() {
    let configs = all_configs();
    assert!(
        configs.len() >= 30,
        "config matrix shrank to {}",
        configs.len()
    );
    for (i, config) in configs.iter().enumerate() {
        // A clip this large is never reached: the smooth part of every rule is checked.
        let config = CoreConfig {
            clip: 10.0,
            ..config.clone()
        };
        let config = if config.kind.is_plastic() {
            config
        } else {
            CoreConfig {
                clip: 1.0,
                ..config
            }
        };
        check(&config, i as i64);
    }
}

/// Whether the core's trace update clamps at ±c (a clipped rule, or retroactive modulation).
fn clips(config: &CoreConfig) -> bool {
    config.kind.is_plastic()
        && (config.rule.clipped() || config.modulation == Modulation::Retroactive)
}

#[test]
fn gradients_match_finite_differences_with_active_clipping() {
    // With c = 0.05 most trace entries sit at ±c after a step or two: checks the clamp's
    // gradient (zero at clamped entries, identity elsewhere) away from the boundary.
    for (i, config) in all_configs().into_iter().enumerate() {
        if clips(&config) {
            check(
                &CoreConfig {
                    clip: 0.05,
                    ..config
                },
                100 + i as i64,
            );
        }
    }
}

#[test]
fn gradients_match_finite_differences_at_the_default_clip() {
    // c = 1 takes its own code path (no rescaling); with rates up to 0.6 some entries reach
    // the bound within a few steps and others do not.
    for (i, config) in all_configs().into_iter().enumerate() {
        if clips(&config) {
            assert_eq!(config.clip, 1.0);
            check(&config, 400 + i as i64);
        }
    }
}

/// Runs `B` elements together and one at a time: outputs and parameter gradients agree.
#[test]
fn gradients_match_finite_differences_with_several_timescales() {
    let mut seed = 40;
    for base in all_configs() {
        let one = CoreConfig {
            timescales: vec![2.0, 20.0],
            ..base
        };
        if one.validate().is_ok() {
            check(&one, seed);
            seed += 1;
        }
    }
    assert!(seed > 40, "no config takes several timescales");
}

#[test]
fn batched_equals_looped() {
    let b = 3;
    for (i, config) in all_configs().iter().enumerate() {
        tch::manual_seed(200 + i as i64);
        let (vs, core) = build(config, IN);
        randomize(&vs);
        let xs = Tensor::randn([T, b, IN], F64);
        let weights = Tensor::randn([T, b, core.hidden()], F64);
        let params: Vec<Tensor> = named_variables(&vs).into_iter().map(|(_, t)| t).collect();
        let (out, _) = run(&core, &xs);
        let batched = grads(&(&out * &weights).sum(Kind::Double), &params);
        let mut looped: Vec<Tensor> = params.iter().map(Tensor::zeros_like).collect();
        for r in 0..b {
            let (x_r, w_r) = (xs.narrow(1, r, 1), weights.narrow(1, r, 1));
            let (out_r, _) = run(&core, &x_r);
            let d = max_abs_diff(&out_r, &out.narrow(1, r, 1));
            assert!(
                d < 1e-10,
                "{}: row {r} output differs by {d:e}",
                label(config)
            );
            let g = grads(&(&out_r * &w_r).sum(Kind::Double), &params);
            for (acc, g) in looped.iter_mut().zip(g) {
                *acc += g;
            }
        }
        for ((name, _), (gb, gl)) in named_variables(&vs).iter().zip(batched.iter().zip(&looped)) {
            let d = max_abs_diff(gb, gl);
            let scale = 1.0 + gb.abs().max().double_value(&[]);
            assert!(
                d < 1e-10 * scale,
                "{}: gradient of {name} differs by {d:e}",
                label(config)
            );
        }
    }
}

/// Changing row 0's inputs changes row 0 and nothing else, bit for bit.
#[test]
fn traces_of_different_rows_never_mix() {
    for (i, config) in all_configs().iter().enumerate() {
        tch::manual_seed(300 + i as i64);
        let (vs, core) = build(config, IN);
        randomize(&vs);
        let xs = Tensor::randn([T, 2, IN], F64);
        let ys = xs.copy();
        let _ = ys.narrow(1, 0, 1).g_add_(&Tensor::randn([T, 1, IN], F64));
        let (out_x, st_x) = tch::no_grad(|| run(&core, &xs));
        let (out_y, st_y) = tch::no_grad(|| run(&core, &ys));
        let row = |t: &Tensor, r: i64| t.narrow(1, r, 1);
        assert!(
            max_abs_diff(&row(&out_x, 0), &row(&out_y, 0)) > 1e-6,
            "{}: row 0 ignored its input",
            label(config)
        );
        assert!(
            row(&out_x, 1).equal(&row(&out_y, 1)),
            "{}: row 1's outputs changed",
            label(config)
        );
        if let (Some(hx), Some(hy)) = (st_x.hebb(), st_y.hebb()) {
            assert!(
                hx.get(1).equal(&hy.get(1)),
                "{}: row 1's trace changed",
                label(config)
            );
            assert!(
                max_abs_diff(&hx.get(0), &hy.get(0)) > 0.0,
                "{}: row 0's trace did not change",
                label(config)
            );
        }
    }
}

#[test]
fn core_runs_in_f32_by_default() {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let core = Core::new(&vs.root(), IN, &CoreConfig::backpropamine(5)).unwrap();
    let (h, state) = core.step(
        &Tensor::ones([2, IN], (Kind::Float, tch::Device::Cpu)),
        &core.initial_state(2),
    );
    assert_eq!(h.kind(), Kind::Float);
    assert_eq!(h.size(), [2, 5]);
    assert_eq!(state.hebb().unwrap().size(), [2, 5, 5]);
    assert_eq!(state.modulator().unwrap().size(), [2, 1]);
}
