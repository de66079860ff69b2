//! Backpropagation through time for a plastic RNN on the CPU, written by hand around the
//! traces.
//!
//! The forward pass runs without autograd and keeps, per step, only what the backward pass
//! cannot rebuild cheaply: the trace `Hebb_t` (`[B × H × H]`; under retroactive modulation
//! also the eligibility trace `E_t`) and four `[B × H]` vectors (the input, `h_{t−1}`, the
//! plastic input, `h_t`). Going backwards, everything that touches the
//! traces goes through the passes of [`super::trace_kernel`], and the per-neuron part of each
//! step (tanh, rule factors, modulator) is differentiated by hand. Gradients with respect to
//! the parameters are sums over steps, so they come from one autograd call over all steps at
//! the end. Memory is one trace per step (B·H²·T in all) instead of autograd's three; under
//! retroactive modulation two (2·B·H²·T), less than half of what autograd keeps.
//!
//! Covers plastic RNNs with any rule, α and η shape and neuromodulation (any modulator
//! shape): [`super::tape::Engine::fused_unsupported`].
use super::plasticity::rule_factors;
use super::trace_kernel::{RetroRows, RetroUpdate, Rows3, Update};
use super::{AlphaShape, Core, Modulation, Plasticity, Rule, State};
use num_traits::Float;
use tch::kind::Element;
use tch::{Device, Kind, Tensor};

/// What one forward step recorded.
struct Record {
    x: Tensor,
    /// `h_{t−1}` after the previous step's resets.
    pre: Tensor,
    /// The plastic input before α per neuron: `Σ_j α[i,j] Hebb_{t−1}[i,j] h_{t−1}[j]` (α per
    /// connection) or `Σ_j Hebb_{t−1}[i,j] h_{t−1}[j]` (α per neuron).
    raw: Tensor,
    /// `h_t`, before any reset.
    h: Tensor,
    /// Rows whose episode ended after this step (`[B × 1]` bools).
    done: Option<Tensor>,
}

pub struct FusedTape<'a> {
    core: &'a Core,
    plasticity: &'a Plasticity,
    /// The α the kernel reads, `[H × H]`: the coefficients per connection, or ones when α is
    /// per neuron (applied to the plastic input outside the kernel).
    kernel_alpha: Tensor,
    /// `Hebb_0 … Hebb_t`, rows zeroed where an episode ended.
    traces: Vec<Tensor>,
    /// `E_0 … E_t` likewise (retroactive modulation; empty otherwise).
    eligs: Vec<Tensor>,
    h: Tensor,
    raw: Tensor,
    modulator: Option<Tensor>,
    steps: Vec<Record>,
}

/// What the trace kernels read at one step besides the traces: `[B × H]` each, contiguous.
enum Factors {
    /// `Hebb_t = clamp(keep ⊙ Hebb_{t−1} + s ⊗ h_{t−1})`: no neuromodulation, or `simple`.
    Direct { keep: Tensor, s: Tensor },
    /// Retroactive modulation: `m` writes `E_{t−1}` into `Hebb`; `E` keeps `keep` of itself
    /// and adds `s ⊗ h_{t−1}`.
    Retroactive { m: Tensor, keep: Tensor, s: Tensor },
}

/// The elements of a contiguous CPU tensor of element type `T`.
fn data<T: Element>(t: &Tensor) -> &[T] {
    check::<T>(t);
    // SAFETY: the tensor is a contiguous CPU tensor of `numel` elements of type `T` (checked),
    // and the borrow keeps its storage alive.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const T, t.numel()) }
}

/// [`data`], writable. Only for tensors this module allocated and shares with no one.
fn data_mut<T: Element>(t: &mut Tensor) -> &mut [T] {
    check::<T>(t);
    // SAFETY: as in `data`; the exclusive borrow stands for exclusive use of the storage,
    // which holds because the callers pass freshly allocated, unshared tensors.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut T, t.numel()) }
}

