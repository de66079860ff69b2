//! The trace update, one home for its formula in every form the engines need:
//! `Hebb_t[i,j] = clamp(keep_i Hebb_{t−1}[i,j] + s_i h_{t−1}[j], lo, hi)` (the factors `keep`
//! and `s` are the rule's, `rules.rs`), under retroactive modulation
//! `Hebb_t = clamp(Hebb_{t−1} + M_t ⊙ E_{t−1})` with `E` following the co-activity, and the plastic input
//! `Σ_j α[i,j] Hebb[i,j] h[j]` it feeds, forward and backward:
//! - autograd's tensor forms ([`advance`], [`clipped_add`], [`add_plastic_input`]), which define
//!   the cores;
//! - the operations engine's passes ([`TraceStep`], CUDA and `a2c.bptt = "ops"`), without a
//!   graph, backward by hand. They keep only the traces themselves for the backward pass and
//!   make a few trace-sized temporaries along the way (updating the buffers they own in place
//!   where they can), freed before the next step, so memory still grows as one trace per step
//!   (two under retroactive modulation);
//! - the host loops' passes over one batch row ([`rows`]).
//!
//! Cost per step is dominated by passes over the `[B × H × H]` traces, so each update is one
//! broadcast `addcmul` (decay factor folded into the base, rate folded into the post-synaptic
//! vector) plus, for clipped rules, one `hardtanh`. Backpropamine's core (per-connection α,
//! additive clipped rule, c = 1) runs 5 trace-sized kernels forward (`Hebb ⊙ α`, `⊙ h`, row sum,
//! `addcmul`, `hardtanh`) and about 11 backward (`hardtanh` backward, 4 for the `addcmul`
//! gradients, 5 for the plastic input, 1 to add the two gradients of `Hebb_{t−1}`); autograd
//! keeps 3 trace-sized tensors per step (`Hebb_{t−1}`, `α ⊙ Hebb_{t−1}`, the unclipped trace).
//! With per-neuron α the plastic input takes 2 kernels instead of 3 and keeps one tensor fewer.
pub(crate) mod rows;

use tch::{Kind, Tensor};

/// `fixed + (α ⊙ Hebb) pre`, `[B × H]`, with autograd's graph: α per connection (`[H × H]`)
/// inside the row sum, α per neuron (`[H]`) applied to it.
///
/// Written as broadcast products and a row sum rather than a batched matrix-vector
/// `bmm`: libtorch's CPU `bmm` with a single column runs several times slower than the
/// memory-bound element-wise passes, forward and backward.
pub(crate) fn add_plastic_input(
    fixed: &Tensor,
    alpha: &Tensor,
    hebb: &Tensor,
    pre: &Tensor,
) -> Tensor {
    if alpha.dim() == 2 {
        fixed + plastic_input(hebb, Some(alpha), pre)
    } else {
        fixed.addcmul(alpha, &plastic_input(hebb, None, pre))
    }
}

/// `keep ⊙ trace`, `keep` (per post-synaptic row: `[B × H]`, or a rate's `[1]` or `[H]`)
/// broadcast along each row; the trace itself when `None` (`keep` = 1).
fn kept(trace: &Tensor, keep: Option<&Tensor>) -> Tensor {
    match keep {
        Some(keep) => trace * keep.unsqueeze(-1),
        None => trace.shallow_clone(),
    }
}

/// `keep ⊙ trace + s ⊗ pre`, unclipped: `s` `[B × H]` per post-synaptic row, `pre` `[B × H]`
/// per column.
fn unclipped(trace: &Tensor, keep: Option<&Tensor>, s: &Tensor, pre: &Tensor) -> Tensor {
    kept(trace, keep).addcmul(&s.unsqueeze(2), &pre.unsqueeze(1))
}

