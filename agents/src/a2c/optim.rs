//! Adam and RMSprop with their moments held here, in tensors that a checkpoint can save (tch's
//! own optimisers keep theirs out of reach), plus global-norm gradient clipping.
use super::config::{Algorithm, OptimConfig};
use tch::{nn::VarStore, Kind, Tensor};

/// What one optimiser step did to the parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// ‖θ‖ before the step.
    pub param_norm_before: f64,
    /// ‖θ‖ after the step: not finite when a parameter is not.
    pub param_norm: f64,
    /// ‖Δθ‖ of the step.
    pub update_norm: f64,
}

impl StepReport {
    /// ‖Δθ‖ / ‖θ‖: far above 1 when training explodes.
    pub fn update_ratio(&self) -> f64 {
        self.update_norm / self.param_norm_before.max(f64::MIN_POSITIVE)
    }
}

/// The optimiser over every variable of a var store, in name order (so checkpoints and updates
/// do not depend on hash-map order).
#[derive(Debug)]
pub struct Optimizer {
    config: OptimConfig,
    names: Vec<String>,
    params: Vec<Tensor>,
    /// Adam: first moment; unused by RMSprop.
    m: Vec<Tensor>,
    /// Adam: second moment; RMSprop: running mean of squared gradients.
    v: Vec<Tensor>,
    steps: u64,
}

/// Names of the optimiser's tensors in a checkpoint.
const M: &str = "optim/m/";
const V: &str = "optim/v/";

