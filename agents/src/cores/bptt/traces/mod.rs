//! One step's passes over the traces, for [`super::fused`], on whatever device the core is:
//! the hand-written loops of [`cpu`] on the CPU, the same arithmetic as
//! libtorch operations elsewhere (CUDA). Both keep only the traces themselves for the
//! backward pass; the libtorch version makes a few trace-sized temporaries along the way
//! (updating the buffers it owns in place where it can), freed before the next step, so
//! memory still grows as one trace per step (two under retroactive modulation).
mod cpu;

use cpu::{RetroRows, RetroUpdate, Rows3, Update};
use tch::kind::Element;
use tch::{Device, Kind, Tensor};

/// What the passes read at one step besides the traces: `[B × H]` each, contiguous.
pub(super) enum Factors {
    /// `Hebb_t = clamp(keep ⊙ Hebb_{t−1} + s ⊗ h_{t−1})`: no neuromodulation, or `simple`.
    /// `keep` is `None` for `hebb`, which keeps the whole trace.
    Direct { keep: Option<Tensor>, s: Tensor },
    /// Retroactive modulation: `m` writes `E_{t−1}` into `Hebb`; `E` keeps `keep` of itself
    /// and adds `s ⊗ h_{t−1}`.
    Retroactive { m: Tensor, keep: Tensor, s: Tensor },
}

/// The gradients of one step's factors from [`TraceStep::backward_update`], `[B × H]` each.
pub(super) struct FactorGrads {
    pub ds: Tensor,
    /// `dL/dkeep`: for every rule but `hebb`, which keeps the whole trace, and under
    /// retroactive modulation.
    pub dkeep: Option<Tensor>,
    /// `dL/dm` (retroactive modulation).
    pub dm: Option<Tensor>,
    /// `dL/dh_{t−1}` through the trace updates; the plastic input's part is added by
    /// [`TraceStep::backward_input`].
    pub dpre: Tensor,
}

/// How the passes are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    /// The loops of [`cpu`] (CPU tensors only).
    Loops,
    /// libtorch operations (any device).
    Ops,
}

impl Backend {
    pub fn for_device(device: Device) -> Self {
        match device {
            Device::Cpu => Self::Loops,
            _ => Self::Ops,
        }
    }
}

/// Step `t` (from `Hebb_{t−1}`, `E_{t−1}` to `Hebb_t`, `E_t`).
pub(super) struct TraceStep<'a> {
    pub backend: Backend,
    /// `Hebb_{t−1}`, `[B × H × H]`.
    pub prev: &'a Tensor,
    /// `E_{t−1}` (retroactive modulation).
    pub elig: Option<&'a Tensor>,
    /// `h_{t−1}`, `[B × H]`.
    pub pre: &'a Tensor,
    pub factors: &'a Factors,
    /// α per connection, `[H × H]`; `None` when α is per neuron and applied to the plastic
    /// input outside these passes.
    pub alpha: Option<&'a Tensor>,
    /// Clip bounds of the Hebbian trace (infinite for unclipped rules).
    pub lo: f64,
    pub hi: f64,
}

/// The elements of a contiguous CPU tensor of element type `T`.
fn data<T: Element>(t: &Tensor) -> &[T] {
    check::<T>(t);
    // SAFETY: the tensor is a contiguous CPU tensor of `numel` elements of type `T` (checked),
    // and the borrow keeps its storage alive.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const T, t.numel()) }
}

/// [`data`], writable. Only for tensors this module's callers allocated and share with no one.
fn data_mut<T: Element>(t: &mut Tensor) -> &mut [T] {
    check::<T>(t);
    // SAFETY: as in `data`; the exclusive borrow stands for exclusive use of the storage,
    // which holds because the callers pass freshly allocated, unshared tensors.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut T, t.numel()) }
}

