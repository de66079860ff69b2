//! The plastic part of a recurrent weight matrix: `α ⊙ Hebb`'s learned parameters and the
//! autograd step that advances its traces. Shared by the plastic RNN and the plastic LSTM.
//!
//! The formulas themselves live in their homes (the rules' factors in `rules.rs`, the
//! modulator in `modulator.rs`, the trace update in `trace_update/`), which the hand-written
//! engines of `bptt/` call too: on the CPU, training a plastic core normally goes through
//! those (same values; one trace pass forward and two backward per step), and on a GPU with
//! `bptt = "fused"` (same values, less memory).
use super::config::{AlphaShape, CoreConfig, EtaShape, Modulation, Rule};
use super::init;
pub use super::modulator::Modulator;
use super::rules::eligibility_factors;
use super::state::{foreign_state, Traces};
use super::trace_update;
use tch::{nn, Device, Kind, Tensor};

/// Learned plasticity parameters of one plastic weight matrix (post × pre, `H × H`).
#[derive(Debug)]
pub struct Plasticity {
    pub rule: Rule,
    pub clip: f64,
    /// Traces per synapse (`core.timescales`; 1 by default).
    timescales: usize,
    /// `α`: `[H × H]` (per connection) or `[H]` (per post-synaptic neuron), with a leading
    /// axis of one per trace where there are several timescales.
    pub alpha: Tensor,
    pub neuromodulation: Neuromodulation,
}

/// What sets the plasticity rate (config key `modulation`), each variant with exactly the
/// parameters it learns: a learned rate `R` and the modulator `M`, as tensors (the defaults)
/// or in the form an engine reads them (`map`): one type for the three choices, whatever
/// holds them.
#[derive(Debug)]
pub enum Neuromodulation<R = Tensor, M = Modulator> {
    /// A learned rate `η`, `[1]` or `[H]` (`modulation = "none"`, differentiable plasticity).
    None { eta: R },
    /// The modulator's output `M_t` is the rate (`"simple"`).
    Simple { modulator: M },
    /// `M_t` writes the eligibility trace `E` into the Hebbian trace, and `E` follows the
    /// co-activity at the learned rate `η_E`, `[1]` or `[H]` (`"retroactive"`).
    Retroactive { modulator: M, eta_e: R },
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
                eta: init::var(p, "eta", &initial_eta(rate_dims, &cfg.timescales)),
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
}

/// `η` at the start: 0.01 (differentiable plasticity's), or `1/τ_k` for each of several
/// timescales, stacked along a leading axis (one timescale keeps η's own shape).
fn initial_eta(rate_dims: &[i64], timescales: &[f64]) -> Tensor {
    let constant = |v: f64| init::uniform(rate_dims, v, v);
    match timescales {
        [] => constant(0.01),
        [tau] => constant(1.0 / tau),
        many => {
            let rates: Vec<Tensor> = many.iter().map(|tau| constant(1.0 / tau)).collect();
            Tensor::stack(&rates, 0)
        }
    }
}

/// Trace `k`'s slice of a per-trace parameter (η or α) of a core with `count` traces: the
/// parameter itself for one trace, else its `k`-th entry along the leading axis.
fn per_trace(param: &Tensor, k: usize, count: usize) -> Tensor {
    if count == 1 {
        param.shallow_clone()
    } else {
        param.get(k as i64)
    }
}

impl<R, M> Neuromodulation<R, M> {
    /// The same choice with each rate turned by `rate` and the modulator by `modulator`.
    pub fn map<R2, M2>(
        &self,
        rate: impl Fn(&R) -> R2,
        modulator: impl Fn(&M) -> M2,
    ) -> Neuromodulation<R2, M2> {
        match self {
            Self::None { eta } => Neuromodulation::None { eta: rate(eta) },
            Self::Simple { modulator: m } => Neuromodulation::Simple {
                modulator: modulator(m),
            },
            Self::Retroactive {
                modulator: m,
                eta_e,
            } => Neuromodulation::Retroactive {
                modulator: modulator(m),
                eta_e: rate(eta_e),
            },
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
    pub fn eta(&self) -> Option<&R> {
        match self {
            Self::None { eta } => Some(eta),
            Self::Simple { .. } | Self::Retroactive { .. } => None,
        }
    }

    /// `η_E` of the eligibility trace (retroactive modulation).
    pub fn eta_e(&self) -> Option<&R> {
        match self {
            Self::Retroactive { eta_e, .. } => Some(eta_e),
            Self::None { .. } | Self::Simple { .. } => None,
        }
    }

    pub fn modulator(&self) -> Option<&M> {
        match self {
            Self::Simple { modulator } | Self::Retroactive { modulator, .. } => Some(modulator),
            Self::None { .. } => None,
        }
    }
}

impl Plasticity {
    pub fn new(p: &nn::Path, h: i64, cfg: &CoreConfig) -> Self {
        let mut alpha_dims = match cfg.alpha {
            AlphaShape::PerConnection => vec![h, h],
            AlphaShape::PerNeuron => vec![h],
        };
        // One α per trace where there are several (one trace: the shape as before).
        let count = cfg.timescale_count();
        if count > 1 {
            alpha_dims.insert(0, count as i64);
        }
        let alpha = init::var(p, "alpha", &init::backpropamine(&alpha_dims));
        Self {
            rule: cfg.rule,
            clip: cfg.clip,
            timescales: count,
            alpha,
            neuromodulation: Neuromodulation::new(p, h, cfg),
        }
    }

    pub fn modulation(&self) -> Modulation {
        self.neuromodulation.modulation()
    }

    /// Traces per synapse (`core.timescales`; 1 by default).
    pub(crate) fn timescale_count(&self) -> usize {
        self.timescales
    }

    /// Zero traces for `batch` fresh episodes, `[B × H × H]` each.
    pub(crate) fn initial_traces(&self, batch: i64, h: i64, opts: (Kind, Device)) -> Traces {
        let zeros = || Tensor::zeros([batch, h, h], opts);
        match self.neuromodulation {
            Neuromodulation::None { .. } if self.timescales > 1 => {
                Traces::Timescales((0..self.timescales).map(|_| zeros()).collect())
            }
            Neuromodulation::None { .. } | Neuromodulation::Simple { .. } => Traces::Hebb(zeros()),
            Neuromodulation::Retroactive { .. } => Traces::Retroactive {
                hebb: zeros(),
                elig: zeros(),
            },
        }
    }

    /// The eligibility trace of `traces` (`None` without retroactive modulation). Panics if
    /// the traces are another core's (an eligibility trace without retroactive modulation,
    /// or none with it).
    pub(crate) fn eligibility<'t>(&self, traces: &'t Traces) -> Option<&'t Tensor> {
        match (&self.neuromodulation, traces) {
            (Neuromodulation::None { .. } | Neuromodulation::Simple { .. }, Traces::Hebb(_))
            | (Neuromodulation::None { .. }, Traces::Timescales(_)) => None,
            (Neuromodulation::Retroactive { .. }, Traces::Retroactive { elig, .. }) => Some(elig),
            _ => foreign_state(),
        }
    }

