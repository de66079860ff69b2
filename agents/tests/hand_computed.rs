//! Two steps of each rule on a 2-neuron core, against plain Rust arithmetic written from the
//! equations in docs/plasticity.md (not from the library). The steps start from a non-zero
//! hidden state and trace so that every term (α ⊙ Hebb, decay, Oja's forgetting, clipping,
//! the eligibility trace) contributes within two steps.
mod common;
use common::*;
use plastic_agents::cores::{
    AlphaShape, CoreConfig, CoreKind, EtaShape, Modulation, ModulatorShape, Rule, State, Traces,
};
use tch::Tensor;

type M2 = [[f64; 2]; 2];

const W_IN: [f64; 2] = [0.5, -0.3];
const B: [f64; 2] = [0.1, 0.2];
const W: M2 = [[0.2, -0.1], [0.05, 0.3]];
const ALPHA: M2 = [[0.5, -0.4], [0.3, 0.2]];
const ETA: f64 = 0.2;
const CLIP: f64 = 0.25;
/// Bound 1 takes a separate code path (no rescaling).
const CLIP_1: f64 = 1.0;
const MOD_W: [f64; 2] = [0.7, -0.5];
const MOD_B: f64 = 0.1;
const FAN_OUT: [f64; 2] = [1.5, -0.5];
const ETA_E: f64 = 0.3;
const H0: [f64; 2] = [0.5, -0.25];
const HEBB0: M2 = [[0.1, -0.2], [0.3, 0.05]];
const E0: M2 = [[0.2, 0.1], [-0.1, 0.4]];
const XS: [f64; 2] = [1.0, -0.5];
/// θ of the `bcm` rule (docs/plasticity.md).
const BCM_THETA: f64 = 0.5;

#[derive(Clone, Copy)]
enum Rate {
    Eta,
    Modulated { fan_out: bool },
    Retroactive,
}

struct Ref {
    h: [f64; 2],
    hebb: M2,
    e: M2,
    m: [f64; 2],
}

/// One step of the plastic RNN of the spec, element by element.
fn reference_step(s: &Ref, x: f64, rule: Rule, rate: Rate, clip: f64) -> Ref {
    let mut h = [0.0; 2];
    for i in 0..2 {
        let mut pre = W_IN[i] * x + B[i];
        for j in 0..2 {
            pre += (W[i][j] + ALPHA[i][j] * s.hebb[i][j]) * s.h[j];
        }
        h[i] = pre.tanh();
    }
    let m = (MOD_W[0] * h[0] + MOD_W[1] * h[1] + MOD_B).tanh();
    let m = match rate {
        Rate::Modulated { fan_out: true } => [FAN_OUT[0] * m, FAN_OUT[1] * m],
        _ => [m, m],
    };
    let (mut hebb, mut e) = (s.hebb, s.e);
    for i in 0..2 {
        for j in 0..2 {
            let r = match rate {
                Rate::Eta => ETA,
                _ => m[i],
            };
            let (old, co) = (s.hebb[i][j], h[i] * s.h[j]);
            hebb[i][j] = match (rate, rule) {
                (Rate::Retroactive, _) => (old + m[i] * s.e[i][j]).clamp(-clip, clip),
                (_, Rule::Hebb) => (old + r * co).clamp(-clip, clip),
                (_, Rule::Decay) => (1.0 - r) * old + r * co,
                (_, Rule::Oja) => old + r * h[i] * (s.h[j] - h[i] * old),
                (_, Rule::Instar) => old + r * h[i] * (s.h[j] - old),
                (_, Rule::Bcm) => (old + r * h[i] * (h[i] - BCM_THETA) * s.h[j]).clamp(-clip, clip),
                (_, rule) => panic!("no hand-computed reference for rule = \"{}\"", rule.name()),
            };
            e[i][j] = (1.0 - ETA_E) * s.e[i][j] + ETA_E * co;
        }
    }
    Ref { h, hebb, e, m }
}

fn flat(m: &M2) -> Vec<f64> {
    m.iter().flatten().copied().collect()
}

fn check(rule: Rule, rate: Rate) {
    check_with_clip(rule, rate, CLIP);
    if rule.clipped() {
        check_with_clip(rule, rate, CLIP_1);
    }
}

