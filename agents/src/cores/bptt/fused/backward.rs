//! The backward pass of [`super::FusedTape`], step by step from the last: on the host, all
//! steps in one call that rebuilds dropped traces row by row (the plastic RNN and LSTM on the
//! CPU), else in libtorch operations around the trace passes, rebuilding a dropped trace's
//! whole segment for the batch (CUDA). Both give every step's gradients of its per-neuron
//! quantities, from which the parameters' come at the end.
use super::kept::Kept;
use super::{advance, direct_factors, modulator_backward, retro_factors, step_rate, Record};
use crate::cores::bptt::cell;
use crate::cores::bptt::host::{BackCarry, BackStep, BackTraces, HostStep};
use crate::cores::bptt::stacked::Stacked;
use crate::cores::rules::ELIGIBILITY;
use crate::cores::trace_update::{Factors, TraceStep};
use crate::cores::{Core, Neuromodulation, Plasticity};
use tch::Tensor;

/// The backward pass under way: what it carries from step to step, and the traces it reads.
pub(super) struct Back<'a> {
    pub(super) core: &'a Core,
    pub(super) plasticity: &'a Plasticity,
    pub(super) host: Option<&'a HostStep>,
    pub(super) connection_alpha: Option<&'a Tensor>,
    pub(super) traces: Kept,
    /// `E_0 … E_t` and `dL/dE_t` from the steps after, under retroactive modulation.
    pub(super) eligs: Option<Kept>,
    pub(super) grad_elig: Option<Tensor>,
    /// `dL/dHebb_t` from the steps after.
    pub(super) grad_hebb: Tensor,
    /// α's gradient (α per connection; per neuron it comes from the plastic input at the end),
    /// in [`super::alpha_groups`]'s partial sums.
    pub(super) dalpha: Option<Tensor>,
    /// `dL/dh_t` and the LSTM's `dL/dc_t` through the state, from the steps after.
    pub(super) dh: Tensor,
    pub(super) dc: Option<Tensor>,
}

/// Every step's gradients of its per-neuron quantities, `[T·B × H]` each: the pre-activation
/// (all of it, and the plastic layer's) and the factors of [`super::factor_graph`].
pub(super) struct PerStepGrads {
    pub(super) da: Tensor,
    pub(super) da_plastic: Tensor,
    pub(super) dfactors: Vec<Tensor>,
}

