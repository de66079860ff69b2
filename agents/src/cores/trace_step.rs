//! One step's passes over the traces, for [`super::fused`], on whatever device the core is:
//! the hand-written loops of [`super::trace_kernel`] on the CPU, the same arithmetic as
//! libtorch operations elsewhere (CUDA). Both keep only the traces themselves for the
//! backward pass; the libtorch version makes more trace-sized temporaries along the way, but
//! frees each before the next step, so memory still grows as one trace per step (two under
//! retroactive modulation).
use super::trace_kernel::{RetroRows, RetroUpdate, Rows3, Update};
use tch::kind::Element;
use tch::{Device, Kind, Tensor};

/// What the passes read at one step besides the traces: `[B × H]` each, contiguous.
pub(super) enum Factors {
    /// `Hebb_t = clamp(keep ⊙ Hebb_{t−1} + s ⊗ h_{t−1})`: no neuromodulation, or `simple`.
    Direct { keep: Tensor, s: Tensor },
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
    /// The loops of [`super::trace_kernel`] (CPU tensors only).
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
    /// The α the passes read, `[H × H]`: per connection, or ones when α is per neuron.
    pub alpha: &'a Tensor,
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

/// `Σ_j α[i,j] trace[b,i,j] h[b,j]`, `[B × H]`.
fn plastic_input(trace: &Tensor, alpha: &Tensor, h: &Tensor) -> Tensor {
    (trace * alpha * h.unsqueeze(1)).sum_dim_intlist(2, false, None::<Kind>)
}

/// `G` where the clipped trace `next` lies strictly inside its bounds, 0 where it sits on one
/// (`hardtanh`'s rule).
fn unclipped_grad(grad: &Tensor, next: &Tensor, lo: f64, hi: f64) -> Tensor {
    let inside = next.gt(lo).logical_and(&next.lt(hi));
    grad * inside
}

/// `Σ_j a[b,i,j] v[b,j]`, `[B × H]`.
fn row_dot(a: &Tensor, v: &Tensor) -> Tensor {
    (a * v.unsqueeze(1)).sum_dim_intlist(2, false, None::<Kind>)
}

impl TraceStep<'_> {
    fn on_cpu(&self) -> bool {
        self.backend == Backend::Loops
    }

    fn float<T: num_traits::Float>(v: f64) -> T {
        T::from(v).expect("f32 and f64 hold every f64, rounded")
    }

