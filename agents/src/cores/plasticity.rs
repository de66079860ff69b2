//! The plastic part of a recurrent weight matrix: `α ⊙ Hebb`, its trace rules and the
//! neuromodulator. Shared by the plastic RNN and the plastic LSTM.
//!
//! These are the autograd formulas: they run on every device and define the cores. On the
//! CPU, training a plastic core normally goes through the hand-written passes of `fused`
//! instead (same values; one trace pass forward and two backward per step), and on a GPU
//! with `bptt = "fused"` (same values, less memory).
//!
//! Cost per step is dominated by passes over the `[B × H × H]` traces, so each update is one
//! broadcast `addcmul` (decay factor folded into the base, rate folded into the post-synaptic
//! vector) plus, for clipped rules, one `hardtanh`. Backpropamine's core (per-connection α,
//! `hebb` rule, c = 1) runs 5 trace-sized kernels forward (`Hebb ⊙ α`, `⊙ h`, row sum,
//! `addcmul`, `hardtanh`) and about 11 backward (`hardtanh` backward, 4 for the `addcmul`
//! gradients, 5 for the plastic input, 1 to add the two gradients of `Hebb_{t−1}`); autograd
//! keeps 3 trace-sized tensors per step (`Hebb_{t−1}`, `α ⊙ Hebb_{t−1}`, the unclipped trace).
//! With per-neuron α the plastic input takes 2 kernels instead of 3 and keeps one tensor fewer.
use super::config::{AlphaShape, CoreConfig, EtaShape, Modulation, ModulatorShape, Rule};
use super::init;
use tch::{nn, Tensor};

/// `M_t = tanh(w_M · h_t + b_M)`, optionally fanned out per neuron: `M_t[i] = f_i · m_t`.
#[derive(Debug)]
pub struct Modulator {
    /// `w_M`, `[1 × H]`.
    pub w: Tensor,
    /// `b_M`, `[1]`.
    pub b: Tensor,
    /// `f`, `[H]` (fan-out modulator only).
    pub fan_out: Option<Tensor>,
}

impl Modulator {
    fn new(p: &nn::Path, h: i64, shape: ModulatorShape) -> Self {
        Self {
            w: init::var(p, "mod_w", &init::linear_default(&[1, h], h)),
            b: init::var(p, "mod_b", &init::linear_default(&[1], h)),
            // nn.Linear(1, H)'s default, as Backpropamine's fan-out layer.
            fan_out: (shape == ModulatorShape::FanOut)
                .then(|| init::var(p, "fan_out", &init::linear_default(&[h], 1))),
        }
    }

    /// `[B × 1]` (scalar) or `[B × H]` (fan-out).
    pub fn forward(&self, h: &Tensor) -> Tensor {
        self.apply_fan_out(&self.tanh_output(h))
    }

    /// `M_t` from `m_t` ([`Modulator::tanh_output`]): `m_t` itself, or `f · m_t` (fan-out).
    pub(crate) fn apply_fan_out(&self, m: &Tensor) -> Tensor {
        match &self.fan_out {
            Some(f) => m * f,
            None => m.shallow_clone(),
        }
    }

    /// `m_t = tanh(w_M · h_t + b_M)`, `[B × 1]`, before any fan-out.
    pub(crate) fn tanh_output(&self, h: &Tensor) -> Tensor {
        h.linear(&self.w, Some(&self.b)).tanh()
    }
}

/// Learned plasticity parameters of one plastic weight matrix (post × pre, `H × H`).
#[derive(Debug)]
pub struct Plasticity {
    pub rule: Rule,
    pub clip: f64,
    pub modulation: Modulation,
    /// `α`: `[H × H]` (per connection) or `[H]` (per post-synaptic neuron).
    pub alpha: Tensor,
    /// `η`, `[1]` or `[H]`: only without neuromodulation (the modulator replaces it).
    pub eta: Option<Tensor>,
    /// `η_E` of the eligibility trace, `[1]` or `[H]` (retroactive modulation).
    pub eta_e: Option<Tensor>,
    pub modulator: Option<Modulator>,
}

/// New traces after one step, and the modulator output that produced them.
pub struct Update {
    pub hebb: Tensor,
    pub elig: Option<Tensor>,
    pub modulator: Option<Tensor>,
}

impl Plasticity {
    pub fn new(p: &nn::Path, h: i64, cfg: &CoreConfig) -> Self {
        let alpha_dims: &[i64] = match cfg.alpha {
            AlphaShape::PerConnection => &[h, h],
            AlphaShape::PerNeuron => &[h],
        };
        let rate_dims: &[i64] = match cfg.eta {
            EtaShape::Scalar => &[1],
            EtaShape::PerNeuron => &[h],
        };
        let constant = |v: f64| init::uniform(rate_dims, v, v);
        Self {
            rule: cfg.rule,
            clip: cfg.clip,
            modulation: cfg.modulation,
            alpha: init::var(p, "alpha", &init::backpropamine(alpha_dims)),
            eta: (cfg.modulation == Modulation::None).then(|| init::var(p, "eta", &constant(0.01))),
            // Backpropamine's retroactive network starts with η_E = 0.7.
            eta_e: (cfg.modulation == Modulation::Retroactive)
                .then(|| init::var(p, "eta_e", &constant(0.7))),
            modulator: (cfg.modulation != Modulation::None)
                .then(|| Modulator::new(p, h, cfg.modulator)),
        }
    }

