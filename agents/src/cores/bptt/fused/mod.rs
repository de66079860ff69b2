//! Backpropagation through time for a plastic core (RNN or LSTM), written by hand around the
//! traces.
//!
//! On the CPU each step of the plastic RNN or LSTM, forward and back, runs in loops on the
//! host ([`super::host`]); the rest of this file's per-step code serves CUDA.
//!
//! The forward pass runs without autograd and keeps, per step, only what the backward pass
//! cannot rebuild cheaply: the trace `Hebb_t` (`[B × H × H]`; under retroactive modulation
//! also the eligibility trace `E_t`) and a few `[B × H]` vectors (the input, `h_{t−1}`, the
//! plastic input, `h_t`; for the LSTM its gates and cell too). Going backwards, everything
//! that touches the traces goes through the passes of `cores/trace_update/` (hand-written
//! loops on the CPU, libtorch operations on other devices), and the per-neuron part of each
//! step (the cell of [`super::cell`], rule factors, modulator) is differentiated by
//! hand. Gradients with respect to the parameters are sums over steps, so they come from one
//! autograd call over all steps at the end. Memory is one trace per step (B·H²·T in all)
//! instead of autograd's three; under retroactive modulation two (2·B·H²·T), less than half
//! of what autograd keeps.
//!
//! Covers plastic RNNs and LSTMs with any rule, α and η shape and neuromodulation (any
//! modulator shape), and several timescales, whose traces it holds stacked as one
//! ([`super::stacked`]): [`super::Engine::fused_unsupported`].
mod backward;
pub(super) mod kept;

use super::cell::{self, CellActs, LstmActs};
use super::host::{HostStep, StepInput};
use super::stacked::Stacked;
use crate::cores::plasticity::Neuromodulation;
use crate::cores::rules::eligibility_factors;
use crate::cores::state::foreign_state;
use crate::cores::trace_update::rows::alpha_groups as host_alpha_groups;
use crate::cores::trace_update::{
    plastic_input, sum_alpha_groups, Factors, RetroFactors, TraceStep,
};
use crate::cores::{AlphaShape, Core, Engine, Plasticity, State, Traces};
use backward::Back;
use kept::Kept;
use tch::Tensor;

/// What one forward step recorded.
struct Record {
    x: Tensor,
    /// `h_{t−1}` after the previous step's resets.
    pre: Tensor,
    /// The plastic input before α per neuron: `Σ_j α[i,j] Hebb_{t−1}[i,j] h_{t−1}[j]` (α per
    /// connection) or `Σ_j Hebb_{t−1}[i,j] h_{t−1}[j]` (α per neuron).
    raw: Tensor,
    /// What the cell computed (`h_t` before any reset).
    acts: CellActs,
    /// Rows whose episode ended after this step (`[B × 1]` bools), as the next step's episode
    /// starts mark them.
    done: Option<Tensor>,
}

/// The `[B × H]` factors of the trace updates as functions of the hidden states `h`
/// (`[N × H]`, the modulator's input) and post-synaptic activity `post`, with autograd graphs
/// (the backward pass's parameter gradients come through them): `[s, keep]` of the rule
/// (`keep` only for rules that have one, [`crate::cores::Rule::factors`]), or `[M, s, keep]`
/// of retroactive modulation (`s`, `keep` those of the eligibility trace).
fn factor_graph(p: &Plasticity, h: &Tensor, post: &Tensor) -> Vec<Tensor> {
    match &p.neuromodulation {
        Neuromodulation::None { eta } => {
            // One factor per trace row (`[N × K·H]` for several timescales).
            let stacked = Stacked::of(p);
            let rate = stacked.param(eta, h.size()[1]);
            let (keep, s) = p.rule.factors(&rate, &stacked.repeat(post));
            std::iter::once(s).chain(keep).collect()
        }
        Neuromodulation::Simple { modulator } => {
            let m = modulator.forward(h);
            let (keep, s) = p.rule.factors(&m, post);
            std::iter::once(s).chain(keep).collect()
        }
        Neuromodulation::Retroactive { modulator, eta_e } => {
            let m = modulator.forward(h);
            let (keep, s) = eligibility_factors(eta_e, post);
            vec![m, s, keep]
        }
    }
}

