//! One step's passes over the traces, for [`super::fused`], on whatever device the core is:
//! the hand-written loops of [`cpu`] on the CPU, the same arithmetic as
//! libtorch operations elsewhere (CUDA). Both keep only the traces themselves for the
//! backward pass; the libtorch version makes a few trace-sized temporaries along the way
//! (updating the buffers it owns in place where it can), freed before the next step, so
//! memory still grows as one trace per step (two under retroactive modulation).
pub(super) mod cpu;
pub(super) mod pool;
pub mod roofline;
mod team;

use cpu::{RetroRows, RetroUpdate, Rows3, Update};
use tch::kind::Element;
use tch::{Device, Kind, Tensor};

/// One step's factors of a rule that writes the Hebbian trace directly (no neuromodulation,
/// or `simple`): `Hebb_t = clamp(keep ⊙ Hebb_{t−1} + s ⊗ h_{t−1})`. `[B × H]` each, contiguous;
/// `keep` is `None` for rules that keep the whole trace (`hebb`).
pub(super) struct Factors {
    pub keep: Option<Tensor>,
    pub s: Tensor,
}

/// One step's factors under retroactive modulation: `m` writes `E_{t−1}` into `Hebb`; `E`
/// keeps `keep` of itself and adds `s ⊗ h_{t−1}`. `[B × H]` each, contiguous.
pub(super) struct RetroFactors {
    pub m: Tensor,
    pub keep: Tensor,
    pub s: Tensor,
}

/// The gradients of one step's [`Factors`] from [`TraceStep::backward_update`], `[B × H]`
/// each.
pub(super) struct FactorGrads {
    pub ds: Tensor,
    /// `dL/dkeep`, where the factors have a `keep`.
    pub dkeep: Option<Tensor>,
    /// `dL/dh_{t−1}` through the trace update; the plastic input's part is added by
    /// [`TraceStep::backward_input`].
    pub dpre: Tensor,
}

/// The gradients of one step's [`RetroFactors`] from
/// [`TraceStep::backward_update_retroactive`], `[B × H]` each.
pub(super) struct RetroGrads {
    pub dm: Tensor,
    pub ds: Tensor,
    pub dkeep: Tensor,
    /// As [`FactorGrads::dpre`].
    pub dpre: Tensor,
}

/// How the passes are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    /// The loops of [`cpu`] (CPU tensors only).
    Loops,
    /// libtorch operations (any device): `a2c.bptt = "fused"` off the CPU, and `"ops"`.
    Ops,
}

impl Backend {
    /// How many partial sums α's gradient (α per connection) is kept in through a backward
    /// pass over `batch` rows, `[G × H × H]`: the loops keep one per group of rows
    /// ([`cpu::group_rows`]), so that each group is summed by one thread in a fixed order;
    /// libtorch's operations keep one. [`sum_alpha_groups`] adds them up at the end.
    pub fn alpha_groups(self, batch: i64) -> i64 {
        match self {
            Self::Loops => cpu::alpha_groups(batch as usize) as i64,
            Self::Ops => 1,
        }
    }
}

/// α's gradient from its partial sums `[G × H × H]` ([`Backend::alpha_groups`]), added in
/// group order: the same numbers for any thread count.
pub(super) fn sum_alpha_groups(groups: &Tensor) -> Tensor {
    (1..groups.size()[0]).fold(groups.get(0), |sum, g| sum + groups.get(g))
}

/// Step `t` (from `Hebb_{t−1}`, `E_{t−1}` to `Hebb_t`, `E_t`). The factors, and under
/// retroactive modulation `E_{t−1}` and its gradient, are the arguments of each pass.
pub(super) struct TraceStep<'a> {
    pub backend: Backend,
    /// `Hebb_{t−1}`, `[B × H × H]`.
    pub prev: &'a Tensor,
    /// `h_{t−1}`, `[B × H]`.
    pub pre: &'a Tensor,
    /// α per connection, `[H × H]`; `None` when α is per neuron and applied to the plastic
    /// input outside these passes.
    pub alpha: Option<&'a Tensor>,
    /// Clip bounds of the Hebbian trace (infinite for unclipped rules).
    pub lo: f64,
    pub hi: f64,
}