impl Optimizer {
    pub fn new(vs: &VarStore, config: &OptimConfig) -> Self {
        // The variables no gradient reaches (STPN's λ and γ under `core.stp_learned = false`)
        // stay out: no moments for them, and nothing to update.
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, v)| v.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, params): (Vec<_>, Vec<_>) = vars.into_iter().unzip();
        let zeros = || params.iter().map(Tensor::zeros_like).collect::<Vec<_>>();
        Self {
            config: config.clone(),
            m: zeros(),
            v: zeros(),
            names,
            params,
            steps: 0,
        }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// Global L2 norm of all gradients before clipping; scales them down to `max_norm` when
    /// above it. One host synchronisation.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let grads: Vec<Tensor> = self.params.iter().map(Tensor::grad).collect();
        let norms: Vec<Tensor> = grads
            .iter()
            .filter(|g| g.defined())
            .map(|g| g.norm().to_kind(Kind::Double))
            .collect();
        if norms.is_empty() {
            return 0.0;
        }
        let norm = Tensor::stack(&norms, 0).norm().double_value(&[]);
        if norm.is_finite() && norm > max_norm {
            let scale = max_norm / (norm + 1e-6);
            tch::no_grad(|| {
                for mut g in grads.into_iter().filter(Tensor::defined) {
                    let _ = g.g_mul_scalar_(scale);
                }
            });
        }
        norm
    }

    /// One update with learning rate `lr`; what it did to the parameters (one host
    /// synchronisation).
    pub fn step(&mut self, lr: f64) -> StepReport {
        self.steps += 1;
        let c = &self.config;
        let device = self.params.first().map_or(tch::Device::Cpu, Tensor::device);
        let sum_sq = |t: &Tensor| t.to_kind(Kind::Double).square().sum(Kind::Double);
        let mut before_sq = Tensor::zeros([], (Kind::Double, device));
        let mut update_sq = Tensor::zeros([], (Kind::Double, device));
        tch::no_grad(|| {
            for ((p, m), v) in self.params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                before_sq += sum_sq(p);
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let update = match c.algorithm {
                    Algorithm::Adam => {
                        let _ = m.g_mul_scalar_(c.beta1).g_add_(&(&g * (1.0 - c.beta1)));
                        let _ = v
                            .g_mul_scalar_(c.beta2)
                            .addcmul_(&(&g * (1.0 - c.beta2)), &g);
                        let bc1 = 1.0 - c.beta1.powf(self.steps as f64);
                        let bc2 = 1.0 - c.beta2.powf(self.steps as f64);
                        let denom = (v.sqrt() / bc2.sqrt()).g_add_scalar_(c.eps);
                        (&*m * (-lr / bc1)) / denom
                    }
                    Algorithm::Rmsprop => {
                        let _ = v
                            .g_mul_scalar_(c.alpha)
                            .addcmul_(&(&g * (1.0 - c.alpha)), &g);
                        let denom = v.sqrt().g_add_scalar_(c.eps);
                        (&g * -lr) / denom
                    }
                };
                let _ = p.g_add_(&update);
                update_sq += sum_sq(&update);
            }
        });
        let after_sq: Vec<Tensor> = self.params.iter().map(|p| sum_sq(p).view([1])).collect();
        let after_sq = Tensor::cat(&after_sq, 0).sum(Kind::Double);
        let host = Vec::<f64>::try_from(
            Tensor::stack(&[before_sq, after_sq, update_sq], 0).to_device(tch::Device::Cpu),
        )
        .expect("three doubles");
        StepReport {
            param_norm_before: host[0].sqrt(),
            param_norm: host[1].sqrt(),
            update_norm: host[2].sqrt(),
        }
    }

    /// Updates applied so far (Adam's bias correction depends on it).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The moments, named `optim/m/<variable>` and `optim/v/<variable>`, for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let named = |prefix: &str, ts: &[Tensor]| {
            self.names
                .iter()
                .zip(ts)
                .map(|(n, t)| (format!("{prefix}{n}"), t.shallow_clone()))
                .collect::<Vec<_>>()
        };
        let mut out = named(M, &self.m);
        out.extend(named(V, &self.v));
        out
    }

    /// Pairs the moments with those saved by [`Optimizer::state`] in `tensors`; every tensor
    /// must be there with its shape.
    pub(super) fn matched_state(
        &self,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<crate::restore::Matched, String> {
        crate::restore::matched(&self.state(), tensors, "optimiser state")
    }

    /// Sets the number of steps taken (Adam's bias correction), as saved with the moments.
    pub(super) fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device};

    fn one_param(value: f64) -> (VarStore, Tensor) {
        let vs = VarStore::new(Device::Cpu);
        let p = vs
            .root()
            .var_copy("p", &Tensor::from_slice(&[value]).to_kind(Kind::Float));
        (vs, p)
    }

    /// Adam on `f(p) = p²` from p = 1 against PyTorch's formula, written out in scalars.
    #[test]
    fn adam_matches_its_formula() {
        let (vs, p) = one_param(1.0);
        let config = OptimConfig {
            eps: 1e-8,
            ..OptimConfig::default()
        };
        let mut opt = Optimizer::new(&vs, &config);
        let (lr, b1, b2) = (0.1, config.beta1, config.beta2);
        let (mut x, mut m, mut v) = (1.0f64, 0.0, 0.0);
        for t in 1..=3 {
            opt.zero_grad();
            (&p * &p).sum(Kind::Float).backward();
            opt.step(lr);
            let g = 2.0 * x;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let denom = (v / (1.0 - b2.powi(t))).sqrt() + config.eps;
            x -= lr / (1.0 - b1.powi(t)) * m / denom;
            assert!(
                (p.double_value(&[0]) - x).abs() < 1e-5,
                "step {t}: {p} vs {x}"
            );
        }
    }

    #[test]
    fn rmsprop_matches_its_formula() {
        let (vs, p) = one_param(1.0);
        let config = OptimConfig {
            algorithm: Algorithm::Rmsprop,
            eps: 1e-8,
            ..OptimConfig::default()
        };
        let mut opt = Optimizer::new(&vs, &config);
        (&p * &p).sum(Kind::Float).backward();
        opt.step(0.01);
        // g = 2, v = 0.01 · 4, step = 0.01 · 2 / 0.2.
        assert!((p.double_value(&[0]) - 0.9).abs() < 1e-5, "{p}");
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let vs = VarStore::new(Device::Cpu);
        let a = vs.root().var_copy("a", &Tensor::from_slice(&[3.0f32]));
        let b = vs.root().var_copy("b", &Tensor::from_slice(&[4.0f32]));
        let mut opt = Optimizer::new(&vs, &OptimConfig::default());
        ((&a * &a + &b * &b) / 2.0).sum(Kind::Float).backward();
        let norm = opt.clip_grad_norm(1.0);
        assert!((norm - 5.0).abs() < 1e-6);
        let clipped = (a.grad().square() + b.grad().square())
            .sqrt()
            .double_value(&[0]);
        assert!((clipped - 1.0).abs() < 1e-5, "{clipped}");
    }

    #[test]
    fn state_round_trips_and_rejects_a_mismatch() {
        let (vs, p) = one_param(1.0);
        let mut opt = Optimizer::new(&vs, &OptimConfig::default());
        (&p * &p).sum(Kind::Float).backward();
        opt.step(0.1);
        let saved: std::collections::HashMap<_, _> = opt.state().into_iter().collect();
        let (vs2, _) = one_param(0.0);
        let mut fresh = Optimizer::new(&vs2, &OptimConfig::default());
        fresh.matched_state(&saved).unwrap().copy();
        fresh.set_steps(opt.steps());
        assert_eq!(
            fresh.state()[0].1.double_value(&[0]),
            opt.state()[0].1.double_value(&[0])
        );
        let vs3 = VarStore::new(Device::Cpu);
        let _ = vs3.root().var("p", &[2], nn::Init::Const(0.0));
        let err = Optimizer::new(&vs3, &OptimConfig::default())
            .matched_state(&saved)
            .err()
            .unwrap();
        assert!(err.contains("optim/m/p") && err.contains("shape"), "{err}");
    }
}
