//! Shared helpers of the core tests: f64 cores on the CPU, named parameters, config matrix;
//! [`engines`]: the trainer's engines compared.
#![allow(dead_code)]
use plastic_agents::cores::{
    AlphaShape, Core, CoreConfig, CoreKind, EtaShape, Modulation, ModulatorShape, Rule, State,
    StpShape,
};
use plastic_agents::parameters::named_variables;
use tch::{nn, Device, Kind, Tensor};

pub mod engines;

pub const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

/// An f64 var store on the CPU (new variables are created in f64).
pub fn vs64() -> nn::VarStore {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    vs
}

pub fn build(config: &CoreConfig, input_dim: i64) -> (nn::VarStore, Core) {
    let vs = vs64();
    let core = Core::new(&vs.root(), input_dim, config).expect("valid test config");
    (vs, core)
}

pub fn param(vs: &nn::VarStore, name: &str) -> Tensor {
    vs.variables()
        .remove(name)
        .unwrap_or_else(|| panic!("no variable {name}"))
}

/// Overwrites a variable in place (values in row-major order).
pub fn set(vs: &nn::VarStore, name: &str, values: &[f64]) {
    let mut p = param(vs, name);
    let src = Tensor::from_slice(values).view(p.size().as_slice());
    tch::no_grad(|| p.copy_(&src));
}

/// Moves every parameter to a non-trivial point: uniform in ±0.8, rates in [0.1, 0.6), so
/// plasticity visibly matters over a few steps.
pub fn randomize(vs: &nn::VarStore) {
    for (name, mut p) in named_variables(vs) {
        tch::no_grad(|| {
            if name.ends_with("eta") || name.ends_with("eta_e") {
                let _ = p.uniform_(0.1, 0.6);
            } else {
                let _ = p.uniform_(-0.8, 0.8);
            }
        });
    }
}

pub fn plastic(
    kind: CoreKind,
    rule: Rule,
    eta: EtaShape,
    alpha: AlphaShape,
    modulation: Modulation,
    modulator: ModulatorShape,
) -> CoreConfig {
    CoreConfig {
        kind,
        hidden: 4,
        rule,
        eta,
        alpha,
        modulation,
        modulator,
        ..CoreConfig::default()
    }
}

pub fn label(c: &CoreConfig) -> String {
    if c.kind.is_stpn() {
        return format!("stpn stp={} clip={}", c.stp.name(), c.clip);
    }
    if !c.kind.is_plastic() {
        return c.kind.name().to_string();
    }
    format!(
        "{} rule={} eta={} alpha={} modulation={} modulator={} clip={} timescales={:?}",
        c.kind.name(),
        c.rule.name(),
        c.eta.name(),
        c.alpha.name(),
        c.modulation.name(),
        c.modulator.name(),
        c.clip,
        c.timescales
    )
}

/// Every core the options make, H = 4: each plain kind, and each plastic kind with every
/// combination of rule, η and α shape, neuromodulation and modulator shape that
/// [`CoreConfig::validate`] accepts. Built from the enums' `ALL`, so a new option value is
/// covered by every property test without an edit here.
pub fn all_configs() -> Vec<CoreConfig> {
    let mut v = Vec::new();
    for &kind in CoreKind::ALL {
        if !kind.is_plastic() {
            // STPN in each shape of λ and γ; the others have one.
            let stp_shapes = if kind.is_stpn() {
                StpShape::ALL
            } else {
                &[StpShape::PerSynapse]
            };
            for &stp in stp_shapes {
                v.push(CoreConfig {
                    kind,
                    hidden: 4,
                    modulation: Modulation::None,
                    stp,
                    ..CoreConfig::default()
                });
            }
            continue;
        }
        for &rule in Rule::ALL {
            for &modulation in Modulation::ALL {
                for &eta in EtaShape::ALL {
                    for &alpha in AlphaShape::ALL {
                        for &modulator in ModulatorShape::ALL {
                            let c = plastic(kind, rule, eta, alpha, modulation, modulator);
                            if c.validate().is_ok() {
                                v.push(c);
                            }
                        }
                    }
                }
            }
        }
    }
    v
}

/// Runs `xs` `[T × B × in]` from the initial state; returns outputs `[T × B × H]` and last state.
pub fn run(core: &Core, xs: &Tensor) -> (Tensor, State) {
    core.unroll(xs, &core.initial_state(xs.size()[1]))
}

/// `Σ outputs ⊙ weights`, a scalar loss touching every output.
pub fn loss(core: &Core, xs: &Tensor, weights: &Tensor) -> Tensor {
    (run(core, xs).0 * weights).sum(Kind::Double)
}

/// Gradients of `loss` w.r.t. `inputs`; unused inputs get zeros.
pub fn grads(loss: &Tensor, inputs: &[Tensor]) -> Vec<Tensor> {
    Tensor::run_backward(&[loss], inputs, false, false)
        .into_iter()
        .zip(inputs)
        .map(|(g, x)| if g.defined() { g } else { x.zeros_like() })
        .collect()
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

pub fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).expect("f64 values")
}