fn check<T: Element>(t: &Tensor) {
    assert!(
        t.device() == Device::Cpu && t.kind() == T::KIND && t.is_contiguous(),
        "fused kernel input must be a contiguous CPU {:?} tensor, got {:?} {:?}",
        T::KIND,
        t.kind(),
        t.device()
    );
}

/// Runs `$body` with `$t` the element type of `$kind` (f32 or f64).
macro_rules! with_float {
    ($kind:expr, $t:ident => $body:expr) => {
        match $kind {
            Kind::Float => {
                type $t = f32;
                $body
            }
            Kind::Double => {
                type $t = f64;
                $body
            }
            k => unreachable!("the fused engine runs f32 and f64 cores, not {k:?}"),
        }
    };
}

impl<'a> FusedTape<'a> {
    /// Starts from `state`; the caller has checked [`super::tape::Engine::fused_unsupported`].
    pub fn new(core: &'a Core, state: &State) -> Self {
        let plasticity = core
            .plasticity()
            .expect("the fused engine runs plastic cores");
        let h = core.hidden();
        let kernel_alpha = match core.config().alpha {
            AlphaShape::PerConnection => plasticity.alpha.detach().contiguous(),
            AlphaShape::PerNeuron => Tensor::ones([h, h], (core.kind(), core.device())),
        };
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
        let raw = tch::no_grad(|| {
            (&hebb * &kernel_alpha * pre.unsqueeze(1)).sum_dim_intlist(2, false, None::<Kind>)
        });
        Self {
            core,
            plasticity,
            kernel_alpha,
            traces: vec![hebb],
            eligs,
            h: pre,
            raw,
            modulator: state.modulator.as_ref().map(Tensor::detach),
            steps: Vec::new(),
        }
    }

    /// `h_t` of one step and the modulator's output.
    fn activate(&self, x: &Tensor, pre: &Tensor, raw: &Tensor) -> (Tensor, Option<Tensor>) {
        let a = self.core.fixed_input(x, pre);
        let a = match self.core.config().alpha {
            AlphaShape::PerConnection => a + raw,
            AlphaShape::PerNeuron => a.addcmul(&self.plasticity.alpha, raw),
        };
        let h = a.tanh();
        let m = self.plasticity.modulator.as_ref().map(|m| m.forward(&h));
        (h, m)
    }

    /// The `[B × H]` factors of the trace updates as functions of post-synaptic activity `h`
    /// (`[N × H]`) and the modulator's output `m` on it, with autograd graphs when called with
    /// gradients on: `[s, keep]` of the rule (`keep` only for rules other than `hebb`), or
    /// `[m, s, keep]` of retroactive modulation (`s`, `keep` those of the eligibility trace).
    fn factor_graph(&self, h: &Tensor, m: Option<&Tensor>) -> Vec<Tensor> {
        let p = self.plasticity;
        match p.modulation {
            Modulation::Retroactive => {
                let eta_e = p
                    .eta_e
                    .as_ref()
                    .expect("η_E exists with retroactive modulation");
                let (keep, s) = rule_factors(Rule::Decay, eta_e, h);
                let m = m.expect("the modulator exists with retroactive modulation");
                vec![m.shallow_clone(), s, keep.expect("`decay` keeps a share")]
            }
            Modulation::None | Modulation::Simple => {
                let (keep, s) = rule_factors(p.rule, p.rate(m), h);
                std::iter::once(s).chain(keep).collect()
            }
        }
    }

    /// [`FusedTape::factor_graph`] as the kernels read it (no graph).
    fn kernel_factors(&self, h: &Tensor, m: Option<&Tensor>) -> Factors {
        let full = |t: &Tensor| t.expand(h.size(), false).contiguous();
        match self.factor_graph(h, m).as_slice() {
            [m, s, keep] if self.plasticity.modulation == Modulation::Retroactive => {
                Factors::Retroactive {
                    m: full(m),
                    keep: full(keep),
                    s: full(s),
                }
            }
            [s] => Factors::Direct {
                keep: h.ones_like(),
                s: full(s),
            },
            [s, keep] => Factors::Direct {
                keep: full(keep),
                s: full(s),
            },
            f => unreachable!("factor_graph gives 1 to 3 factors, not {}", f.len()),
        }
    }

