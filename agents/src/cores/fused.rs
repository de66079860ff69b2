//! Backpropagation through time for a plastic RNN on the CPU, written by hand around the
//! traces.
//!
//! The forward pass runs without autograd and keeps, per step, only what the backward pass
//! cannot rebuild cheaply: the trace `Hebb_t` (`[B × H × H]`) and four `[B × H]` vectors (the
//! input, `h_{t−1}`, the plastic input, `h_t`). Going backwards, everything that touches the
//! traces goes through the passes of [`super::trace_kernel`], and the per-neuron part of each
//! step (tanh, rule factors, modulator) is differentiated by hand. Gradients with respect to
//! the parameters are sums over steps, so they come from one autograd call over all steps at
//! the end. Memory is one trace per step (B·H²·T in all) instead of autograd's three.
//!
//! Covers plastic RNNs with any rule, α and η shape, without neuromodulation or with `simple`
//! neuromodulation (any modulator shape): [`super::tape::Engine::fused_unsupported`].
use super::plasticity::rule_factors;
use super::trace_kernel::{Rows3, Update};
use super::{AlphaShape, Core, Plasticity, Rule, State};
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
    h: Tensor,
    raw: Tensor,
    modulator: Option<Tensor>,
    steps: Vec<Record>,
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
        let pre = state.h.detach().contiguous();
        let raw = tch::no_grad(|| {
            (&hebb * &kernel_alpha * pre.unsqueeze(1)).sum_dim_intlist(2, false, None::<Kind>)
        });
        Self {
            core,
            plasticity,
            kernel_alpha,
            traces: vec![hebb],
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

    /// The rule factors `(keep, s)` of post-synaptic activity `h`, with the modulator's output
    /// `m` as the rate under neuromodulation.
    fn factors(&self, h: &Tensor, m: Option<&Tensor>) -> (Option<Tensor>, Tensor) {
        rule_factors(self.plasticity.rule, self.plasticity.rate(m), h)
    }

    /// [`FusedTape::factors`] as the kernel reads them: `[B × H]`, contiguous, `keep` all
    /// ones for `hebb`.
    fn kernel_factors(&self, h: &Tensor, m: Option<&Tensor>) -> (Tensor, Tensor) {
        let (keep, s) = self.factors(h, m);
        let keep = keep.map_or_else(|| h.ones_like(), |k| k.expand(h.size(), false).contiguous());
        (keep, s.contiguous())
    }

    /// One step: returns `h_t` `[B × H]` (no autograd graph).
    pub fn step(&mut self, x: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let (h, m) = self.activate(x, &self.h, &self.raw);
            let (keep, s) = self.kernel_factors(&h, m.as_ref());
            let pre = self.h.contiguous();
            let prev = self.traces.last().expect("the tape starts with a trace");
            let mut next = prev.empty_like();
            let mut raw = h.empty_like();
            with_float!(self.core.kind(), T => {
                self.update::<T>(self.steps.len(), &pre, &keep, &s).forward(
                    data(&h),
                    data_mut(&mut next),
                    data_mut(&mut raw),
                );
            });
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
        let last = self
            .traces
            .last_mut()
            .expect("the tape starts with a trace");
        let _ = last.masked_fill_(&done.view([-1, 1, 1]), 0.0);
        if let Some(record) = self.steps.last_mut() {
            record.done = Some(rows);
        }
    }

    /// The current state. It shares the latest trace, which [`FusedTape::reset_rows`] zeroes
    /// in place: read it before resetting.
    pub fn state(&self) -> State {
        State {
            h: self.h.shallow_clone(),
            c: None,
            hebb: self.traces.last().map(Tensor::shallow_clone),
            elig: None,
            modulator: self.modulator.as_ref().map(Tensor::shallow_clone),
        }
    }

    /// Accumulates into the core's parameters' `.grad` the gradient of a loss whose
    /// derivative with respect to the outputs `h_1 … h_T` is `grad_h` (`[T × B × H]`).
    ///
    /// Going back step by step needs only the gradients with respect to the state. Those with
    /// respect to the parameters are sums over steps of per-step terms, so the loop keeps each
    /// step's gradients of its per-neuron quantities, and one autograd call on all steps at
    /// once turns them into parameter gradients at the end.
    pub fn backward(self, grad_h: &Tensor) {
        let kind = self.core.kind();
        let opts = (kind, self.core.device());
        let (b, h) = (self.h.size()[0], self.core.hidden());
        let per_connection = self.core.config().alpha == AlphaShape::PerConnection;
        let want_dkeep = self.plasticity.rule != Rule::Hebb;
        let w = self.core.w().detach();
        let alpha = self.plasticity.alpha.detach();
        let mut dhebb = Tensor::zeros([b, h, h], opts);
        let mut dh = Tensor::zeros([b, h], opts);
        let mut dalpha = per_connection.then(|| Tensor::zeros([h, h], opts));
        let steps = self.steps.len();
        // Per step: gradients of the pre-activation, of `s` and of `keep`.
        let (mut das, mut dss, mut dkeeps) = (
            Vec::with_capacity(steps),
            Vec::with_capacity(steps),
            Vec::with_capacity(steps),
        );
        // The parameters' graphs are built once, after the loop.
        tch::no_grad(|| {
            for (t, record) in self.steps.iter().enumerate().rev() {
                if let Some(rows) = &record.done {
                    // A reset cuts every gradient path through the state.
                    dh = dh.masked_fill(rows, 0.0);
                    let _ = dhebb.masked_fill_(&rows.unsqueeze(2), 0.0);
                }
                let modulated = self.modulate(&record.h);
                let rate_m = modulated.as_ref().map(|(_, big_m)| big_m);
                let (keep, s) = self.kernel_factors(&record.h, rate_m);
                let mut ds = Tensor::zeros([b, h], opts);
                let mut dkeep = Tensor::zeros([b, h], opts);
                let mut dpre = Tensor::zeros([b, h], opts);
                with_float!(kind, T => {
                    self.update::<T>(t, &record.pre, &keep, &s).backward_update(
                        data(&self.traces[t + 1]),
                        data_mut(&mut dhebb),
                        want_dkeep,
                        Rows3 {
                            ds: data_mut(&mut ds),
                            dkeep: data_mut(&mut dkeep),
                            dpre: data_mut(&mut dpre),
                        },
                    );
                });
                let dh_update = self.factors_backward(&record.h, modulated.as_ref(), &ds, &dkeep);
                let dh_t = grad_h.get(t as i64) + &dh + dh_update;
                // tanh'(a) = 1 − h².
                let da = dh_t * (-record.h.square() + 1.0);
                let draw = if per_connection {
                    da.shallow_clone()
                } else {
                    &da * &alpha
                };
                with_float!(kind, T => {
                    self.update::<T>(t, &record.pre, &keep, &s).backward_input(
                        data(&draw),
                        data_mut(&mut dhebb),
                        data_mut(&mut dpre),
                        dalpha.as_mut().map(data_mut),
                    );
                });
                dh = da.mm(&w) + dpre;
                das.push(da);
                dss.push(ds);
                dkeeps.push(dkeep);
            }
        });
        if steps == 0 {
            return;
        }
        for v in [&mut das, &mut dss, &mut dkeeps] {
            v.reverse();
        }
        let all = |f: fn(&Record) -> &Tensor| {
            Tensor::cat(&self.steps.iter().map(f).collect::<Vec<_>>(), 0)
        };
        let (da, ds, dkeep) = (
            Tensor::cat(&das, 0),
            Tensor::cat(&dss, 0),
            Tensor::cat(&dkeeps, 0),
        );
        let hs = all(|r| &r.h);
        let mut surrogate =
            (self.core.fixed_input(&all(|r| &r.x), &all(|r| &r.pre)) * &da).sum(kind);
        let m = self.plasticity.modulator.as_ref().map(|m| m.forward(&hs));
        let (keep, s) = self.factors(&hs, m.as_ref());
        surrogate += (s * ds).sum(kind);
        if let Some(k) = keep {
            surrogate += (k * dkeep).sum(kind);
        }
        surrogate += match dalpha {
            Some(dalpha) => (&self.plasticity.alpha * dalpha).sum(kind),
            None => (&self.plasticity.alpha
                * (all(|r| &r.raw) * &da).sum_dim_intlist(0, false, kind))
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

    /// `dL/dh` through the rule factors of post-synaptic activity `h` ([`FusedTape::factors`]),
    /// given `dL/ds` and `dL/dkeep`: `s = r ⊙ h`; `keep` = 1 − r (`decay`) or 1 − r ⊙ h² (`oja`);
    /// and under neuromodulation the rate `r = M = m (⊙ f)`, `m = tanh(w_M · h + b_M)`, with
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
        if let (Some((m, _)), Some(md)) = (modulated, &p.modulator) {
            let kind = h.kind();
            let dm = match &md.fan_out {
                Some(f) => (drate * f).sum_dim_intlist(1, true, kind),
                None => drate.sum_dim_intlist(1, true, kind),
            };
            // tanh' = 1 − m²; `[B × 1] · [1 × H]`.
            dh += (dm * (-m.square() + 1.0)).matmul(&md.w);
        }
        dh
    }

    /// The kernel's view of step `t + 1` (from `Hebb_t`).
    fn update<'s, T: Element + Float>(
        &'s self,
        t: usize,
        pre: &'s Tensor,
        keep: &'s Tensor,
        s: &'s Tensor,
    ) -> Update<'s, T> {
        let (lo, hi) = match self.plasticity.rule {
            Rule::Hebb => (-self.plasticity.clip, self.plasticity.clip),
            Rule::Decay | Rule::Oja => (f64::NEG_INFINITY, f64::INFINITY),
        };
        let float = |v: f64| T::from(v).expect("f32 and f64 hold every f64, rounded");
        Update {
            h: self.core.hidden() as usize,
            prev: data(&self.traces[t]),
            pre: data(pre),
            keep: data(keep),
            s: data(s),
            alpha: data(&self.kernel_alpha),
            lo: float(lo),
            hi: float(hi),
        }
    }
}