fn check_with_clip(rule: Rule, rate: Rate, clip: f64) {
    let modulation = match rate {
        Rate::Eta => Modulation::None,
        Rate::Modulated { .. } => Modulation::Simple,
        Rate::Retroactive => Modulation::Retroactive,
    };
    let modulator = match rate {
        Rate::Modulated { fan_out: true } => ModulatorShape::FanOut,
        _ => ModulatorShape::Scalar,
    };
    let config = CoreConfig {
        kind: CoreKind::PlasticRnn,
        hidden: 2,
        rule,
        clip,
        eta: EtaShape::Scalar,
        alpha: AlphaShape::PerConnection,
        modulation,
        modulator,
        ..CoreConfig::default()
    };
    let (vs, core) = build(&config, 1);
    set(&vs, "w_in", &W_IN);
    set(&vs, "b", &B);
    set(&vs, "w", &flat(&W));
    set(&vs, "alpha", &flat(&ALPHA));
    match modulation {
        Modulation::None => set(&vs, "eta", &[ETA]),
        _ => {
            set(&vs, "mod_w", &MOD_W);
            set(&vs, "mod_b", &[MOD_B]);
        }
    }
    if modulator == ModulatorShape::FanOut {
        set(&vs, "fan_out", &FAN_OUT);
    }
    if modulation == Modulation::Retroactive {
        set(&vs, "eta_e", &[ETA_E]);
    }
    let t = |v: &[f64], shape: &[i64]| Tensor::from_slice(v).view(shape);
    let hebb = t(&flat(&HEBB0), &[1, 2, 2]);
    let traces = match modulation {
        Modulation::Retroactive => Traces::Retroactive {
            hebb,
            elig: t(&flat(&E0), &[1, 2, 2]),
        },
        Modulation::None | Modulation::Simple => Traces::Hebb(hebb),
    };
    let mut state = State::new(t(&H0, &[1, 2]), None, Some(traces));
    let mut r = Ref {
        h: H0,
        hebb: HEBB0,
        e: E0,
        m: [0.0; 2],
    };
    for &x in &XS {
        let (h, next) = tch::no_grad(|| core.step(&t(&[x], &[1, 1]), &state));
        r = reference_step(&r, x, rule, rate, clip);
        state = next;
        let what = format!("rule {} {:?} clip {clip}", rule.name(), modulation);
        let close = |a: &[f64], b: &[f64], name: &str| {
            for (k, (a, b)) in a.iter().zip(b).enumerate() {
                assert!(
                    (a - b).abs() < 1e-14,
                    "{what}: {name}[{k}] = {a}, by hand {b}"
                );
            }
        };
        close(&values(&h), &r.h, "h");
        close(&values(state.hebb().unwrap()), &flat(&r.hebb), "Hebb");
        if let Some(e) = state.elig() {
            close(&values(e), &flat(&r.e), "E");
        }
        if let Some(m) = state.modulator() {
            let expected = if m.size()[1] == 2 {
                r.m.to_vec()
            } else {
                vec![r.m[0]]
            };
            close(&values(m), &expected, "M");
        }
    }
}

#[test]
fn the_reference_reads_the_spec() {
    // The first neuron's first step written out in full, to pin the reference itself.
    let pre = 0.5 * 1.0 + 0.1 + (0.2 + 0.5 * 0.1) * 0.5 + (-0.1 + -0.4 * -0.2) * -0.25;
    let h0 = f64::tanh(pre);
    let h1 = f64::tanh(-0.3 * 1.0 + 0.2 + (0.05 + 0.3 * 0.3) * 0.5 + (0.3 + 0.2 * 0.05) * -0.25);
    let r = reference_step(
        &Ref {
            h: H0,
            hebb: HEBB0,
            e: E0,
            m: [0.0; 2],
        },
        1.0,
        Rule::Hebb,
        Rate::Eta,
        CLIP,
    );
    let near = |a: f64, b: f64| assert!((a - b).abs() < 1e-15, "{a} vs {b}");
    near(r.h[0], h0);
    near(r.h[1], h1);
    // Hebb[1][0] = clamp(0.3 + 0.2 · h1 · 0.5, ±0.25) = 0.25 (clipped) and
    // Hebb[0][1] = −0.2 + 0.2 · h0 · (−0.25).
    assert!(0.3 + 0.2 * h1 * 0.5 > 0.25);
    near(r.hebb[1][0], 0.25);
    near(r.hebb[0][1], -0.2 + 0.2 * h0 * -0.25);
}

#[test]
fn hebb_two_steps() {
    check(Rule::Hebb, Rate::Eta);
}

#[test]
fn decay_two_steps() {
    check(Rule::Decay, Rate::Eta);
}

#[test]
fn oja_two_steps() {
    check(Rule::Oja, Rate::Eta);
}

#[test]
fn instar_two_steps() {
    check(Rule::Instar, Rate::Eta);
    check(Rule::Instar, Rate::Modulated { fan_out: true });
}