    /// `fixed + (α ⊙ Hebb) pre`, `[B × H]`.
    ///
    /// Written as broadcast products and a row sum rather than a batched matrix-vector
    /// `bmm`: libtorch's CPU `bmm` with a single column runs several times slower than the
    /// memory-bound element-wise passes, forward and backward.
    pub fn add_recurrent(&self, fixed: &Tensor, hebb: &Tensor, pre: &Tensor) -> Tensor {
        let pre = pre.unsqueeze(1);
        if self.alpha.dim() == 2 {
            fixed + (hebb * &self.alpha * pre).sum_dim_intlist(2, false, None::<tch::Kind>)
        } else {
            fixed.addcmul(
                &self.alpha,
                &(hebb * pre).sum_dim_intlist(2, false, None::<tch::Kind>),
            )
        }
    }

    /// Advances the traces: `post` is the plastic layer's new activation (`h_t`, or `g_t`
    /// in the LSTM), `pre` the previous hidden state, `h` the new hidden state (the
    /// modulator's input).
    pub fn update(
        &self,
        hebb: &Tensor,
        elig: Option<&Tensor>,
        post: &Tensor,
        pre: &Tensor,
        h: &Tensor,
    ) -> Update {
        let m = self.modulator.as_ref().map(|m| m.forward(h));
        let (hebb, elig) = match (self.modulation, &m, elig) {
            (Modulation::None | Modulation::Simple, _, _) => {
                let rate = self.rate(m.as_ref());
                (self.apply_rule(self.rule, hebb, rate, post, pre), None)
            }
            (Modulation::Retroactive, Some(m), Some(e)) => {
                let eta_e = self
                    .eta_e
                    .as_ref()
                    .expect("η_E exists with retroactive modulation");
                let hebb = self.clipped_add(hebb, &m.unsqueeze(-1), e);
                (
                    hebb,
                    Some(self.apply_rule(Rule::Decay, e, eta_e, post, pre)),
                )
            }
            _ => unreachable!("the modulator and eligibility trace exist with modulation"),
        };
        Update {
            hebb,
            elig,
            modulator: m,
        }
    }

    /// The rate of the trace rule without an eligibility trace: the modulator's output `m`
    /// (simple neuromodulation) or the learned η.
    pub(crate) fn rate<'a>(&'a self, m: Option<&'a Tensor>) -> &'a Tensor {
        m.or(self.eta.as_ref())
            .expect("η exists without neuromodulation, the modulator with it")
    }

    /// One step of `rule` with plasticity rate `rate` (`[1]`, `[H]`, `[B × 1]` or `[B × H]`).
    fn apply_rule(
        &self,
        rule: Rule,
        trace: &Tensor,
        rate: &Tensor,
        post: &Tensor,
        pre: &Tensor,
    ) -> Tensor {
        let (keep, s) = rule_factors(rule, rate, post);
        let (s, pre) = (s.unsqueeze(2), pre.unsqueeze(1));
        match keep {
            None => self.clipped_add(trace, &s, &pre),
            Some(keep) => (trace * keep.unsqueeze(-1)).addcmul(&s, &pre),
        }
    }

    /// `clamp(trace + a ⊙ b, −c, c)`, `a ⊙ b` broadcast to the trace's shape.
    ///
    /// The clip is a `hardtanh` (bounds ±1), whose backward is one fused pass where the CPU
    /// backward of `clamp` takes several (measured ≈ 20× slower); other bounds are mapped onto
    /// ±1 by scaling (two extra passes, exact when c is a power of two). Out of place on
    /// purpose: autograd saves the input either way, and `hardtanh_` would first clone it.
    fn clipped_add(&self, trace: &Tensor, a: &Tensor, b: &Tensor) -> Tensor {
        if self.clip == 1.0 {
            trace.addcmul(a, b).hardtanh()
        } else {
            let s = 1.0 / self.clip;
            (trace * s).addcmul(&(a * s), b).hardtanh() * self.clip
        }
    }
}

/// The rules differ only in how much of the old trace each post-synaptic row keeps:
/// `next = keep ⊙ trace + s ⊗ pre`, with `s = rate ⊙ post` and `keep` = 1 for `hebb` (`None`),
/// `1 − rate` for `decay`, `1 − rate ⊙ post²` for `oja`. Only `hebb` is clipped.
pub(crate) fn rule_factors(rule: Rule, rate: &Tensor, post: &Tensor) -> (Option<Tensor>, Tensor) {
    let keep = match rule {
        Rule::Hebb => None,
        Rule::Decay => Some(-rate + 1.0),
        Rule::Oja => Some(-(post * rate * post) + 1.0),
    };
    (keep, post * rate)
}