    /// One step: returns `h_t` `[B × H]` (no autograd graph).
    pub fn step(&mut self, x: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let (h, m) = self.activate(x, &self.h, &self.raw);
            let factors = self.kernel_factors(&h, m.as_ref());
            let pre = self.h.contiguous();
            let prev = self.traces.last().expect("the tape starts with a trace");
            let mut next = prev.empty_like();
            let mut raw = h.empty_like();
            let t = self.steps.len();
            let kind = self.core.kind();
            match &factors {
                Factors::Direct { keep, s } => with_float!(kind, T => {
                    self.update::<T>(t, &pre, keep, s).forward(
                        data(&h),
                        data_mut(&mut next),
                        data_mut(&mut raw),
                    );
                }),
                Factors::Retroactive { m, keep, s } => {
                    let mut next_elig = prev.empty_like();
                    with_float!(kind, T => {
                        self.retro_update::<T>(t, &pre, m, keep, s).forward(
                            data(&h),
                            data_mut(&mut next),
                            data_mut(&mut next_elig),
                            data_mut(&mut raw),
                        );
                    });
                    self.eligs.push(next_elig);
                }
            }
            self.steps.push(Record {
                x: x.shallow_clone(),
                pre,
                raw: std::mem::replace(&mut self.raw, raw),
                h: h.shallow_clone(),
                done: None,
            });
            self.traces.push(next);
            self.modulator = m;
            self.h = h.shallow_clone();
            h
        })
    }

    /// Zeroes hidden state and traces of the rows whose episode ended; outputs already
    /// returned keep their values.
    pub fn reset_rows(&mut self, done: &Tensor) {
        let rows = done.view([-1, 1]);
        self.h = self.h.masked_fill(&rows, 0.0);
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
            c: None,
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
        let steps = self.steps.len();
        // Per step: the gradients of the pre-activation and of the factors.
        let mut das = Vec::with_capacity(steps);
        let mut dfactors = Vec::with_capacity(steps);
        // The parameters' graphs are built once, after the loop.
        tch::no_grad(|| {
            for (t, record) in self.steps.iter().enumerate().rev() {
                if let Some(rows) = &record.done {
                    // A reset cuts every gradient path through the state.
                    dh = dh.masked_fill(rows, 0.0);
                    let cells = rows.unsqueeze(2);
                    for trace in [Some(&mut grads.hebb), grads.elig.as_mut()]
                        .into_iter()
                        .flatten()
                    {
                        let _ = trace.masked_fill_(&cells, 0.0);
                    }
                }
                let modulated = self.modulate(&record.h);
                let big_m = modulated.as_ref().map(|(_, big_m)| big_m);
                let factors = self.kernel_factors(&record.h, big_m);
                let mut dpre = Tensor::zeros([b, h], opts);
                let (dh_update, dfactor) = self.backward_update(
                    t,
                    record,
                    &factors,
                    modulated.as_ref(),
                    &mut grads,
                    &mut dpre,
                );
                let dh_t = grad_h.get(t as i64) + &dh + dh_update;
                // tanh'(a) = 1 − h².
                let da = dh_t * (-record.h.square() + 1.0);
                let draw = if per_connection {
                    da.shallow_clone()
                } else {
                    &da * &alpha
                };
                self.backward_input(t, record, &factors, &draw, &mut grads, &mut dpre);
                dh = da.mm(&w) + dpre;
                das.push(da);
                dfactors.push(dfactor);
            }
        });
        if steps == 0 {
            return;
        }
        das.reverse();
        dfactors.reverse();
        let all = |f: fn(&Record) -> &Tensor| {
            Tensor::cat(&self.steps.iter().map(f).collect::<Vec<_>>(), 0)
        };
        let da = Tensor::cat(&das, 0);
        let hs = all(|r| &r.h);
        let mut surrogate =
            (self.core.fixed_input(&all(|r| &r.x), &all(|r| &r.pre)) * &da).sum(kind);
        let m = self.plasticity.modulator.as_ref().map(|m| m.forward(&hs));
        let graph = self.factor_graph(&hs, m.as_ref());
        assert_eq!(graph.len(), dfactors[0].len(), "one gradient per factor");
        for (k, factor) in graph.iter().enumerate() {
            let d = Tensor::cat(&dfactors.iter().map(|d| &d[k]).collect::<Vec<_>>(), 0);
            surrogate += (factor * d).sum(kind);
        }
        surrogate += match grads.alpha {
            Some(dalpha) => (&self.plasticity.alpha * dalpha).sum(kind),
            None => (&self.plasticity.alpha
                * (all(|r| &r.raw) * &da).sum_dim_intlist(0, false, kind))
            .sum(kind),
        };
        surrogate.backward();
    }

    /// The first backward pass over the traces of step `t`, then `dL/dh_t` through the
    /// factors. Returns that and the factors' gradients, in [`FusedTape::factor_graph`]'s
    /// order; writes `dpre`.
    fn backward_update(
        &self,
        t: usize,
        record: &Record,
        factors: &Factors,
        modulated: Option<&(Tensor, Tensor)>,
        grads: &mut BackwardCarry,
        dpre: &mut Tensor,
    ) -> (Tensor, Vec<Tensor>) {
        let kind = self.core.kind();
        let zeros = || record.h.zeros_like();
        match factors {
            Factors::Direct { keep, s } => {
                let want_dkeep = self.plasticity.rule != Rule::Hebb;
                let (mut ds, mut dkeep) = (zeros(), zeros());
                with_float!(kind, T => {
                    self.update::<T>(t, &record.pre, keep, s).backward_update(
                        data(&self.traces[t + 1]),
                        data_mut(&mut grads.hebb),
                        want_dkeep,
                        Rows3 {
                            ds: data_mut(&mut ds),
                            dkeep: data_mut(&mut dkeep),
                            dpre: data_mut(dpre),
                        },
                    );
                });
                let dh = self.factors_backward(&record.h, modulated, &ds, &dkeep);
                (
                    dh,
                    std::iter::once(ds)
                        .chain(want_dkeep.then_some(dkeep))
                        .collect(),
                )
            }
            Factors::Retroactive { m, keep, s } => {
                let (mut dm, mut ds, mut dkeep) = (zeros(), zeros(), zeros());
                let elig = grads.elig.as_mut().expect("retroactive tapes carry dL/dE");
                with_float!(kind, T => {
                    self.retro_update::<T>(t, &record.pre, m, keep, s).backward_update(
                        data(&self.traces[t + 1]),
                        data_mut(&mut grads.hebb),
                        data_mut(elig),
                        RetroRows {
                            dm: data_mut(&mut dm),
                            ds: data_mut(&mut ds),
                            dkeep: data_mut(&mut dkeep),
                            dpre: data_mut(dpre),
                        },
                    );
                });
                // s = η_E ⊙ h; keep = 1 − η_E does not depend on h.
                let eta_e = self.plasticity.eta_e.as_ref().expect("η_E exists here");
                let modulated = modulated.expect("the modulator exists here");
                let dh = &ds * eta_e.detach() + self.modulator_backward(modulated, &dm);
                (dh, vec![dm, ds, dkeep])
            }
        }
    }

    /// The second backward pass over the traces of step `t`, once the plastic input's
    /// gradient `draw` is known: takes `dL/dHebb` back to step `t − 1` and adds to `dpre` and
    /// to α's gradient. (Under retroactive modulation `dL/dE` went back in the first pass,
    /// and `Hebb_{t−1}` reaches `Hebb_t` whole: `keep` = 1.)
    fn backward_input(
        &self,
        t: usize,
        record: &Record,
        factors: &Factors,
        draw: &Tensor,
        grads: &mut BackwardCarry,
        dpre: &mut Tensor,
    ) {
        let (keep, s) = match factors {
            Factors::Direct { keep, s } => (keep.shallow_clone(), s),
            Factors::Retroactive { s, .. } => (record.h.ones_like(), s),
        };
        with_float!(self.core.kind(), T => {
            self.update::<T>(t, &record.pre, &keep, s).backward_input(
                data(draw),
                data_mut(&mut grads.hebb),
                data_mut(dpre),
                grads.alpha.as_mut().map(data_mut),
            );
        });
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

    /// `dL/dh` through the rule factors of post-synaptic activity `h` ([`Factors::Direct`]),
    /// given `dL/ds` and `dL/dkeep`: `s = r ⊙ h`; `keep` = 1 − r (`decay`) or 1 − r ⊙ h² (`oja`);
    /// and under neuromodulation the rate `r = M` ([`FusedTape::modulator_backward`]), with
    /// `modulated` = `(m, M)` ([`FusedTape::modulate`]).
    fn factors_backward(
        &self,
        h: &Tensor,
        modulated: Option<&(Tensor, Tensor)>,
        ds: &Tensor,
        dkeep: &Tensor,
    ) -> Tensor {
        let p = self.plasticity;
        let rate = p.rate(modulated.map(|(_, big_m)| big_m));
        let mut dh = ds * rate;
        let mut drate = ds * h;
        match p.rule {
            Rule::Hebb => {}
            Rule::Decay => drate -= dkeep,
            Rule::Oja => {
                dh -= rate * h * dkeep * 2.0;
                drate -= h.square() * dkeep;
            }
        }
        match modulated {
            Some(modulated) => dh + self.modulator_backward(modulated, &drate),
            None => dh,
        }
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

    /// The clip bounds of the Hebbian trace: ±c for `hebb` and under retroactive modulation
    /// (which always clips), none for the other rules.
    fn bounds<T: Float>(&self) -> (T, T) {
        let p = self.plasticity;
        let (lo, hi) = match (p.modulation, p.rule) {
            (Modulation::Retroactive, _) | (_, Rule::Hebb) => (-p.clip, p.clip),
            (_, Rule::Decay | Rule::Oja) => (f64::NEG_INFINITY, f64::INFINITY),
        };
        let float = |v: f64| T::from(v).expect("f32 and f64 hold every f64, rounded");
        (float(lo), float(hi))
    }

    /// The kernel's view of step `t` (0-based: from `traces[t]` to `traces[t + 1]`) for
    /// [`Factors::Direct`], and for the plastic input under [`Factors::Retroactive`].
    fn update<'s, T: Element + Float>(
        &'s self,
        t: usize,
        pre: &'s Tensor,
        keep: &'s Tensor,
        s: &'s Tensor,
    ) -> Update<'s, T> {
        let (lo, hi) = self.bounds();
        Update {
            h: self.core.hidden() as usize,
            prev: data(&self.traces[t]),
            pre: data(pre),
            keep: data(keep),
            s: data(s),
            alpha: data(&self.kernel_alpha),
            lo,
            hi,
        }
    }

    /// The kernel's view of step `t` (from `traces[t]` and `eligs[t]`) for
    /// [`Factors::Retroactive`].
    fn retro_update<'s, T: Element + Float>(
        &'s self,
        t: usize,
        pre: &'s Tensor,
        m: &'s Tensor,
        keep: &'s Tensor,
        s: &'s Tensor,
    ) -> RetroUpdate<'s, T> {
        let (lo, hi) = self.bounds();
        RetroUpdate {
            h: self.core.hidden() as usize,
            prev: data(&self.traces[t]),
            elig: data(&self.eligs[t]),
            pre: data(pre),
            m: data(m),
            keep: data(keep),
            s: data(s),
            alpha: data(&self.kernel_alpha),
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
