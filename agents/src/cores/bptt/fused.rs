//! Backpropagation through time for a plastic core (RNN or LSTM), written by hand around the
//! traces.
//!
//! The forward pass runs without autograd and keeps, per step, only what the backward pass
//! cannot rebuild cheaply: the trace `Hebb_t` (`[B × H × H]`; under retroactive modulation
//! also the eligibility trace `E_t`) and a few `[B × H]` vectors (the input, `h_{t−1}`, the
//! plastic input, `h_t`; for the LSTM its gates and cell too). Going backwards, everything
//! that touches the traces goes through the passes of [`super::traces`] (hand-written
//! loops on the CPU, libtorch operations on other devices), and the per-neuron part of each
//! step (the cell of [`super::cell`], rule factors, modulator) is differentiated by
//! hand. Gradients with respect to the parameters are sums over steps, so they come from one
//! autograd call over all steps at the end. Memory is one trace per step (B·H²·T in all)
//! instead of autograd's three; under retroactive modulation two (2·B·H²·T), less than half
//! of what autograd keeps.
//!
//! Covers plastic RNNs and LSTMs with any rule, α and η shape and neuromodulation (any
//! modulator shape): [`super::Engine::fused_unsupported`].
use super::cell::{self, CellActs};
use super::traces::{plastic_input, Backend, FactorGrads, Factors, TraceStep};
use crate::cores::plasticity::rule_factors;
use crate::cores::{AlphaShape, Core, Modulation, Plasticity, Rule, State};
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
    /// Rows whose episode ended after this step (`[B × 1]` bools).
    done: Option<Tensor>,
}

pub struct FusedTape<'a> {
    core: &'a Core,
    plasticity: &'a Plasticity,
    /// α per connection, `[H × H]`, as the trace passes read it; `None` when α is per neuron
    /// (applied to the plastic input outside them).
    connection_alpha: Option<Tensor>,
    /// `Hebb_0 … Hebb_t`, rows zeroed where an episode ended.
    traces: Vec<Tensor>,
    /// `E_0 … E_t` likewise (retroactive modulation; empty otherwise).
    eligs: Vec<Tensor>,
    h: Tensor,
    /// The LSTM's cell.
    c: Option<Tensor>,
    raw: Tensor,
    modulator: Option<Tensor>,
    steps: Vec<Record>,
}

impl<'a> FusedTape<'a> {
    /// Starts from `state`; the caller has checked [`super::Engine::fused_unsupported`].
    pub fn new(core: &'a Core, state: &State) -> Self {
        let plasticity = core
            .plasticity()
            .expect("the fused engine runs plastic cores");
        let connection_alpha = (core.config().alpha == AlphaShape::PerConnection)
            .then(|| plasticity.alpha.detach().contiguous());
        let hebb = state
            .hebb
            .as_ref()
            .expect("a plastic core's state has a Hebbian trace")
            .detach()
            .contiguous();
        let eligs = match plasticity.modulation {
            Modulation::Retroactive => vec![state
                .elig
                .as_ref()
                .expect("retroactive modulation's state has an eligibility trace")
                .detach()
                .contiguous()],
            Modulation::None | Modulation::Simple => Vec::new(),
        };
        let pre = state.h.detach().contiguous();
        let raw = tch::no_grad(|| plastic_input(&hebb, connection_alpha.as_ref(), &pre));
        Self {
            core,
            plasticity,
            connection_alpha,
            traces: vec![hebb],
            eligs,
            h: pre,
            c: state.c.as_ref().map(Tensor::detach),
            raw,
            modulator: state.modulator.as_ref().map(Tensor::detach),
            steps: Vec::new(),
        }
    }

    /// What the cell computes at one step, and the modulator's output.
    fn activate(&self, x: &Tensor, raw: &Tensor) -> (CellActs, Option<Tensor>) {
        let plastic = match self.core.config().alpha {
            AlphaShape::PerConnection => raw.shallow_clone(),
            AlphaShape::PerNeuron => raw * &self.plasticity.alpha,
        };
        let fixed = self.core.fixed_input(x, &self.h);
        let acts = cell::forward(&fixed, &plastic, self.c.as_ref());
        let m = self
            .plasticity
            .modulator
            .as_ref()
            .map(|m| m.forward(&acts.h));
        (acts, m)
    }