    fn update<'s, T: Element + num_traits::Float>(
        &'s self,
        keep: &'s Tensor,
        s: &'s Tensor,
    ) -> Update<'s, T> {
        Update {
            h: self.prev.size()[1] as usize,
            prev: data(self.prev),
            pre: data(self.pre),
            keep: data(keep),
            s: data(s),
            alpha: data(self.alpha),
            lo: Self::float(self.lo),
            hi: Self::float(self.hi),
        }
    }

    fn retro_update<'s, T: Element + num_traits::Float>(
        &'s self,
        m: &'s Tensor,
        keep: &'s Tensor,
        s: &'s Tensor,
    ) -> RetroUpdate<'s, T> {
        RetroUpdate {
            h: self.prev.size()[1] as usize,
            prev: data(self.prev),
            elig: data(
                self.elig
                    .expect("retroactive steps have an eligibility trace"),
            ),
            pre: data(self.pre),
            m: data(m),
            keep: data(keep),
            s: data(s),
            alpha: data(self.alpha),
            lo: Self::float(self.lo),
            hi: Self::float(self.hi),
        }
    }

    /// `(Hebb_t, E_t, raw)`: the new traces and the next step's plastic input
    /// `Σ_j α[i,j] Hebb_t[i,j] post_j` (`post` = `h_t`).
    pub fn forward(&self, post: &Tensor) -> (Tensor, Option<Tensor>, Tensor) {
        let kind = self.prev.kind();
        let mut next = self.prev.empty_like();
        let mut raw = post.empty_like();
        match self.factors {
            Factors::Direct { keep, s } if self.on_cpu() => {
                with_float!(kind, T => self.update::<T>(keep, s).forward(
                    data(post),
                    data_mut(&mut next),
                    data_mut(&mut raw),
                ));
                (next, None, raw)
            }
            Factors::Direct { keep, s } => {
                let next = (self.prev * keep.unsqueeze(2))
                    .addcmul(&s.unsqueeze(2), &self.pre.unsqueeze(1))
                    .clamp(self.lo, self.hi);
                let raw = plastic_input(&next, self.alpha, post);
                (next, None, raw)
            }
            Factors::Retroactive { m, keep, s } => {
                let elig = self
                    .elig
                    .expect("retroactive steps have an eligibility trace");
                if self.on_cpu() {
                    let mut next_elig = elig.empty_like();
                    with_float!(kind, T => self.retro_update::<T>(m, keep, s).forward(
                        data(post),
                        data_mut(&mut next),
                        data_mut(&mut next_elig),
                        data_mut(&mut raw),
                    ));
                    return (next, Some(next_elig), raw);
                }
                let next = self
                    .prev
                    .addcmul(&m.unsqueeze(2), elig)
                    .clamp(self.lo, self.hi);
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
        want_dkeep: bool,
    ) -> FactorGrads {
        let zeros = || self.pre.zeros_like();
        let kind = self.prev.kind();
        match (self.factors, grad_elig) {
            (Factors::Direct { keep, s }, _) if self.on_cpu() => {
                let (mut ds, mut dkeep, mut dpre) = (zeros(), zeros(), zeros());
                with_float!(kind, T => self.update::<T>(keep, s).backward_update(
                    data(next),
                    data_mut(grad),
                    want_dkeep,
                    Rows3 {
                        ds: data_mut(&mut ds),
                        dkeep: data_mut(&mut dkeep),
                        dpre: data_mut(&mut dpre),
                    },
                ));
                FactorGrads {
                    ds,
                    dkeep: want_dkeep.then_some(dkeep),
                    dm: None,
                    dpre,
                }
            }
            (Factors::Direct { s, .. }, _) => {
                *grad = unclipped_grad(grad, next, self.lo, self.hi);
                FactorGrads {
                    ds: row_dot(grad, self.pre),
                    dkeep: want_dkeep.then(|| (&*grad * self.prev).sum_dim_intlist(2, false, kind)),
                    dm: None,
                    dpre: (&*grad * s.unsqueeze(2)).sum_dim_intlist(1, false, kind),
                }
            }
            (Factors::Retroactive { m, keep, s }, Some(grad_elig)) => {
                let elig = self
                    .elig
                    .expect("retroactive steps have an eligibility trace");
                if self.on_cpu() {
                    let (mut dm, mut ds, mut dkeep, mut dpre) =
                        (zeros(), zeros(), zeros(), zeros());
                    with_float!(kind, T => self.retro_update::<T>(m, keep, s).backward_update(
                        data(next),
                        data_mut(grad),
                        data_mut(grad_elig),
                        RetroRows {
                            dm: data_mut(&mut dm),
                            ds: data_mut(&mut ds),
                            dkeep: data_mut(&mut dkeep),
                            dpre: data_mut(&mut dpre),
                        },
                    ));
                    return FactorGrads {
                        ds,
                        dkeep: Some(dkeep),
                        dm: Some(dm),
                        dpre,
                    };
                }
                *grad = unclipped_grad(grad, next, self.lo, self.hi);
                let grads = FactorGrads {
                    ds: row_dot(grad_elig, self.pre),
                    dkeep: Some((&*grad_elig * elig).sum_dim_intlist(2, false, kind)),
                    dm: Some((&*grad * elig).sum_dim_intlist(2, false, kind)),
                    dpre: (&*grad_elig * s.unsqueeze(2)).sum_dim_intlist(1, false, kind),
                };
                *grad_elig = (&*grad_elig * keep.unsqueeze(2)).addcmul(grad, &m.unsqueeze(2));
                grads
            }
            (Factors::Retroactive { .. }, None) => {
                unreachable!("retroactive steps carry the eligibility trace's gradient")
            }
        }
    }

    /// Second backward pass, once the plastic input's gradient `draw` (`[B × H]`) is known:
    /// `grad` goes from `G` to `dL/dHebb_{t−1} = keep ⊙ G + draw_i α[i,j] pre_j` (keep = 1
    /// under retroactive modulation, where the eligibility trace's gradient went back in the
    /// first pass); adds `Σ_i draw_i α[i,j] Hebb_{t−1}[i,j]` to `dpre` and
    /// `Σ_b draw_i Hebb_{t−1}[i,j] pre_j` to `dalpha` (α per connection).
    pub fn backward_input(
        &self,
        draw: &Tensor,
        grad: &mut Tensor,
        dpre: &mut Tensor,
        dalpha: Option<&mut Tensor>,
    ) {
        let (keep, s) = match self.factors {
            Factors::Direct { keep, s } => (keep.shallow_clone(), s),
            Factors::Retroactive { s, .. } => (draw.ones_like(), s),
        };
        if self.on_cpu() {
            with_float!(self.prev.kind(), T => self.update::<T>(&keep, s).backward_input(
                data(draw),
                data_mut(grad),
                data_mut(dpre),
                dalpha.map(data_mut),
            ));
            return;
        }
        let kind = self.prev.kind();
        let draw_alpha = draw.unsqueeze(2) * self.alpha;
        *dpre += (&draw_alpha * self.prev).sum_dim_intlist(1, false, kind);
        if let Some(dalpha) = dalpha {
            *dalpha += (draw.unsqueeze(2) * self.prev * self.pre.unsqueeze(1))
                .sum_dim_intlist(0, false, kind);
        }
        *grad = (&*grad * keep.unsqueeze(2)).addcmul(&draw_alpha, &self.pre.unsqueeze(1));
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

    fn check(factors: &Factors, retroactive: bool, (lo, hi): (f64, f64), want_dkeep: bool) {
        let prev = uniform(&[B, H, H], -0.06, 0.06);
        let elig = retroactive.then(|| uniform(&[B, H, H], -0.1, 0.1));
        let (pre, post) = (uniform(&[B, H], -1.0, 1.0), uniform(&[B, H], -1.0, 1.0));
        let alpha = uniform(&[H, H], -1.0, 1.0);
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
                alpha: &alpha,
                lo,
                hi,
            };
            let (next, next_elig, raw) = step.forward(&post);
            let (mut g, mut ge) = (grad.copy(), retroactive.then(|| grad_elig.copy()));
            let mut fg = step.backward_update(&next, &mut g, ge.as_mut(), want_dkeep);
            let mut da = dalpha.copy();
            step.backward_input(&draw, &mut g, &mut fg.dpre, Some(&mut da));
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
        assert_close("dalpha", &loops.6, &ops.6);
    }

    #[test]
    fn operations_match_the_loops_for_every_kind_of_step() {
        tch::manual_seed(3);
        let row = || uniform(&[B, H], -0.9, 0.9);
        let clip = (-0.05, 0.05);
        let ones = Tensor::ones([B, H], (Kind::Double, Device::Cpu));
        // `hebb`, clipped, keeps the whole trace.
        let hebb = Factors::Direct {
            keep: ones,
            s: row(),
        };
        check(&hebb, false, clip, false);
        // `decay` or `oja`: unclipped, keeps a share per row.
        let decay = Factors::Direct {
            keep: uniform(&[B, H], 0.5, 1.0),
            s: row(),
        };
        check(&decay, false, (f64::NEG_INFINITY, f64::INFINITY), true);
        let retroactive = Factors::Retroactive {
            m: row(),
            keep: uniform(&[B, H], 0.2, 0.9),
            s: row(),
        };
        check(&retroactive, true, clip, true);
    }
}
