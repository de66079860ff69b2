//! One step's passes over the traces: as libtorch operations for [`super::fused`]'s
//! operations engine (CUDA, and `a2c.bptt = "ops"`), [`TraceStep`], and as loops over one
//! batch row for the host loops, [`cpu`]. The operations keep only the traces themselves
//! for the backward pass; they make a few trace-sized temporaries along the way (updating
//! the buffers they own in place where they can), freed before the next step, so memory
//! still grows as one trace per step (two under retroactive modulation).
pub(super) mod cpu;
pub mod roofline;

use tch::{Kind, Tensor};

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

/// α's gradient from its partial sums `[G × H × H]` (the host loops keep one per group of
/// rows, [`cpu::alpha_groups`]; the operations one), added in
/// group order: the same numbers for any thread count.
pub(super) fn sum_alpha_groups(groups: &Tensor) -> Tensor {
    (1..groups.size()[0]).fold(groups.get(0), |sum, g| sum + groups.get(g))
}

/// Step `t` (from `Hebb_{t−1}`, `E_{t−1}` to `Hebb_t`, `E_t`). The factors, and under
/// retroactive modulation `E_{t−1}` and its gradient, are the arguments of each pass.
pub(super) struct TraceStep<'a> {
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

    /// `(Hebb_t, raw)`: the new trace and the next step's plastic input
    /// `Σ_j α[i,j] Hebb_t[i,j] post_j` (`post` = `h_t`).
    pub fn forward(&self, f: &Factors, post: &Tensor) -> (Tensor, Tensor) {
        let Factors { keep, s } = f;
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
    /// eligibility trace's gradient went back in the first pass); adds `Σ_i draw_i α[i,j] Hebb_{t−1}[i,j]` to `dpre` and
    /// `Σ_b draw_i Hebb_{t−1}[i,j] pre_j` to `dalpha` (α per connection), in the partial sums
    /// of the host loops' groups (one here).
    pub fn backward_input(
        &self,
        keep: Option<&Tensor>,
        draw: &Tensor,
        grad: &mut Tensor,
        dpre: &mut Tensor,
        dalpha: Option<&mut Tensor>,
    ) {
        let kind = self.prev.kind();
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