/// A direct rule's rate at one step (no eligibility trace): `(rate, m)`, `η` (one per trace
/// row, [`Stacked::param`]) with no `m`, or
/// the modulator's output `M_t` with its `m_t` before the fan-out (for
/// [`crate::cores::Modulator::backward`]). Under retroactive modulation, `M_t` and `m_t`.
fn step_rate(p: &Plasticity, h: &Tensor) -> (Tensor, Option<Tensor>) {
    match &p.neuromodulation {
        Neuromodulation::None { eta } => (Stacked::of(p).param(eta, h.size()[1]), None),
        Neuromodulation::Simple { modulator } | Neuromodulation::Retroactive { modulator, .. } => {
            let (m, big_m) = modulator.modulate(h);
            (big_m, Some(m))
        }
    }
}

/// `dL/dh_t` through the modulator, given `dL/dM_t` and `m_t` of [`step_rate`] (none for `η`).
fn modulator_backward(p: &Plasticity, m: Option<&Tensor>, dbig_m: &Tensor) -> Option<Tensor> {
    match (p.neuromodulation.modulator(), m) {
        (Some(modulator), Some(m)) => Some(modulator.backward(m, dbig_m)),
        _ => None,
    }
}

/// `t` expanded to the shape of `like` (`[B × H]`) and contiguous, as the passes read it.
fn full(t: &Tensor, like: &Tensor) -> Tensor {
    t.expand(like.size(), false).contiguous()
}

/// The passes' factors of a direct rule at `rate`, one per trace row.
fn direct_factors(p: &Plasticity, rate: &Tensor, post: &Tensor) -> Factors {
    let post = Stacked::of(p).repeat(post);
    let (keep, s) = p.rule.factors(rate, &post);
    Factors {
        keep: keep.map(|keep| full(&keep, &post)),
        s: full(&s, &post),
    }
}

/// The passes' factors of retroactive modulation, `big_m` = `M_t`.
fn retro_factors(eta_e: &Tensor, big_m: &Tensor, post: &Tensor) -> RetroFactors {
    let (keep, s) = eligibility_factors(eta_e, post);
    RetroFactors {
        m: full(big_m, post),
        keep: full(&keep, post),
        s: full(&s, post),
    }
}

/// What one step's forward trace pass gives: `Hebb_t`, `E_t` (retroactive modulation), the
/// next step's plastic input and the modulator's output `M_t` (if any).
struct Advance {
    next: Tensor,
    next_elig: Option<Tensor>,
    raw: Tensor,
    big_m: Option<Tensor>,
}

/// The trace pass of step `t` forward, from `acts` (the step's cell) and, under retroactive
/// modulation, the eligibility traces `eligs`: the same way the first time and when the
/// backward pass rebuilds a dropped trace.
fn advance(
    p: &Plasticity,
    step: &TraceStep,
    acts: &CellActs,
    eligs: Option<&Kept>,
    t: usize,
) -> Advance {
    let (rate, m) = step_rate(p, &acts.h);
    match (&p.neuromodulation, eligs) {
        (Neuromodulation::Retroactive { eta_e, .. }, Some(eligs)) => {
            let factors = retro_factors(eta_e, &rate, &acts.post);
            let (next, next_elig, raw) = step.forward_retroactive(&factors, eligs.at(t), &acts.h);
            Advance {
                next,
                next_elig: Some(next_elig),
                raw,
                big_m: Some(rate),
            }
        }
        (Neuromodulation::None { .. } | Neuromodulation::Simple { .. }, None) => {
            let factors = direct_factors(p, &rate, &acts.post);
            let (next, raw) = step.forward(&factors, &acts.h);
            Advance {
                next,
                next_elig: None,
                raw,
                big_m: m.is_some().then_some(rate),
            }
        }
        _ => foreign_state(),
    }
}