/// The elements of a contiguous CPU tensor of element type `T`.
pub(super) fn data<T: Element>(t: &Tensor) -> &[T] {
    check::<T>(t);
    // SAFETY: the tensor is a contiguous CPU tensor of `numel` elements of type `T` (checked),
    // and the borrow keeps its storage alive.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const T, t.numel()) }
}

/// [`data`], writable. Only for tensors this module's callers allocated and share with no one.
pub(super) fn data_mut<T: Element>(t: &mut Tensor) -> &mut [T] {
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
    fn update<T: Element + num_traits::Float + Send + Sync, R>(
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
            ahead: None,
        })
    }

    /// The loops' view of this step under retroactive modulation, `elig` = `E_{t−1}`.
    fn retro_update<T: Element + num_traits::Float + Send + Sync, R>(
        &self,
        f: &RetroFactors,
        elig: &Tensor,
        body: impl FnOnce(RetroUpdate<'_, T>) -> R,
    ) -> R {
        self.update(Some(&f.keep), &f.s, |base| {
            body(RetroUpdate {
                base,
                elig: data(elig),
                m: data(&f.m),
            })
        })
    }

    /// `(Hebb_t, raw)`: the new trace and the next step's plastic input
    /// `Σ_j α[i,j] Hebb_t[i,j] post_j` (`post` = `h_t`).
    pub fn forward(&self, f: &Factors, post: &Tensor) -> (Tensor, Tensor) {
        let Factors { keep, s } = f;
        if self.uses_loops() {
            let (mut next, mut raw) = (self.prev.empty_like(), post.empty_like());
            with_float!(self.prev.kind(), T => self.update::<T, _>(keep.as_ref(), s, |u| u.forward(
                data(post),
                data_mut(&mut next),
                data_mut(&mut raw),
            )));
            return (next, raw);
        }
        let kept = match keep {
            Some(keep) => self.prev * keep.unsqueeze(2),
            None => self.prev.shallow_clone(),
        };
        let mut next = kept.addcmul(&s.unsqueeze(2), &self.pre.unsqueeze(1));
        self.clip_(&mut next);
        let raw = plastic_input(&next, self.alpha, post);
        (next, raw)
    }

    /// [`TraceStep::forward`] under retroactive modulation, from `elig` = `E_{t−1}`:
    /// `(Hebb_t, E_t, raw)`.
    pub fn forward_retroactive(
        &self,
        f: &RetroFactors,
        elig: &Tensor,
        post: &Tensor,
    ) -> (Tensor, Tensor, Tensor) {
        if self.uses_loops() {
            let (mut next, mut raw) = (self.prev.empty_like(), post.empty_like());
            let mut next_elig = elig.empty_like();
            with_float!(self.prev.kind(), T => self.retro_update::<T, _>(f, elig, |u| u.forward(
                data(post),
                data_mut(&mut next),
                data_mut(&mut next_elig),
                data_mut(&mut raw),
            )));
            return (next, next_elig, raw);
        }
        let RetroFactors { m, keep, s } = f;
        let mut next = self.prev.addcmul(&m.unsqueeze(2), elig);
        self.clip_(&mut next);
        let next_elig = (elig * keep.unsqueeze(2)).addcmul(&s.unsqueeze(2), &self.pre.unsqueeze(1));
        let raw = plastic_input(&next, self.alpha, post);
        (next, next_elig, raw)
    }

    /// First backward pass, given `Hebb_t` (`next`). `grad` holds `dL/dHebb_t` and becomes
    /// the gradient `G` of the unclipped trace.
    pub fn backward_update(&self, f: &Factors, next: &Tensor, grad: &mut Tensor) -> FactorGrads {
        let Factors { keep, s } = f;
        let kind = self.prev.kind();
        if self.uses_loops() {
            let zeros = || self.pre.zeros_like();
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
            return FactorGrads {
                ds,
                dkeep: want_dkeep.then_some(dkeep),
                dpre,
            };
        }
        self.unclip_grad_(grad, next);
        FactorGrads {
            ds: row_dot(grad, self.pre),
            dkeep: keep
                .as_ref()
                .map(|_| (&*grad * self.prev).sum_dim_intlist(2, false, kind)),
            dpre: (&*grad * s.unsqueeze(2)).sum_dim_intlist(1, false, kind),
        }
    }

    /// [`TraceStep::backward_update`] under retroactive modulation, from `elig` = `E_{t−1}`:
    /// besides `grad`, `grad_elig` goes from `GE = dL/dE_t` to
    /// `dL/dE_{t−1} = keep ⊙ GE + m ⊙ G`.
    pub fn backward_update_retroactive(
        &self,
        f: &RetroFactors,
        elig: &Tensor,
        next: &Tensor,
        grad: &mut Tensor,
        grad_elig: &mut Tensor,
    ) -> RetroGrads {
        let kind = self.prev.kind();
        if self.uses_loops() {
            let zeros = || self.pre.zeros_like();
            let (mut dm, mut ds, mut dkeep, mut dpre) = (zeros(), zeros(), zeros(), zeros());
            with_float!(kind, T => self.retro_update::<T, _>(f, elig, |u| u.backward_update(
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
            return RetroGrads {
                dm,
                ds,
                dkeep,
                dpre,
            };
        }
        let RetroFactors { m, keep, s } = f;
        self.unclip_grad_(grad, next);
        let grads = RetroGrads {
            ds: row_dot(grad_elig, self.pre),
            dkeep: (&*grad_elig * elig).sum_dim_intlist(2, false, kind),
            dm: (&*grad * elig).sum_dim_intlist(2, false, kind),
            dpre: (&*grad_elig * s.unsqueeze(2)).sum_dim_intlist(1, false, kind),
        };
        *grad_elig *= keep.unsqueeze(2);
        let _ = grad_elig.addcmul_(grad, &m.unsqueeze(2));
        grads
    }

    /// Second backward pass, once the plastic input's gradient `draw` (`[B × H]`) is known:
    /// `grad` goes from `G` to `dL/dHebb_{t−1} = keep ⊙ G + draw_i α[i,j] pre_j` (`keep` of
    /// [`Factors`]; `None`, that is 1, for `hebb` and under retroactive modulation, where the
    /// eligibility trace's gradient went back in the first pass; `s` is any `[B × H]` factor
    /// of the step, unused); adds `Σ_i draw_i α[i,j] Hebb_{t−1}[i,j]` to `dpre` and
    /// `Σ_b draw_i Hebb_{t−1}[i,j] pre_j` to `dalpha` (α per connection), in the partial sums
    /// of [`Backend::alpha_groups`].
    pub fn backward_input(
        &self,
        (keep, s): (Option<&Tensor>, &Tensor),
        draw: &Tensor,
        grad: &mut Tensor,
        dpre: &mut Tensor,
        dalpha: Option<&mut Tensor>,
    ) {
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
                .sum_dim_intlist(0, true, kind);
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

    // Enough rows that α's gradient is summed in several groups, the last one short.
    const B: i64 = 37;
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

    /// What one step's passes returned: `Hebb_t`, `E_t`, the plastic input, `dL/dHebb_{t−1}`,
    /// `dL/dE_{t−1}`, the factors' gradients (`ds`, `dkeep`, `dm`, `dpre`) and `dL/dα`.
    type Outputs = (
        Tensor,
        Option<Tensor>,
        Tensor,
        Tensor,
        Option<Tensor>,
        [Option<Tensor>; 4],
        Option<Tensor>,
    );

    /// The factors of one step, either kind.
    enum Step {
        Direct(Factors),
        Retroactive(RetroFactors),
    }

    /// Runs every pass with both backends on the same random inputs; `per_connection`: α per
    /// connection (and its gradient) or per neuron (applied outside the passes).
    fn check(factors: &Step, (lo, hi): (f64, f64), per_connection: bool) {
        let prev = uniform(&[B, H, H], -0.06, 0.06);
        let elig = uniform(&[B, H, H], -0.1, 0.1);
        let (pre, post) = (uniform(&[B, H], -1.0, 1.0), uniform(&[B, H], -1.0, 1.0));
        let alpha = per_connection.then(|| uniform(&[H, H], -1.0, 1.0));
        let (grad, grad_elig) = (
            uniform(&[B, H, H], -1.0, 1.0),
            uniform(&[B, H, H], -1.0, 1.0),
        );
        let draw = uniform(&[B, H], -1.0, 1.0);
        let run = |backend| -> Outputs {
            let step = TraceStep {
                backend,
                prev: &prev,
                pre: &pre,
                alpha: alpha.as_ref(),
                lo,
                hi,
            };
            let mut g = grad.copy();
            let groups = backend.alpha_groups(B);
            let mut da =
                per_connection.then(|| Tensor::zeros([groups, H, H], (prev.kind(), Device::Cpu)));
            match factors {
                Step::Direct(f) => {
                    let (next, raw) = step.forward(f, &post);
                    let mut fg = step.backward_update(f, &next, &mut g);
                    let keep_s = (f.keep.as_ref(), &f.s);
                    step.backward_input(keep_s, &draw, &mut g, &mut fg.dpre, da.as_mut());
                    let grads = [Some(fg.ds), fg.dkeep, None, Some(fg.dpre)];
                    (
                        next,
                        None,
                        raw,
                        g,
                        None,
                        grads,
                        da.as_ref().map(sum_alpha_groups),
                    )
                }
                Step::Retroactive(f) => {
                    let (next, next_elig, raw) = step.forward_retroactive(f, &elig, &post);
                    let mut ge = grad_elig.copy();
                    let mut fg = step.backward_update_retroactive(f, &elig, &next, &mut g, &mut ge);
                    step.backward_input((None, &f.s), &draw, &mut g, &mut fg.dpre, da.as_mut());
                    let grads = [Some(fg.ds), Some(fg.dkeep), Some(fg.dm), Some(fg.dpre)];
                    let da = da.as_ref().map(sum_alpha_groups);
                    (next, Some(next_elig), raw, g, Some(ge), grads, da)
                }
            }
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
        for (what, (l, o)) in ["ds", "dkeep", "dm", "dpre"]
            .iter()
            .zip(loops.5.iter().zip(&ops.5))
        {
            assert_close_opt(what, l, o);
        }
        assert_close_opt("dalpha", &loops.6, &ops.6);
    }

    #[test]
    fn operations_match_the_loops_for_every_kind_of_step() {
        tch::manual_seed(3);
        let row = || uniform(&[B, H], -0.9, 0.9);
        let clip = (-0.05, 0.05);
        for per_connection in [true, false] {
            // `hebb`, clipped, keeps the whole trace.
            let hebb = Step::Direct(Factors {
                keep: None,
                s: row(),
            });
            check(&hebb, clip, per_connection);
            // `decay` or `oja`: unclipped, keeps a share per row.
            let decay = Step::Direct(Factors {
                keep: Some(uniform(&[B, H], 0.5, 1.0)),
                s: row(),
            });
            let unclipped = (f64::NEG_INFINITY, f64::INFINITY);
            check(&decay, unclipped, per_connection);
            let retroactive = Step::Retroactive(RetroFactors {
                m: row(),
                keep: uniform(&[B, H], 0.2, 0.9),
                s: row(),
            });
            check(&retroactive, clip, per_connection);
        }
    }
}