fn check<T: Element>(t: &Tensor) {
    assert!(
        t.device() == Device::Cpu && t.kind() == T::KIND && t.is_contiguous(),
        "trace pass input must be a contiguous CPU {:?} tensor, got {:?} {:?}",
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

/// `Σ_j α[i,j] trace[b,i,j] h[b,j]` (α = 1 when `None`), `[B × H]`.
pub(super) fn plastic_input(trace: &Tensor, alpha: Option<&Tensor>, h: &Tensor) -> Tensor {
    let weighted = match alpha {
        Some(alpha) => trace * alpha,
        None => trace.shallow_clone(),
    };
    (weighted * h.unsqueeze(1)).sum_dim_intlist(2, false, None::<Kind>)
}

/// `Σ_j a[b,i,j] v[b,j]`, `[B × H]`.
fn row_dot(a: &Tensor, v: &Tensor) -> Tensor {
    (a * v.unsqueeze(1)).sum_dim_intlist(2, false, None::<Kind>)
}

impl TraceStep<'_> {
    fn uses_loops(&self) -> bool {
        self.backend == Backend::Loops
    }

    fn clipped(&self) -> bool {
        self.lo.is_finite() || self.hi.is_finite()
    }

    /// Clamps a new Hebbian trace in place, where the rule clips.
    fn clip_(&self, next: &mut Tensor) {
        if self.clipped() {
            let _ = next.clamp_(self.lo, self.hi);
        }
    }

    /// Turns `dL/dHebb_t` into the gradient of the unclipped trace in place: 0 where the
    /// clipped trace `next` sits on a bound (`hardtanh`'s rule; a select, so a non-finite
    /// gradient there is dropped too, as by the loops and autograd).
    fn unclip_grad_(&self, grad: &mut Tensor, next: &Tensor) {
        if self.clipped() {
            let outside = next.le(self.lo).logical_or(&next.ge(self.hi));
            let _ = grad.masked_fill_(&outside, 0.0);
        }
    }

    fn float<T: num_traits::Float>(v: f64) -> T {
        T::from(v).expect("f32 and f64 hold every f64, rounded")
    }

    /// The loops' view of this step, with `keep` for the rule's (ones when `None`).
    fn update<T: Element + num_traits::Float, R>(
        &self,
        keep: Option<&Tensor>,
        s: &Tensor,
        f: impl FnOnce(Update<'_, T>) -> R,
    ) -> R {
        let h = self.prev.size()[1];
        let ones = || self.pre.ones_like();
        let keep = keep.map_or_else(ones, Tensor::shallow_clone);
        let alpha = self.alpha.map_or_else(
            || Tensor::ones([h, h], (self.prev.kind(), self.prev.device())),
            Tensor::shallow_clone,
        );
        f(Update {
            h: h as usize,
            prev: data(self.prev),
            pre: data(self.pre),
            keep: data(&keep),
            s: data(s),
            alpha: data(&alpha),
            lo: Self::float(self.lo),
            hi: Self::float(self.hi),
        })
    }

    /// The loops' view of this step under retroactive modulation.
    fn retro_update<T: Element + num_traits::Float, R>(
        &self,
        (m, keep, s): (&Tensor, &Tensor, &Tensor),
        f: impl FnOnce(RetroUpdate<'_, T>) -> R,
    ) -> R {
        let elig = self
            .elig
            .expect("retroactive steps have an eligibility trace");
        self.update(Some(keep), s, |base| {
            f(RetroUpdate {
                base,
                elig: data(elig),
                m: data(m),
            })
        })
    }

    /// `(Hebb_t, E_t, raw)`: the new traces and the next step's plastic input
    /// `Σ_j α[i,j] Hebb_t[i,j] post_j` (`post` = `h_t`).
    pub fn forward(&self, post: &Tensor) -> (Tensor, Option<Tensor>, Tensor) {
        let kind = self.prev.kind();
        match self.factors {
            Factors::Direct { keep, s } if self.uses_loops() => {
                let (mut next, mut raw) = (self.prev.empty_like(), post.empty_like());
                with_float!(kind, T => self.update::<T, _>(keep.as_ref(), s, |u| u.forward(
                    data(post),
                    data_mut(&mut next),
                    data_mut(&mut raw),
                )));
                (next, None, raw)
            }
            Factors::Direct { keep, s } => {
                let kept = match keep {
                    Some(keep) => self.prev * keep.unsqueeze(2),
                    None => self.prev.shallow_clone(),
                };
                let mut next = kept.addcmul(&s.unsqueeze(2), &self.pre.unsqueeze(1));
                self.clip_(&mut next);
                let raw = plastic_input(&next, self.alpha, post);
                (next, None, raw)
            }
            Factors::Retroactive { m, keep, s } => {
                let elig = self
                    .elig
                    .expect("retroactive steps have an eligibility trace");
                if self.uses_loops() {
                    let (mut next, mut raw) = (self.prev.empty_like(), post.empty_like());
                    let mut next_elig = elig.empty_like();
                    with_float!(kind, T => self.retro_update::<T, _>((m, keep, s), |u| u.forward(
                        data(post),
                        data_mut(&mut next),
                        data_mut(&mut next_elig),
                        data_mut(&mut raw),
                    )));
                    return (next, Some(next_elig), raw);
                }
                let mut next = self.prev.addcmul(&m.unsqueeze(2), elig);
                self.clip_(&mut next);
                let next_elig =
                    (elig * keep.unsqueeze(2)).addcmul(&s.unsqueeze(2), &self.pre.unsqueeze(1));
                let raw = plastic_input(&next, self.alpha, post);
                (next, Some(next_elig), raw)
            }
        }
    }

    /// First backward pass, given `Hebb_t` (`next`). `grad` holds `dL/dHebb_t` and becomes
    /// the gradient `G` of the unclipped trace; under retroactive modulation `grad_elig` goes
    /// from `GE = dL/dE_t` to `dL/dE_{t−1} = keep ⊙ GE + m ⊙ G`.
    pub fn backward_update(
        &self,
        next: &Tensor,
        grad: &mut Tensor,
        grad_elig: Option<&mut Tensor>,
    ) -> FactorGrads {
        let zeros = || self.pre.zeros_like();
        let kind = self.prev.kind();
        match (self.factors, grad_elig) {
            (Factors::Direct { keep, s }, _) if self.uses_loops() => {
                let want_dkeep = keep.is_some();
                let (mut ds, mut dkeep, mut dpre) = (zeros(), zeros(), zeros());
                with_float!(kind, T => self.update::<T, _>(keep.as_ref(), s, |u| u.backward_update(
                    data(next),
                    data_mut(grad),
                    want_dkeep,
                    Rows3 {
                        ds: data_mut(&mut ds),
                        dkeep: data_mut(&mut dkeep),
                        dpre: data_mut(&mut dpre),
                    },
                )));
                FactorGrads {
                    ds,
                    dkeep: want_dkeep.then_some(dkeep),
                    dm: None,
                    dpre,
                }
            }
            (Factors::Direct { keep, s }, _) => {
                self.unclip_grad_(grad, next);
                FactorGrads {
                    ds: row_dot(grad, self.pre),
                    dkeep: keep
                        .as_ref()
                        .map(|_| (&*grad * self.prev).sum_dim_intlist(2, false, kind)),
                    dm: None,
                    dpre: (&*grad * s.unsqueeze(2)).sum_dim_intlist(1, false, kind),
                }
            }
            (Factors::Retroactive { m, keep, s }, Some(grad_elig)) => {
                let elig = self
                    .elig
                    .expect("retroactive steps have an eligibility trace");
                if self.uses_loops() {
                    let (mut dm, mut ds, mut dkeep, mut dpre) =
                        (zeros(), zeros(), zeros(), zeros());
                    with_float!(kind, T => self.retro_update::<T, _>((m, keep, s), |u| u.backward_update(
                        data(next),
                        data_mut(grad),
                        data_mut(grad_elig),
                        RetroRows {
                            dm: data_mut(&mut dm),
                            ds: data_mut(&mut ds),
                            dkeep: data_mut(&mut dkeep),
                            dpre: data_mut(&mut dpre),
                        },
                    )));
                    return FactorGrads {
                        ds,
                        dkeep: Some(dkeep),
                        dm: Some(dm),
                        dpre,
                    };
                }
                self.unclip_grad_(grad, next);
                let grads = FactorGrads {
                    ds: row_dot(grad_elig, self.pre),
                    dkeep: Some((&*grad_elig * elig).sum_dim_intlist(2, false, kind)),
                    dm: Some((&*grad * elig).sum_dim_intlist(2, false, kind)),
                    dpre: (&*grad_elig * s.unsqueeze(2)).sum_dim_intlist(1, false, kind),
                };
                *grad_elig *= keep.unsqueeze(2);
                let _ = grad_elig.addcmul_(grad, &m.unsqueeze(2));
                grads
            }
            (Factors::Retroactive { .. }, None) => {
                unreachable!("retroactive steps carry the eligibility trace's gradient")
            }
        }
    }

    /// Second backward pass, once the plastic input's gradient `draw` (`[B × H]`) is known:
    /// `grad` goes from `G` to `dL/dHebb_{t−1} = keep ⊙ G + draw_i α[i,j] pre_j` (keep = 1
    /// for `hebb` and under retroactive modulation, where the eligibility trace's gradient
    /// went back in the first pass); adds `Σ_i draw_i α[i,j] Hebb_{t−1}[i,j]` to `dpre` and
    /// `Σ_b draw_i Hebb_{t−1}[i,j] pre_j` to `dalpha` (α per connection).
    pub fn backward_input(
        &self,
        draw: &Tensor,
        grad: &mut Tensor,
        dpre: &mut Tensor,
        dalpha: Option<&mut Tensor>,
    ) {
        let (keep, s) = match self.factors {
            Factors::Direct { keep, s } => (keep.as_ref(), s),
            Factors::Retroactive { s, .. } => (None, s),
        };
        let kind = self.prev.kind();
        if self.uses_loops() {
            with_float!(kind, T => self.update::<T, _>(keep, s, |u| u.backward_input(
                data(draw),
                data_mut(grad),
                data_mut(dpre),
                dalpha.map(data_mut),
            )));
            return;
        }
        let draw_alpha = match self.alpha {
            Some(alpha) => draw.unsqueeze(2) * alpha,
            None => draw.unsqueeze(2),
        };
        *dpre += (&draw_alpha * self.prev).sum_dim_intlist(1, false, kind);
        if let Some(dalpha) = dalpha {
            *dalpha += (draw.unsqueeze(2) * self.prev * self.pre.unsqueeze(1))
                .sum_dim_intlist(0, false, kind);
        }
        if let Some(keep) = keep {
            *grad *= keep.unsqueeze(2);
        }
        let _ = grad.addcmul_(&draw_alpha, &self.pre.unsqueeze(1));
    }
}

#[cfg(test)]
mod tests {
    //! The libtorch operations against the loops (which `tests/fused.rs` checks against
    //! autograd), pass by pass, on the CPU: every factor kind, the clip active.
    use super::*;

    const B: i64 = 3;
    const H: i64 = 11;

    fn uniform(dims: &[i64], lo: f64, hi: f64) -> Tensor {
        Tensor::rand(dims, (Kind::Double, Device::Cpu)) * (hi - lo) + lo
    }

    fn assert_close(what: &str, a: &Tensor, b: &Tensor) {
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(
            diff < 1e-12,
            "{what}: loops and operations differ by {diff:e}"
        );
    }

    fn assert_close_opt(what: &str, a: &Option<Tensor>, b: &Option<Tensor>) {
        match (a, b) {
            (Some(a), Some(b)) => assert_close(what, a, b),
            (None, None) => {}
            _ => panic!("{what}: present in one backend only"),
        }
    }

    /// Runs every pass with both backends on the same random inputs; `per_connection`: α per
    /// connection (and its gradient) or per neuron (applied outside the passes).
    fn check(factors: &Factors, retroactive: bool, (lo, hi): (f64, f64), per_connection: bool) {
        let prev = uniform(&[B, H, H], -0.06, 0.06);
        let elig = retroactive.then(|| uniform(&[B, H, H], -0.1, 0.1));
        let (pre, post) = (uniform(&[B, H], -1.0, 1.0), uniform(&[B, H], -1.0, 1.0));
        let alpha = per_connection.then(|| uniform(&[H, H], -1.0, 1.0));
        let (grad, grad_elig) = (
            uniform(&[B, H, H], -1.0, 1.0),
            uniform(&[B, H, H], -1.0, 1.0),
        );
        let (draw, dalpha) = (uniform(&[B, H], -1.0, 1.0), uniform(&[H, H], -1.0, 1.0));
        let run = |backend| {
            let step = TraceStep {
                backend,
                prev: &prev,
                elig: elig.as_ref(),
                pre: &pre,
                factors,
                alpha: alpha.as_ref(),
                lo,
                hi,
            };
            let (next, next_elig, raw) = step.forward(&post);
            let (mut g, mut ge) = (grad.copy(), retroactive.then(|| grad_elig.copy()));
            let mut fg = step.backward_update(&next, &mut g, ge.as_mut());
            let mut da = per_connection.then(|| dalpha.copy());
            step.backward_input(&draw, &mut g, &mut fg.dpre, da.as_mut());
            (next, next_elig, raw, g, ge, fg, da)
        };
        let (loops, ops) = (run(Backend::Loops), run(Backend::Ops));
        let at_bound = loops.0.abs().ge(lo.abs().min(hi) - 1e-12).sum(Kind::Int64);
        assert!(
            !lo.is_finite() || at_bound.int64_value(&[]) > 0,
            "the clip is never reached"
        );
        assert_close("Hebb_t", &loops.0, &ops.0);
        assert_close_opt("E_t", &loops.1, &ops.1);
        assert_close("plastic input", &loops.2, &ops.2);
        assert_close("dL/dHebb_{t-1}", &loops.3, &ops.3);
        assert_close_opt("dL/dE_{t-1}", &loops.4, &ops.4);
        assert_close("ds", &loops.5.ds, &ops.5.ds);
        assert_close_opt("dkeep", &loops.5.dkeep, &ops.5.dkeep);
        assert_close_opt("dm", &loops.5.dm, &ops.5.dm);
        assert_close("dpre", &loops.5.dpre, &ops.5.dpre);
        assert_close_opt("dalpha", &loops.6, &ops.6);
    }

    #[test]
    fn operations_match_the_loops_for_every_kind_of_step() {
        tch::manual_seed(3);
        let row = || uniform(&[B, H], -0.9, 0.9);
        let clip = (-0.05, 0.05);
        for per_connection in [true, false] {
            // `hebb`, clipped, keeps the whole trace.
            let hebb = Factors::Direct {
                keep: None,
                s: row(),
            };
            check(&hebb, false, clip, per_connection);
            // `decay` or `oja`: unclipped, keeps a share per row.
            let decay = Factors::Direct {
                keep: Some(uniform(&[B, H], 0.5, 1.0)),
                s: row(),
            };
            let unclipped = (f64::NEG_INFINITY, f64::INFINITY);
            check(&decay, false, unclipped, per_connection);
            let retroactive = Factors::Retroactive {
                m: row(),
                keep: uniform(&[B, H], 0.2, 0.9),
                s: row(),
            };
            check(&retroactive, true, clip, per_connection);
        }
    }
}
