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
use super::config::{AlphaShape, CoreConfig, EtaShape, Modulation, Rule};
use super::init;
pub use super::modulator::Modulator;
use super::rules::eligibility_factors;
use super::state::{foreign_state, Traces};
use tch::{nn, Device, Kind, Tensor};

/// Learned plasticity parameters of one plastic weight matrix (post × pre, `H × H`).
#[derive(Debug)]
pub struct Plasticity {
    pub rule: Rule,
    pub clip: f64,
    /// `α`: `[H × H]` (per connection) or `[H]` (per post-synaptic neuron).
    pub alpha: Tensor,
    pub neuromodulation: Neuromodulation,
}

/// What sets the plasticity rate (config key `modulation`), each variant with exactly the
/// parameters it learns.
#[derive(Debug)]
pub enum Neuromodulation {
    /// A learned rate `η`, `[1]` or `[H]` (`modulation = "none"`, differentiable plasticity).
    None { eta: Tensor },
    /// The modulator's output `M_t` is the rate (`"simple"`).
    Simple { modulator: Modulator },
    /// `M_t` writes the eligibility trace `E` into the Hebbian trace, and `E` follows the
    /// co-activity at the learned rate `η_E`, `[1]` or `[H]` (`"retroactive"`).
    Retroactive { modulator: Modulator, eta_e: Tensor },
}

impl Neuromodulation {
    /// Variables in the order their initial values are drawn: `eta` or `eta_e`, then the
    /// modulator's.
    fn new(p: &nn::Path, h: i64, cfg: &CoreConfig) -> Self {
        let rate_dims: &[i64] = match cfg.eta {
            EtaShape::Scalar => &[1],
            EtaShape::PerNeuron => &[h],
        };
        let constant = |v: f64| init::uniform(rate_dims, v, v);
        match cfg.modulation {
            Modulation::None => Self::None {
                eta: init::var(p, "eta", &constant(0.01)),
            },
            Modulation::Simple => Self::Simple {
                modulator: Modulator::new(p, h, cfg.modulator),
            },
            Modulation::Retroactive => {
                // Backpropamine's retroactive network starts with η_E = 0.7.
                let eta_e = init::var(p, "eta_e", &constant(0.7));
                Self::Retroactive {
                    modulator: Modulator::new(p, h, cfg.modulator),
                    eta_e,
                }
            }
        }
    }

    pub fn modulation(&self) -> Modulation {
        match self {
            Self::None { .. } => Modulation::None,
            Self::Simple { .. } => Modulation::Simple,
            Self::Retroactive { .. } => Modulation::Retroactive,
        }
    }

    /// `η` (no neuromodulation).
    pub fn eta(&self) -> Option<&Tensor> {
        match self {
            Self::None { eta } => Some(eta),
            Self::Simple { .. } | Self::Retroactive { .. } => None,
        }
    }

    /// `η_E` of the eligibility trace (retroactive modulation).
    pub fn eta_e(&self) -> Option<&Tensor> {
        match self {
            Self::Retroactive { eta_e, .. } => Some(eta_e),
            Self::None { .. } | Self::Simple { .. } => None,
        }
    }

    pub fn modulator(&self) -> Option<&Modulator> {
        match self {
            Self::Simple { modulator } | Self::Retroactive { modulator, .. } => Some(modulator),
            Self::None { .. } => None,
        }
    }
}