/// `keep ⊙ trace + s ⊗ pre` (`keep` = 1 when `None`), clipped at ±`clip` where given, with
/// autograd's graph.
pub(crate) fn advance(
    trace: &Tensor,
    keep: Option<&Tensor>,
    s: &Tensor,
    pre: &Tensor,
    clip: Option<f64>,
) -> Tensor {
    match clip {
        Some(clip) => clipped_add(&kept(trace, keep), &s.unsqueeze(2), &pre.unsqueeze(1), clip),
        None => unclipped(trace, keep, s, pre),
    }
}

/// `clamp(trace + a ⊙ b, −clip, clip)`, `a ⊙ b` broadcast to the trace's shape, with
/// autograd's graph.
///
/// The clip is a `hardtanh` (bounds ±1), whose backward is one fused pass where the CPU
/// backward of `clamp` takes several (measured ≈ 20× slower); other bounds are mapped onto
/// ±1 by scaling (two extra passes, exact when c is a power of two). Out of place on
/// purpose: autograd saves the input either way, and `hardtanh_` would first clone it.
pub(crate) fn clipped_add(trace: &Tensor, a: &Tensor, b: &Tensor, clip: f64) -> Tensor {
    if clip == 1.0 {
        trace.addcmul(a, b).hardtanh()
    } else {
        let s = 1.0 / clip;
        (trace * s).addcmul(&(a * s), b).hardtanh() * clip
    }
}

/// One step's factors of a rule that writes the Hebbian trace directly (no neuromodulation,
/// or `simple`): `Hebb_t = clamp(keep ⊙ Hebb_{t−1} + s ⊗ h_{t−1})`. `[B × H]` each, contiguous;
/// `keep` is `None` for rules that keep the whole trace.
pub(crate) struct Factors {
    pub keep: Option<Tensor>,
    pub s: Tensor,
}

/// One step's factors under retroactive modulation: `m` writes `E_{t−1}` into `Hebb`; `E`
/// keeps `keep` of itself and adds `s ⊗ h_{t−1}`. `[B × H]` each, contiguous.
pub(crate) struct RetroFactors {
    pub m: Tensor,
    pub keep: Tensor,
    pub s: Tensor,
}

/// The gradients of one step's [`Factors`] from [`TraceStep::backward_update`], `[B × H]`
/// each.
pub(crate) struct FactorGrads {
    pub ds: Tensor,
    /// `dL/dkeep`, where the factors have a `keep`.
    pub dkeep: Option<Tensor>,
    /// `dL/dh_{t−1}` through the trace update; the plastic input's part is added by
    /// [`TraceStep::backward_input`].
    pub dpre: Tensor,
}

/// The gradients of one step's [`RetroFactors`] from
/// [`TraceStep::backward_update_retroactive`], `[B × H]` each.
pub(crate) struct RetroGrads {
    pub dm: Tensor,
    pub ds: Tensor,
    pub dkeep: Tensor,
    /// As [`FactorGrads::dpre`].
    pub dpre: Tensor,
}

/// α's gradient from its partial sums `[G × H × H]` (the host loops keep one per group of
/// rows, [`rows::alpha_groups`]; the operations one), added in
/// group order: the same numbers for any thread count.
pub(crate) fn sum_alpha_groups(groups: &Tensor) -> Tensor {
    (1..groups.size()[0]).fold(groups.get(0), |sum, g| sum + groups.get(g))
}

/// Step `t` (from `Hebb_{t−1}`, `E_{t−1}` to `Hebb_t`, `E_t`). The factors, and under
/// retroactive modulation `E_{t−1}` and its gradient, are the arguments of each pass.
pub(crate) struct TraceStep<'a> {
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
pub(crate) fn plastic_input(trace: &Tensor, alpha: Option<&Tensor>, h: &Tensor) -> Tensor {
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
        let mut next = unclipped(self.prev, keep.as_ref(), s, self.pre);
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
        let next_elig = unclipped(elig, Some(keep), s, self.pre);
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
    /// [`Factors`]; `None`, that is 1, for rules that keep the whole trace and under retroactive modulation, where the
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