    /// The `[B × H]` factors of the trace updates as functions of post-synaptic activity
    /// `post` (`[N × H]`) and the modulator's output `m`, with autograd graphs when called with
    /// gradients on: `[s, keep]` of the rule (`keep` only for rules other than `hebb`), or
    /// `[m, s, keep]` of retroactive modulation (`s`, `keep` those of the eligibility trace).
    fn factor_graph(&self, post: &Tensor, m: Option<&Tensor>) -> Vec<Tensor> {
        let p = self.plasticity;
        match p.modulation {
            Modulation::Retroactive => {
                let eta_e = p
                    .eta_e
                    .as_ref()
                    .expect("η_E exists with retroactive modulation");
                let (keep, s) = rule_factors(Rule::Decay, eta_e, post);
                let m = m.expect("the modulator exists with retroactive modulation");
                vec![m.shallow_clone(), s, keep.expect("`decay` keeps a share")]
            }
            Modulation::None | Modulation::Simple => {
                let (keep, s) = rule_factors(p.rule, p.rate(m), post);
                std::iter::once(s).chain(keep).collect()
            }
        }
    }

    /// [`FusedTape::factor_graph`] as the kernels read it (no graph).
    fn kernel_factors(&self, post: &Tensor, m: Option<&Tensor>) -> Factors {
        let full = |t: &Tensor| t.expand(post.size(), false).contiguous();
        match self.factor_graph(post, m).as_slice() {
            [m, s, keep] if self.plasticity.modulation == Modulation::Retroactive => {
                Factors::Retroactive {
                    m: full(m),
                    keep: full(keep),
                    s: full(s),
                }
            }
            [s] => Factors::Direct {
                keep: None,
                s: full(s),
            },
            [s, keep] => Factors::Direct {
                keep: Some(full(keep)),
                s: full(s),
            },
            f => unreachable!("factor_graph gives 1 to 3 factors, not {}", f.len()),
        }
    }

