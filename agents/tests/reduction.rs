//! With α = 0, or with the plasticity rate forced to 0, a plastic core is its plain counterpart.
mod common;
use common::*;
use plastic_agents::cores::{Core, CoreConfig, CoreKind, Modulation};
use plastic_agents::parameters::named_variables;
use tch::{nn, Tensor};

const IN: i64 = 3;

/// A plain core of the same cell sharing the plastic core's fixed weights.
fn plain_twin(config: &CoreConfig, plastic_vs: &nn::VarStore) -> (nn::VarStore, Core) {
    let plain = if config.kind == CoreKind::PlasticLstm {
        CoreConfig::lstm(config.hidden)
    } else {
        CoreConfig::rnn(config.hidden)
    };
    let (vs, core) = build(&plain, IN);
    for (name, mut p) in named_variables(&vs) {
        tch::no_grad(|| p.copy_(&param(plastic_vs, &name)));
    }
    (vs, core)
}

fn zero(vs: &nn::VarStore, name: &str) {
    let mut p = param(vs, name);
    tch::no_grad(|| {
        let _ = p.zero_();
    });
}

fn assert_same(
    config: &CoreConfig,
    what: &str,
    plastic: &Core,
    plain: &Core,
    expect_hebb_zero: bool,
) {
    let xs = Tensor::randn([5, 2, IN], F64);
    let (a, sa) = tch::no_grad(|| run(plastic, &xs));
    let (b, _) = tch::no_grad(|| run(plain, &xs));
    let d = max_abs_diff(&a, &b);
    assert!(
        d < 1e-14,
        "{} with {what}: differs from the plain core by {d:e}",
        label(config)
    );
    let hebb = sa
        .hebb()
        .expect("plastic state")
        .abs()
        .max()
        .double_value(&[]);
    if expect_hebb_zero {
        assert_eq!(hebb, 0.0, "{} with {what}: the trace moved", label(config));
    } else {
        assert!(
            hebb > 0.0,
            "{} with {what}: the trace should still learn",
            label(config)
        );
    }
}

#[test]
fn zero_alpha_gives_the_plain_core() {
    for (i, config) in all_configs()
        .iter()
        .filter(|c| c.kind.is_plastic())
        .enumerate()
    {
        tch::manual_seed(i as i64);
        let (vs, core) = build(config, IN);
        randomize(&vs);
        let (_pvs, plain) = plain_twin(config, &vs);
        // Sanity: with α ≠ 0 the cores differ, so the comparison below can fail.
        let xs = Tensor::randn([5, 2, IN], F64);
        let d = tch::no_grad(|| max_abs_diff(&run(&core, &xs).0, &run(&plain, &xs).0));
        assert!(
            d > 1e-6,
            "{}: plasticity had no effect ({d:e})",
            label(config)
        );
        zero(&vs, "alpha");
        assert_same(config, "alpha = 0", &core, &plain, false);
    }
}

#[test]
fn zero_plasticity_rate_gives_the_plain_core() {
    for (i, config) in all_configs()
        .iter()
        .filter(|c| c.kind.is_plastic())
        .enumerate()
    {
        tch::manual_seed(100 + i as i64);
        let (vs, core) = build(config, IN);
        randomize(&vs);
        let (_pvs, plain) = plain_twin(config, &vs);
        let what = match config.modulation {
            Modulation::None => {
                zero(&vs, "eta");
                "eta = 0"
            }
            Modulation::Simple | Modulation::Retroactive => {
                // tanh(0 · h + 0) = 0: the modulator is silenced.
                zero(&vs, "mod_w");
                zero(&vs, "mod_b");
                "modulator weights and bias = 0"
            }
        };
        assert_same(config, what, &core, &plain, true);
    }
}