    /// Clip bounds of the Hebbian trace: retroactive modulation always clips; of the rules,
    /// those that [`Rule::clipped`] says.
    pub(crate) fn bounds(&self) -> (f64, f64) {
        let clipped = match self.neuromodulation {
            Neuromodulation::Retroactive { .. } => true,
            Neuromodulation::None { .. } | Neuromodulation::Simple { .. } => self.rule.clipped(),
        };
        if clipped {
            (-self.clip, self.clip)
        } else {
            (f64::NEG_INFINITY, f64::INFINITY)
        }
    }

    /// `fixed + Σ_k (α_k ⊙ Hebb_k) pre`, `[B × H]`, over the traces of every timescale (one
    /// but for multi-timescale synapses), added in order.
    pub fn add_recurrent(&self, fixed: &Tensor, traces: &Traces, pre: &Tensor) -> Tensor {
        let hebbs = traces.hebbs();
        hebbs
            .iter()
            .enumerate()
            .fold(fixed.shallow_clone(), |sum, (k, hebb)| {
                let alpha = per_trace(&self.alpha, k, hebbs.len());
                trace_update::add_plastic_input(&sum, &alpha, hebb, pre)
            })
    }

    /// Advances `traces`: `post` is the plastic layer's new activation (`h_t`, or `g_t` in
    /// the LSTM), `pre` the previous hidden state, `h` the new hidden state (the modulator's
    /// input). Returns the new traces and the modulator's output that wrote them. Panics if
    /// the traces are another core's ([`Plasticity::eligibility`]).
    pub(crate) fn update(
        &self,
        traces: &Traces,
        post: &Tensor,
        pre: &Tensor,
        h: &Tensor,
    ) -> (Traces, Option<Tensor>) {
        let hebb = traces.hebb();
        match (&self.neuromodulation, self.eligibility(traces)) {
            // Each timescale's trace follows the rule at its own rate.
            (Neuromodulation::None { eta }, _) => {
                let hebbs = traces.hebbs();
                let next = hebbs.iter().enumerate().map(|(k, hebb)| {
                    self.apply_rule(hebb, &per_trace(eta, k, hebbs.len()), post, pre)
                });
                (Traces::from_timescales(next.collect()), None)
            }
            (Neuromodulation::Simple { modulator }, _) => {
                let m = modulator.forward(h);
                (Traces::Hebb(self.apply_rule(hebb, &m, post, pre)), Some(m))
            }
            (Neuromodulation::Retroactive { modulator, eta_e }, Some(elig)) => {
                let m = modulator.forward(h);
                let hebb = trace_update::clipped_add(hebb, &m.unsqueeze(-1), elig, self.clip);
                let (keep, s) = eligibility_factors(eta_e, post);
                let elig = trace_update::advance(elig, Some(&keep), &s, pre, None);
                (Traces::Retroactive { hebb, elig }, Some(m))
            }
            (Neuromodulation::Retroactive { .. }, None) => foreign_state(),
        }
    }

    /// One step of the rule with plasticity rate `rate` (`[1]`, `[H]`, `[B × 1]` or `[B × H]`).
    fn apply_rule(&self, trace: &Tensor, rate: &Tensor, post: &Tensor, pre: &Tensor) -> Tensor {
        let (keep, s) = self.rule.factors(rate, post);
        let clip = self.rule.clipped().then_some(self.clip);
        trace_update::advance(trace, keep.as_ref(), &s, pre, clip)
    }
}