#[test]
fn bcm_two_steps() {
    // Both sides of the threshold within the two steps: a co-active connection onto a weakly
    // active neuron (0 < h < θ) is depressed, onto a strongly active one potentiated.
    let mut state = Ref {
        h: H0,
        hebb: HEBB0,
        e: E0,
        m: [0.0; 2],
    };
    let mut hs = Vec::new();
    for x in XS {
        state = reference_step(&state, x, Rule::Bcm, Rate::Eta, CLIP);
        hs.extend(state.h);
    }
    assert!(
        hs.iter().any(|&h| 0.0 < h && h < BCM_THETA) && hs.iter().any(|&h| h > BCM_THETA),
        "{hs:?}"
    );
    check(Rule::Bcm, Rate::Eta);
    check(Rule::Bcm, Rate::Modulated { fan_out: true });
}

#[test]
fn simple_neuromodulation_two_steps() {
    check(Rule::Hebb, Rate::Modulated { fan_out: false });
    check(Rule::Hebb, Rate::Modulated { fan_out: true });
    check(Rule::Decay, Rate::Modulated { fan_out: false });
    check(Rule::Oja, Rate::Modulated { fan_out: true });
}

#[test]
fn retroactive_neuromodulation_two_steps() {
    check(Rule::Hebb, Rate::Retroactive);
}

#[test]
fn plastic_lstm_two_steps() {
    // Gates i, f, g, o; the plastic part feeds g, and g_t is the trace's post-synaptic side.
    let w_in = [0.3, -0.2, 0.1, 0.4, 0.5, -0.3, 0.2, -0.1];
    let b = [0.05, -0.05, 0.1, 0.2, 0.1, 0.2, -0.1, 0.0];
    let w: Vec<f64> = (0..16).map(|k| 0.1 * ((k as f64) * 0.7).sin()).collect();
    let config = CoreConfig {
        kind: CoreKind::PlasticLstm,
        hidden: 2,
        clip: CLIP,
        ..CoreConfig::default()
    };
    let (vs, core) = build(&config, 1);
    set(&vs, "w_in", &w_in);
    set(&vs, "b", &b);
    set(&vs, "w", &w);
    set(&vs, "alpha", &flat(&ALPHA));
    set(&vs, "mod_w", &MOD_W);
    set(&vs, "mod_b", &[MOD_B]);
    let t = |v: &[f64], shape: &[i64]| Tensor::from_slice(v).view(shape);
    let c0 = [0.3, -0.6];
    let mut state = State::new(
        t(&H0, &[1, 2]),
        Some(t(&c0, &[1, 2])),
        Some(Traces::Hebb(t(&flat(&HEBB0), &[1, 2, 2]))),
    );
    let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
    let (mut h, mut c, mut hebb) = (H0, c0, HEBB0);
    for &x in &XS {
        let mut gate = [[0.0; 2]; 4];
        for (k, row) in gate.iter_mut().enumerate() {
            for (i, z) in row.iter_mut().enumerate() {
                let r = 2 * k + i;
                *z = w_in[r] * x + b[r] + w[2 * r] * h[0] + w[2 * r + 1] * h[1];
                if k == 2 {
                    *z += ALPHA[i][0] * hebb[i][0] * h[0] + ALPHA[i][1] * hebb[i][1] * h[1];
                }
            }
        }
        let g = [gate[2][0].tanh(), gate[2][1].tanh()];
        let mut h_new = [0.0; 2];
        for i in 0..2 {
            c[i] = sig(gate[1][i]) * c[i] + sig(gate[0][i]) * g[i];
            h_new[i] = sig(gate[3][i]) * c[i].tanh();
        }
        let m = (MOD_W[0] * h_new[0] + MOD_W[1] * h_new[1] + MOD_B).tanh();
        for i in 0..2 {
            for j in 0..2 {
                hebb[i][j] = (hebb[i][j] + m * g[i] * h[j]).clamp(-CLIP, CLIP);
            }
        }
        h = h_new;
        let (out, next) = tch::no_grad(|| core.step(&t(&[x], &[1, 1]), &state));
        state = next;
        for (a, e) in values(&out).iter().zip(&h) {
            assert!((a - e).abs() < 1e-14, "h: {a} vs by hand {e}");
        }
        for (a, e) in values(state.c().unwrap()).iter().zip(&c) {
            assert!((a - e).abs() < 1e-14, "c: {a} vs by hand {e}");
        }
        for (a, e) in values(state.hebb().unwrap()).iter().zip(&flat(&hebb)) {
            assert!((a - e).abs() < 1e-14, "Hebb: {a} vs by hand {e}");
        }
    }
}