impl Back<'_> {
    /// Rebuilds the traces of the segment holding step `t` from the kept one before it, if
    /// step `t`'s was dropped.
    fn rebuild(&mut self, records: &[Record], t: usize) {
        if !self.traces.missing(t) {
            return;
        }
        let (lo, hi) = self.plasticity.bounds();
        let start = self.traces.segment_start(t);
        for (u, before) in records.iter().enumerate().take(t).skip(start) {
            let step = TraceStep {
                prev: self.traces.at(u),
                pre: &before.pre,
                alpha: self.connection_alpha,
                lo,
                hi,
            };
            let adv = advance(self.plasticity, &step, &before.acts, self.eligs.as_ref(), u);
            let reset = |trace: Tensor| match &before.done {
                Some(rows) => trace.masked_fill(&rows.unsqueeze(2), 0.0),
                None => trace,
            };
            self.traces.set(u + 1, reset(adv.next));
            if let (Some(eligs), Some(e)) = (self.eligs.as_mut(), adv.next_elig) {
                eligs.set(u + 1, reset(e));
            }
        }
    }

    /// The backward pass is past `Hebb_t`, `E_t`: frees them.
    fn free(&mut self, t: usize) {
        self.traces.free(t);
        if let Some(eligs) = self.eligs.as_mut() {
            eligs.free(t);
        }
    }

    /// The plastic RNN and LSTM on the CPU: every step in one call of the host's step back
    /// ([`HostStep::backward`]), which rebuilds dropped traces row by row as it goes.
    pub(super) fn on_host(
        &mut self,
        host: &HostStep,
        records: &[Record],
        grad_h: &Tensor,
    ) -> PerStepGrads {
        let batch = self.dh.size()[0];
        let mut grads = host.step_grads(records.len(), batch);
        let steps: Vec<BackStep> = records
            .iter()
            .enumerate()
            .map(|(t, record)| BackStep {
                grad_h: grad_h.get(t as i64),
                pre: &record.pre,
                h: &record.acts.h,
                lstm: record
                    .acts
                    .lstm
                    .as_ref()
                    .map(|l| [&l.gates, &l.c, &l.c_prev]),
                done: record.done.as_ref().map(|rows| {
                    Vec::<bool>::try_from(rows.reshape([-1])).expect("resets are bools")
                }),
            })
            .collect();
        let (eligs, grad_elig) = (self.eligs.as_ref(), self.grad_elig.as_mut());
        let traces = BackTraces {
            hebb: self.traces.all(),
            elig: eligs.map(Kept::all),
        };
        let carry = BackCarry {
            dh: &mut self.dh,
            dc: self.dc.as_mut(),
            grad_hebb: &mut self.grad_hebb,
            grad_elig,
            dalpha: self.dalpha.as_mut(),
        };
        host.backward(&steps, &traces, carry, &mut grads);
        let h = self.core.hidden();
        let da = grads.da.view([records.len() as i64 * batch, -1]);
        // The plastic layer is the LSTM's cell candidate g (gates i, f, g, o).
        let da_plastic = if self.core.config().kind.is_lstm() {
            da.narrow(1, 2 * h, h)
        } else {
            da.shallow_clone()
        };
        PerStepGrads {
            da,
            da_plastic,
            dfactors: grads
                .dfactors
                .into_iter()
                .map(|d| d.view([records.len() as i64 * batch, -1]))
                .collect(),
        }
    }

    /// Any plastic core on any device, step by step in libtorch operations around the trace
    /// passes of `cores/trace_update/`.
    pub(super) fn by_operations(&mut self, records: &[Record], grad_h: &Tensor) -> PerStepGrads {
        let p = self.plasticity;
        let w = self.core.w().detach();
        let alpha = p.alpha.detach();
        let (lo, hi) = p.bounds();
        let stacked = Stacked::of(p);
        let steps = records.len();
        let (mut das, mut da_plastics) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
        let mut dfactors = Vec::with_capacity(steps);
        for (t, record) in records.iter().enumerate().rev() {
            if let Some(rows) = &record.done {
                // A reset cuts every gradient path through the state.
                self.dh = self.dh.masked_fill(rows, 0.0);
                self.dc = self.dc.as_ref().map(|dc| dc.masked_fill(rows, 0.0));
                let cells = rows.unsqueeze(2);
                let grad_elig = self.grad_elig.as_mut();
                for trace in [Some(&mut self.grad_hebb), grad_elig].into_iter().flatten() {
                    let _ = trace.masked_fill_(&cells, 0.0);
                }
            }
            self.rebuild(records, t);
            let acts = &record.acts;
            let step = TraceStep {
                prev: self.traces.at(t),
                pre: &record.pre,
                alpha: self.connection_alpha,
                lo,
                hi,
            };
            let next = self.traces.at(t + 1);
            // The first trace pass, then the gradients through the factors: `dL/dpost`,
            // `dL/dh_t` through the modulator (which reads `h_t`) and the factors' gradients
            // in `factor_graph`'s order. Without an eligibility trace: `s = r ⊙ post` and the
            // rule's `keep` ([`crate::cores::Rule::factors`]), at rate `r` = η or `M`. Under
            // retroactive modulation: `s = η_E ⊙ post`, `keep` = 1 − η_E (not a function of
            // post), and `M` writes the eligibility trace.
            let (rate, m) = step_rate(p, &acts.h);
            let (factors, mut dpre, dpost, drate, dfactor) = match (
                &p.neuromodulation,
                self.eligs.as_ref(),
                self.grad_elig.as_mut(),
            ) {
                (Neuromodulation::Retroactive { eta_e, .. }, Some(eligs), Some(grad_elig)) => {
                    let retro = retro_factors(eta_e, &rate, &acts.post);
                    let g = step.backward_update_retroactive(
                        &retro,
                        eligs.at(t),
                        next,
                        &mut self.grad_hebb,
                        grad_elig,
                    );
                    let (dpost, _) =
                        ELIGIBILITY.factors_backward(&eta_e.detach(), &acts.post, &g.ds, None);
                    // The Hebbian trace keeps all of itself.
                    let factors = Factors {
                        keep: None,
                        s: retro.s,
                    };
                    let dm = g.dm.shallow_clone();
                    (factors, g.dpre, dpost, dm, vec![g.dm, g.ds, g.dkeep])
                }
                _ => {
                    let factors = direct_factors(p, &rate, &acts.post);
                    let g = step.backward_update(&factors, next, &mut self.grad_hebb);
                    // Summed over the timescales' trace rows of each neuron.
                    let post = stacked.repeat(&acts.post);
                    let (dpost, drate) =
                        p.rule
                            .factors_backward(&rate, &post, &g.ds, g.dkeep.as_ref());
                    let dpost = stacked.sum(&dpost);
                    let dfactor: Vec<Tensor> = std::iter::once(g.ds).chain(g.dkeep).collect();
                    (factors, g.dpre, dpost, drate, dfactor)
                }
            };
            let dh_modulator = modulator_backward(p, m.as_ref(), &drate);
            let mut dh_t = grad_h.get(t as i64) + &self.dh;
            if let Some(d) = dh_modulator {
                dh_t += d;
            }
            let (da, da_plastic, dc_prev) = cell::backward(acts, &dh_t, &dpost, self.dc.as_ref());
            // Each trace row's plastic input is its neuron's.
            let draw = match self.connection_alpha {
                Some(_) => stacked.repeat(&da_plastic),
                None => stacked.repeat(&da_plastic) * stacked.param(&alpha, self.core.hidden()),
            };
            step.backward_input(
                factors.keep.as_ref(),
                &draw,
                &mut self.grad_hebb,
                &mut dpre,
                self.dalpha.as_mut(),
            );
            self.dh = da.mm(&w) + dpre;
            self.dc = dc_prev;
            self.free(t + 1);
            das.push(da);
            da_plastics.push(da_plastic);
            dfactors.push(dfactor);
        }
        das.reverse();
        da_plastics.reverse();
        dfactors.reverse();
        let factors = dfactors[0].len();
        PerStepGrads {
            da: Tensor::cat(&das, 0),
            da_plastic: Tensor::cat(&da_plastics, 0),
            dfactors: (0..factors)
                .map(|k| Tensor::cat(&dfactors.iter().map(|d| &d[k]).collect::<Vec<_>>(), 0))
                .collect(),
        }
    }
}