/// The rate of a rule that writes the Hebbian trace directly (no eligibility trace).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rate<'a> {
    /// The learned `η`.
    Eta(&'a Tensor),
    /// The modulator's output `M_t`.
    Modulator(&'a Modulator),
}

/// A state's traces (borrowed for `'t`) with the parameters that update them (for `'p`).
pub(crate) enum Paired<'p, 't> {
    /// The rule writes `hebb` at `rate`.
    Direct { rate: Rate<'p>, hebb: &'t Tensor },
    /// The modulator writes `elig` into `hebb`; `elig` follows at rate `eta_e`.
    Retroactive {
        modulator: &'p Modulator,
        eta_e: &'p Tensor,
        hebb: &'t Tensor,
        elig: &'t Tensor,
    },
}

impl Paired<'_, '_> {
    pub fn hebb(&self) -> &Tensor {
        match self {
            Self::Direct { hebb, .. } | Self::Retroactive { hebb, .. } => hebb,
        }
    }
}

impl Plasticity {
    pub fn new(p: &nn::Path, h: i64, cfg: &CoreConfig) -> Self {
        let alpha_dims: &[i64] = match cfg.alpha {
            AlphaShape::PerConnection => &[h, h],
            AlphaShape::PerNeuron => &[h],
        };
        let alpha = init::var(p, "alpha", &init::backpropamine(alpha_dims));
        Self {
            rule: cfg.rule,
            clip: cfg.clip,
            alpha,
            neuromodulation: Neuromodulation::new(p, h, cfg),
        }
    }

    pub fn modulation(&self) -> Modulation {
        self.neuromodulation.modulation()
    }

    /// Zero traces for `batch` fresh episodes, `[B × H × H]` each.
    pub(crate) fn initial_traces(&self, batch: i64, h: i64, opts: (Kind, Device)) -> Traces {
        let zeros = || Tensor::zeros([batch, h, h], opts);
        match self.neuromodulation {
            Neuromodulation::None { .. } | Neuromodulation::Simple { .. } => Traces::Hebb(zeros()),
            Neuromodulation::Retroactive { .. } => Traces::Retroactive {
                hebb: zeros(),
                elig: zeros(),
            },
        }
    }

    /// `traces` with the parameters that update them. Panics if the traces are another
    /// core's (an eligibility trace without retroactive modulation, or none with it).
    pub(crate) fn pair<'p, 't>(&'p self, traces: &'t Traces) -> Paired<'p, 't> {
        match (&self.neuromodulation, traces) {
            (Neuromodulation::None { eta }, Traces::Hebb(hebb)) => Paired::Direct {
                rate: Rate::Eta(eta),
                hebb,
            },
            (Neuromodulation::Simple { modulator }, Traces::Hebb(hebb)) => Paired::Direct {
                rate: Rate::Modulator(modulator),
                hebb,
            },
            (
                Neuromodulation::Retroactive { modulator, eta_e },
                Traces::Retroactive { hebb, elig },
            ) => Paired::Retroactive {
                modulator,
                eta_e,
                hebb,
                elig,
            },
            _ => foreign_state(),
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

    /// Advances the traces of `traces` ([`Plasticity::pair`]): `post` is the plastic layer's
    /// new activation (`h_t`, or `g_t` in the LSTM), `pre` the previous hidden state, `h` the
    /// new hidden state (the modulator's input). Returns the new traces and the modulator's
    /// output that wrote them.
    pub(crate) fn update(
        &self,
        traces: &Paired<'_, '_>,
        post: &Tensor,
        pre: &Tensor,
        h: &Tensor,
    ) -> (Traces, Option<Tensor>) {
        match *traces {
            Paired::Direct {
                rate: Rate::Eta(eta),
                hebb,
            } => (Traces::Hebb(self.apply_rule(hebb, eta, post, pre)), None),
            Paired::Direct {
                rate: Rate::Modulator(modulator),
                hebb,
            } => {
                let m = modulator.forward(h);
                (Traces::Hebb(self.apply_rule(hebb, &m, post, pre)), Some(m))
            }
            Paired::Retroactive {
                modulator,
                eta_e,
                hebb,
                elig,
            } => {
                let m = modulator.forward(h);
                let hebb = self.clipped_add(hebb, &m.unsqueeze(-1), elig);
                let (keep, s) = eligibility_factors(eta_e, post);
                let elig = self.advance(elig, Some(&keep), &s, pre, false);
                (Traces::Retroactive { hebb, elig }, Some(m))
            }
        }
    }

    /// One step of the rule with plasticity rate `rate` (`[1]`, `[H]`, `[B × 1]` or `[B × H]`).
    fn apply_rule(&self, trace: &Tensor, rate: &Tensor, post: &Tensor, pre: &Tensor) -> Tensor {
        let (keep, s) = self.rule.factors(rate, post);
        self.advance(trace, keep.as_ref(), &s, pre, self.rule.clipped())
    }

    /// `keep ⊙ trace + s ⊗ pre` (`keep` = 1 when `None`), clipped at ±c if `clipped`.
    fn advance(
        &self,
        trace: &Tensor,
        keep: Option<&Tensor>,
        s: &Tensor,
        pre: &Tensor,
        clipped: bool,
    ) -> Tensor {
        let (s, pre) = (s.unsqueeze(2), pre.unsqueeze(1));
        let kept = keep.map(|keep| trace * keep.unsqueeze(-1));
        let kept = kept.as_ref().unwrap_or(trace);
        if clipped {
            self.clipped_add(kept, &s, &pre)
        } else {
            kept.addcmul(&s, &pre)
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