/// Step `t` of the plastic RNN or LSTM on the host: what its cell computed and what the trace
/// pass gives.
fn advance_on_host(host: &HostStep, input: StepInput) -> (CellActs, Advance) {
    let c_prev = input.c.map(Tensor::shallow_clone);
    let out = host.step(input);
    let advance = Advance {
        next: out.hebb,
        next_elig: out.elig,
        raw: out.raw,
        big_m: out.big_m,
    };
    let acts = match (out.c, out.gates, c_prev) {
        (Some(c), Some(gates), Some(c_prev)) => {
            let h = c.size()[1];
            CellActs {
                h: out.h,
                post: gates.narrow(1, 2 * h, h),
                lstm: Some(LstmActs { c, c_prev, gates }),
            }
        }
        _ => CellActs::rnn(out.h),
    };
    (acts, advance)
}

/// How many partial sums α's gradient (α per connection) is kept in through a backward pass
/// over `batch` rows, `[G × H × H]`: the host loops keep one per group of rows
/// ([`crate::cores::trace_update::rows::group_rows`]), so that each group is summed by one thread in a fixed order;
/// libtorch's operations keep one. [`sum_alpha_groups`] adds them up at the end.
fn alpha_groups(on_host: bool, batch: i64) -> i64 {
    if on_host {
        host_alpha_groups(batch as usize) as i64
    } else {
        1
    }
}

pub struct FusedTape<'a> {
    core: &'a Core,
    plasticity: &'a Plasticity,
    /// [`Engine::Fused`] or [`Engine::Ops`].
    engine: Engine,
    /// The whole forward step on the host, where it applies ([`HostStep::new`]) and the
    /// engine is [`Engine::Fused`]; else the cell and factors in libtorch operations around
    /// the trace passes.
    host: Option<Box<HostStep>>,
    /// Several timescales' traces stacked as one, or one trace.
    stacked: Stacked,
    /// α per connection, `[P × H]` (`P` = `K·H` trace rows for `K` timescales), as the trace
    /// passes read it; `None` when α is per neuron (applied to the plastic input outside
    /// them).
    connection_alpha: Option<Tensor>,
    /// `Hebb_0 … Hebb_t`, `[B × P × H]`, rows zeroed where an episode ended.
    traces: Kept,
    /// `E_0 … E_t` under retroactive modulation, rows zeroed where an episode ended.
    eligs: Option<Kept>,
    h: Tensor,
    /// The LSTM's cell.
    c: Option<Tensor>,
    raw: Tensor,
    modulator: Option<Tensor>,
    steps: Vec<Record>,
}

impl<'a> FusedTape<'a> {
    /// Starts from `state`, keeping the traces of every `keep_every`-th step (≥ 1) for the
    /// backward pass, run by `engine` ([`Engine::Fused`] or [`Engine::Ops`]); the caller has
    /// checked [`Engine::fused_unsupported`]. Panics if `state` is another core's.
    pub fn new(
        core: &'a Core,
        plasticity: &'a Plasticity,
        state: &State,
        keep_every: usize,
        engine: Engine,
    ) -> Self {
        assert!(keep_every >= 1, "keep_every counts steps from 1");
        let stacked = Stacked::of(plasticity);
        let connection_alpha = (core.config().alpha == AlphaShape::PerConnection).then(|| {
            stacked
                .param(&plasticity.alpha.detach(), core.hidden())
                .contiguous()
        });
        let Some(traces) = &state.traces else {
            foreign_state()
        };
        let eligs = plasticity
            .eligibility(traces)
            .map(|elig| Kept::new(elig.detach().contiguous(), keep_every));
        let hebb = stacked.traces(traces).detach().contiguous();
        let pre = state.h.detach().contiguous();
        let raw = tch::no_grad(|| plastic_input(&hebb, connection_alpha.as_ref(), &pre));
        let host = match engine {
            Engine::Fused => HostStep::new(core, plasticity, plasticity.bounds()),
            _ => None,
        };
        Self {
            core,
            plasticity,
            stacked,
            engine,
            host: host.map(Box::new),
            connection_alpha,
            traces: Kept::new(hebb, keep_every),
            eligs,
            h: pre,
            c: core.cell(state).map(Tensor::detach),
            raw,
            modulator: state.modulator.as_ref().map(Tensor::detach),
            steps: Vec::new(),
        }
    }