    /// One step: returns `h_t` `[B × H]` (no autograd graph).
    pub fn step(&mut self, x: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let (acts, m) = self.activate(x, &self.raw);
            let factors = self.kernel_factors(&acts.post, m.as_ref());
            let pre = self.h.contiguous();
            // `h_t` is the next step's pre-synaptic activity.
            let (next, next_elig, raw) = self
                .trace_step(self.steps.len(), &pre, &factors)
                .forward(&acts.h);
            self.traces.push(next);
            self.eligs.extend(next_elig);
            self.modulator = m;
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

    /// Zeroes hidden state and traces of the rows whose episode ended; outputs already
    /// returned keep their values.
    pub fn reset_rows(&mut self, done: &Tensor) {
        let done = done.to_device(self.h.device());
        let rows = done.view([-1, 1]);
        self.h = self.h.masked_fill(&rows, 0.0);
        self.c = self.c.as_ref().map(|c| c.masked_fill(&rows, 0.0));
        let _ = self.raw.masked_fill_(&rows, 0.0);
        if let Some(m) = &self.modulator {
            self.modulator = Some(m.masked_fill(&rows, 0.0));
        }
        let cells = done.view([-1, 1, 1]);
        for trace in [self.traces.last_mut(), self.eligs.last_mut()]
            .into_iter()
            .flatten()
        {
            let _ = trace.masked_fill_(&cells, 0.0);
        }
        if let Some(record) = self.steps.last_mut() {
            record.done = Some(rows);
        }
    }

    /// The current state. It shares the latest traces, which [`FusedTape::reset_rows`] zeroes
    /// in place: read it before resetting.
    pub fn state(&self) -> State {
        State {
            h: self.h.shallow_clone(),
            c: self.c.as_ref().map(Tensor::shallow_clone),
            hebb: self.traces.last().map(Tensor::shallow_clone),
            elig: self.eligs.last().map(Tensor::shallow_clone),
            modulator: self.modulator.as_ref().map(Tensor::shallow_clone),
        }
    }

    /// Accumulates into the core's parameters' `.grad` the gradient of a loss whose
    /// derivative with respect to the outputs `h_1 … h_T` is `grad_h` (`[T × B × H]`).
    ///
    /// Going back step by step needs only the gradients with respect to the state. Those with
    /// respect to the parameters are sums over steps of per-step terms, so the loop keeps each
    /// step's gradients of its per-neuron quantities (the pre-activation and the factors of
    /// [`FusedTape::factor_graph`]), and one autograd call on all steps at once turns them
    /// into parameter gradients at the end.
    pub fn backward(self, grad_h: &Tensor) {
        let kind = self.core.kind();
        let opts = (kind, self.core.device());
        let (b, h) = (self.h.size()[0], self.core.hidden());
        let per_connection = self.core.config().alpha == AlphaShape::PerConnection;
        let w = self.core.w().detach();
        let alpha = self.plasticity.alpha.detach();
        let retroactive = self.plasticity.modulation == Modulation::Retroactive;
        let mut grads = BackwardCarry {
            hebb: Tensor::zeros([b, h, h], opts),
            elig: retroactive.then(|| Tensor::zeros([b, h, h], opts)),
            alpha: per_connection.then(|| Tensor::zeros([h, h], opts)),
        };
        let mut dh = Tensor::zeros([b, h], opts);
        // `dL/dc_t` from the steps after (LSTM).
        let mut dc: Option<Tensor> = None;
        let steps = self.steps.len();
        // Per step: the gradients of the pre-activations (all of them, and the plastic
        // layer's) and of the factors.
        let (mut das, mut da_plastics) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
        let mut dfactors = Vec::with_capacity(steps);
        // The parameters' graphs are built once, after the loop.
        tch::no_grad(|| {
            for (t, record) in self.steps.iter().enumerate().rev() {
                if let Some(rows) = &record.done {
                    // A reset cuts every gradient path through the state.
                    dh = dh.masked_fill(rows, 0.0);
                    dc = dc.map(|dc| dc.masked_fill(rows, 0.0));
                    let cells = rows.unsqueeze(2);
                    for trace in [Some(&mut grads.hebb), grads.elig.as_mut()]
                        .into_iter()
                        .flatten()
                    {
                        let _ = trace.masked_fill_(&cells, 0.0);
                    }
                }
                let acts = &record.acts;
                let modulated = self.modulate(&acts.h);
                let big_m = modulated.as_ref().map(|(_, big_m)| big_m);
                let factors = self.kernel_factors(&acts.post, big_m);
                let step = self.trace_step(t, &record.pre, &factors);
                let mut factor_grads =
                    step.backward_update(&self.traces[t + 1], &mut grads.hebb, grads.elig.as_mut());
                let (dpost, dh_modulator, dfactor) =
                    self.factors_backward(&acts.post, modulated.as_ref(), &factor_grads);
                let mut dh_t = grad_h.get(t as i64) + &dh;
                if let Some(d) = dh_modulator {
                    dh_t += d;
                }
                let (da, da_plastic, dc_prev) = cell::backward(acts, &dh_t, &dpost, dc.as_ref());
                let draw = if per_connection {
                    da_plastic.shallow_clone()
                } else {
                    &da_plastic * &alpha
                };
                step.backward_input(
                    &draw,
                    &mut grads.hebb,
                    &mut factor_grads.dpre,
                    grads.alpha.as_mut(),
                );
                dh = da.mm(&w) + factor_grads.dpre;
                dc = dc_prev;
                das.push(da);
                da_plastics.push(da_plastic);
                dfactors.push(dfactor);
            }
        });
        if steps == 0 {
            return;
        }
        das.reverse();
        da_plastics.reverse();
        dfactors.reverse();
        let all = |f: fn(&Record) -> &Tensor| {
            Tensor::cat(&self.steps.iter().map(f).collect::<Vec<_>>(), 0)
        };
        let da = Tensor::cat(&das, 0);
        let mut surrogate =
            (self.core.fixed_input(&all(|r| &r.x), &all(|r| &r.pre)) * &da).sum(kind);
        let hs = all(|r| &r.acts.h);
        let m = self.plasticity.modulator.as_ref().map(|m| m.forward(&hs));
        let graph = self.factor_graph(&all(|r| &r.acts.post), m.as_ref());
        assert_eq!(graph.len(), dfactors[0].len(), "one gradient per factor");
        for (k, factor) in graph.iter().enumerate() {
            let d = Tensor::cat(&dfactors.iter().map(|d| &d[k]).collect::<Vec<_>>(), 0);
            surrogate += (factor * d).sum(kind);
        }
        surrogate += match grads.alpha {
            Some(dalpha) => (&self.plasticity.alpha * dalpha).sum(kind),
            None => (&self.plasticity.alpha
                * (all(|r| &r.raw) * Tensor::cat(&da_plastics, 0)).sum_dim_intlist(0, false, kind))
            .sum(kind),
        };
        surrogate.backward();
    }

    /// The modulator's output before and after its fan-out, `(m_t, M_t)`, under
    /// neuromodulation.
    fn modulate(&self, h: &Tensor) -> Option<(Tensor, Tensor)> {
        self.plasticity.modulator.as_ref().map(|md| {
            let m = md.tanh_output(h);
            let big_m = md.apply_fan_out(&m);
            (m, big_m)
        })
    }

    /// The gradients through the factors of post-synaptic activity `post`, given theirs:
    /// `dL/dpost`, `dL/dh_t` through the modulator (which reads `h_t`), and the factors'
    /// gradients in [`FusedTape::factor_graph`]'s order. Without an eligibility trace:
    /// `s = r ⊙ post`; `keep` = 1 − r (`decay`) or 1 − r ⊙ post² (`oja`); under
    /// neuromodulation the rate `r = M` ([`FusedTape::modulator_backward`]), with
    /// `modulated` = `(m, M)` ([`FusedTape::modulate`]). Under retroactive modulation:
    /// `s = η_E ⊙ post`, `keep` = 1 − η_E (not a function of post), and `M` writes the
    /// eligibility trace.
    fn factors_backward(
        &self,
        post: &Tensor,
        modulated: Option<&(Tensor, Tensor)>,
        g: &FactorGrads,
    ) -> (Tensor, Option<Tensor>, Vec<Tensor>) {
        let p = self.plasticity;
        let ds = &g.ds;
        if p.modulation == Modulation::Retroactive {
            let eta_e = p.eta_e.as_ref().expect("η_E exists here").detach();
            let (dm, dkeep) = match (&g.dm, &g.dkeep) {
                (Some(dm), Some(dkeep)) => (dm, dkeep),
                _ => unreachable!("retroactive steps give dL/dm and dL/dkeep"),
            };
            let modulated = modulated.expect("the modulator exists here");
            return (
                ds * eta_e,
                Some(self.modulator_backward(modulated, dm)),
                vec![
                    dm.shallow_clone(),
                    ds.shallow_clone(),
                    dkeep.shallow_clone(),
                ],
            );
        }
        let rate = p.rate(modulated.map(|(_, big_m)| big_m));
        let mut dpost = ds * rate;
        let mut drate = ds * post;
        match (p.rule, &g.dkeep) {
            (Rule::Hebb, _) => {}
            (Rule::Decay, Some(dkeep)) => drate -= dkeep,
            (Rule::Oja, Some(dkeep)) => {
                dpost -= rate * post * dkeep * 2.0;
                drate -= post.square() * dkeep;
            }
            (Rule::Decay | Rule::Oja, None) => unreachable!("rules that decay give dL/dkeep"),
        }
        let dh = modulated.map(|modulated| self.modulator_backward(modulated, &drate));
        let grads = std::iter::once(ds.shallow_clone())
            .chain(g.dkeep.as_ref().map(Tensor::shallow_clone))
            .collect();
        (dpost, dh, grads)
    }

    /// `dL/dh` through the modulator `M = m (⊙ f)`, `m = tanh(w_M · h + b_M)`, given `dL/dM`
    /// (`[B × H]`) and `modulated` = `(m, M)`.
    fn modulator_backward(&self, (m, _): &(Tensor, Tensor), dbig_m: &Tensor) -> Tensor {
        let md = self
            .plasticity
            .modulator
            .as_ref()
            .expect("a modulated tape has a modulator");
        let kind = m.kind();
        let dm = match &md.fan_out {
            Some(f) => (dbig_m * f).sum_dim_intlist(1, true, kind),
            None => dbig_m.sum_dim_intlist(1, true, kind),
        };
        // tanh' = 1 − m²; `[B × 1] · [1 × H]`.
        (dm * (-m.square() + 1.0)).matmul(&md.w)
    }

    /// The trace passes of step `t` (0-based: from `traces[t]`, `eligs[t]`).
    fn trace_step<'s>(&'s self, t: usize, pre: &'s Tensor, factors: &'s Factors) -> TraceStep<'s> {
        let p = self.plasticity;
        // Retroactive modulation always clips; of the rules, only `hebb` does.
        let (lo, hi) = match (p.modulation, p.rule) {
            (Modulation::Retroactive, _) | (_, Rule::Hebb) => (-p.clip, p.clip),
            (_, Rule::Decay | Rule::Oja) => (f64::NEG_INFINITY, f64::INFINITY),
        };
        TraceStep {
            backend: Backend::for_device(self.core.device()),
            prev: &self.traces[t],
            elig: self.eligs.get(t),
            pre,
            factors,
            alpha: self.connection_alpha.as_ref(),
            lo,
            hi,
        }
    }
}

/// The gradients the backward loop carries from step to step besides `dL/dh`.
struct BackwardCarry {
    /// `dL/dHebb_t`.
    hebb: Tensor,
    /// `dL/dE_t` (retroactive modulation).
    elig: Option<Tensor>,
    /// α's gradient, summed over steps (α per connection; per neuron it comes from the
    /// plastic input at the end).
    alpha: Option<Tensor>,
}