    /// The engine that runs this tape.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// What the cell computes at one step.
    fn activate(&self, x: &Tensor, raw: &Tensor) -> CellActs {
        let plastic = match self.core.config().alpha {
            AlphaShape::PerConnection => self.stacked.sum(raw),
            AlphaShape::PerNeuron => {
                let alpha = self
                    .stacked
                    .param(&self.plasticity.alpha, self.core.hidden());
                self.stacked.sum(&(raw * alpha))
            }
        };
        let fixed = self.core.fixed_input(x, &self.h);
        cell::forward(&fixed, &plastic, self.c.as_ref())
    }

    /// One step: returns `h_t` `[B × H]` (no autograd graph), after zeroing hidden state and
    /// traces of the rows in `episode_start` (`[B]` bools), if any.
    pub fn step(&mut self, x: &Tensor, episode_start: Option<&Tensor>) -> Tensor {
        if let Some(rows) = episode_start {
            self.start_episodes(rows);
        }
        tch::no_grad(|| {
            let t = self.steps.len();
            let pre = self.h.contiguous();
            let (acts, advance) = match &self.host {
                Some(host) => {
                    let input = StepInput {
                        x,
                        pre: &pre,
                        c: self.c.as_ref(),
                        raw: &self.raw,
                        hebb: self.traces.at(t),
                        elig: self.eligs.as_ref().map(|e| e.at(t)),
                    };
                    advance_on_host(host, input)
                }
                None => {
                    let acts = self.activate(x, &self.raw);
                    let (lo, hi) = self.plasticity.bounds();
                    let step = TraceStep {
                        prev: self.traces.at(t),
                        pre: &pre,
                        alpha: self.connection_alpha.as_ref(),
                        lo,
                        hi,
                    };
                    let advance = advance(self.plasticity, &step, &acts, self.eligs.as_ref(), t);
                    (acts, advance)
                }
            };
            // `h_t` is the next step's pre-synaptic activity.
            let Advance {
                next,
                next_elig,
                raw,
                big_m,
            } = advance;
            if let (Some(eligs), Some(e)) = (self.eligs.as_mut(), next_elig) {
                eligs.push(e);
            }
            self.traces.push(next);
            self.modulator = big_m;
            self.h = acts.h.shallow_clone();
            self.c = acts.lstm.as_ref().map(|l| l.c.shallow_clone());
            self.steps.push(Record {
                x: x.shallow_clone(),
                pre,
                raw: std::mem::replace(&mut self.raw, raw),
                acts,
                done: None,
            });
            self.h.shallow_clone()
        })
    }

    /// Zeroes hidden state and traces of the rows in `done`, whose episode ended at the last
    /// step. Out of place but for the plastic input, which only this tape holds: outputs and
    /// states already returned keep their values.
    fn start_episodes(&mut self, done: &Tensor) {
        let done = done.to_device(self.h.device());
        let rows = done.view([-1, 1]);
        self.h = self.h.masked_fill(&rows, 0.0);
        self.c = self.c.as_ref().map(|c| c.masked_fill(&rows, 0.0));
        let _ = self.raw.masked_fill_(&rows, 0.0);
        if let Some(m) = &self.modulator {
            self.modulator = Some(m.masked_fill(&rows, 0.0));
        }
        let cells = done.view([-1, 1, 1]);
        let eligs = self.eligs.as_mut().map(Kept::newest_mut);
        for trace in [Some(self.traces.newest_mut()), eligs]
            .into_iter()
            .flatten()
        {
            *trace = trace.masked_fill(&cells, 0.0);
        }
        if let Some(record) = self.steps.last_mut() {
            record.done = Some(rows);
        }
    }

    /// The state after the last step.
    pub fn state(&self) -> State {
        // One trace per step, and the one it started from.
        let hebb = self.traces.newest().shallow_clone();
        let traces = match &self.eligs {
            None => self.stacked.unstack(&hebb),
            Some(eligs) => Traces::Retroactive {
                hebb,
                elig: eligs.newest().shallow_clone(),
            },
        };
        State {
            h: self.h.shallow_clone(),
            c: self.c.as_ref().map(Tensor::shallow_clone),
            traces: Some(traces),
            fast: None,
            modulator: self.modulator.as_ref().map(Tensor::shallow_clone),
        }
    }

    /// Accumulates into the core's parameters' `.grad` the gradient of a loss whose
    /// derivative with respect to the outputs `h_1 … h_T` is `grad_h` (`[T × B × H]`).
    ///
    /// Going back step by step needs only the gradients with respect to the state. Those with
    /// respect to the parameters are sums over steps of per-step terms, so the loop keeps each
    /// step's gradients of its per-neuron quantities (the pre-activation and the factors of
    /// [`factor_graph`]), and one autograd call on all steps at once turns them into
    /// parameter gradients at the end.
    pub fn backward(self, grad_h: &Tensor) {
        let steps = self.steps.len();
        if steps == 0 {
            return;
        }
        let core = self.core;
        let p = self.plasticity;
        let kind = core.kind();
        let opts = (kind, core.device());
        let (b, h) = (self.h.size()[0], core.hidden());
        let posts = self.stacked.posts(h);
        let mut back = Back {
            core,
            plasticity: p,
            host: self.host.as_deref(),
            connection_alpha: self.connection_alpha.as_ref(),
            traces: self.traces,
            grad_elig: self.eligs.is_some().then(|| Tensor::zeros([b, h, h], opts)),
            eligs: self.eligs,
            grad_hebb: Tensor::zeros([b, posts, h], opts),
            dalpha: self
                .connection_alpha
                .is_some()
                .then(|| Tensor::zeros([alpha_groups(self.host.is_some(), b), posts, h], opts)),
            dh: Tensor::zeros([b, h], opts),
            dc: core
                .config()
                .kind
                .is_lstm()
                .then(|| Tensor::zeros([b, h], opts)),
        };
        // The parameters' graphs are built once, after the loop.
        let grads = tch::no_grad(|| match back.host {
            Some(host) => back.on_host(host, &self.steps, grad_h),
            None => back.by_operations(&self.steps, grad_h),
        });
        let all = |f: fn(&Record) -> &Tensor| {
            Tensor::cat(&self.steps.iter().map(f).collect::<Vec<_>>(), 0)
        };
        let mut surrogate = core.fixed_input_surrogate(&all(|r| &r.x), &all(|r| &r.pre), &grads.da);
        let hs = all(|r| &r.acts.h);
        let graph = factor_graph(p, &hs, &all(|r| &r.acts.post));
        assert_eq!(graph.len(), grads.dfactors.len(), "one gradient per factor");
        for (factor, d) in graph.iter().zip(&grads.dfactors) {
            surrogate += (factor * d).sum(kind);
        }
        // α's gradient, stacked as the trace rows hold it, in α's own shape.
        let dalpha = match back.dalpha {
            Some(dalpha) => sum_alpha_groups(&dalpha),
            None => (all(|r| &r.raw) * self.stacked.repeat(&grads.da_plastic))
                .sum_dim_intlist(0, false, kind),
        };
        surrogate += (&p.alpha * dalpha.view_as(&p.alpha)).sum(kind);
        surrogate.backward();
    }
}
