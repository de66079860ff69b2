//! Hand-written CPU passes over one batch row's `[H × H]` traces of a plastic core, for the
//! host loops (`bptt/host/`).
//!
//! Every rule has the form `next[i,j] = clamp(keep_i · prev[i,j] + s_i · pre_j, lo, hi)`
//! (`keep` and `s` are the rule's, from `rules.rs`; unclipped rules get infinite bounds), so
//! these passes know no rule. One pass per step forward
//! writes the new trace and, in the same sweep, the next step's plastic input
//! `Σ_j α[i,j] next[i,j] h_t[j]`; two passes backward give every gradient through the traces,
//! and going back the second pass of a step and the first of the step before run as one sweep
//! ([`Update::input_update_row`]), which reads and writes the carried gradient once.
//! Autograd needs 5 trace-sized kernels forward and about 11 backward for the same step, and
//! keeps 3 trace-sized tensors per step where this keeps 1 (the trace itself).
//!
//! Retroactive modulation couples two traces (the eligibility trace `E` is written into
//! `Hebb`), so it has its own forward pass and first backward pass, [`RetroUpdate`]; the
//! second backward pass is [`Update::input_rows`]'s, and the two run as one sweep going back
//! ([`Update::input_update_row`] with [`Before::Retro`]). Two trace-sized tensors are kept per
//! step.
use crate::cores::lanes::{clamp, dot, dot3, passed};
use num_traits::Float;

/// One step's trace update, row-major: `B` rows of `P` post-synaptic rows of `H` cells each
/// (`P` = `H`, or `K·H` for `K` timescales' traces stacked, `bptt/stacked.rs`).
pub(crate) struct Update<'a, T> {
    pub h: usize,
    /// `P`.
    pub posts: usize,
    /// `Hebb_{t−1}`, `[B × P × H]`.
    pub prev: &'a [T],
    /// `h_{t−1}`, `[B × H]`: the pre-synaptic side of the update and of the plastic input.
    pub pre: &'a [T],
    /// `keep_i`, `[B × P]`.
    pub keep: &'a [T],
    /// `s_i`, `[B × P]`.
    pub s: &'a [T],
    /// Plasticity coefficients per connection, `[P × H]` (all ones when α is per neuron and
    /// applied outside the kernel).
    pub alpha: &'a [T],
    pub lo: T,
    pub hi: T,
    /// The trace the backward pass reads after this step's (the same rows, a step earlier),
    /// which [`Update::input_rows`] asks the cache for as it goes: read cold, a trace
    /// stalls the pass on memory latency.
    pub ahead: Option<&'a [T]>,
}

/// Asks the cache for the lines of `v` before they are read (a hint; nothing off x86-64).
#[inline(always)]
fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = v.as_ptr().cast::<i8>();
        for offset in (0..std::mem::size_of_val(v)).step_by(64) {
            // SAFETY: the address lies inside `v`, and a prefetch never faults or writes.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(offset)) };
        }
    }
}

/// Batch row `b` of a `[B × H]` tensor.
#[inline(always)]
fn row<T>(v: &[T], h: usize, b: usize) -> &[T] {
    &v[b * h..(b + 1) * h]
}

/// The `H` cells of post-synaptic row `i` in batch row `b` of a `[B × P × H]` trace.
#[inline(always)]
fn cells<T>(v: &[T], h: usize, posts: usize, b: usize, i: usize) -> &[T] {
    &v[(b * posts + i) * h..(b * posts + i + 1) * h]
}

/// Defines `$name`, which runs the `#[inline(always)]` method `$body` (the work of one batch
/// row, or group of rows) compiled for the widest vectors the CPU has: AVX-512 (`$avx512`),
/// else AVX2 and FMA (`$avx2`: twice the vector width of the x86-64 baseline the crate is
/// built for), else as built. The sums are written out lane by lane (`lanes.rs`), so every
/// variant gives the same numbers.
macro_rules! rows {
    ($vis:vis $name:ident, $avx2:ident, $avx512:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        $vis fn $name(&self, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the three features (checked just above).
                    return unsafe { self.$avx512($($arg),*) };
                }
                // SAFETY: the CPU has both features (checked just above).
                return unsafe { self.$avx2($($arg),*) };
            }
            self.$body($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx2(&self, $($arg: $ty),*) {
            self.$body($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma,avx512f")]
        fn $avx512(&self, $($arg: $ty),*) {
            self.$body($($arg),*)
        }
    };
}

pub(crate) use rows;

/// The most groups [`Update::input_rows`] splits the batch into for α's gradient, a sum
/// over the batch and the steps: each group sums its rows into its own `[H × H]` buffer
/// through the whole backward pass, and the buffers are added in group order at its end. The
/// groups depend on `B` only, so the sum, and with it the whole run, is the same bit for bit
/// for any thread count.
const MAX_GROUPS: usize = 32;

/// Batch rows per group of [`MAX_GROUPS`].
pub(crate) fn group_rows(batch: usize) -> usize {
    batch.div_ceil(MAX_GROUPS).max(1)
}

/// The groups of [`group_rows`] rows a batch is split into.
pub(crate) fn alpha_groups(batch: usize) -> usize {
    batch.div_ceil(group_rows(batch))
}

/// The step before's first backward pass, as [`Update::input_update_row`] does it in its
/// sweep: the step and its outputs.
pub(crate) enum Before<'a, 'b, T> {
    /// [`Update::update_row`]'s, writing `dkeep` where `want_dkeep`.
    Plain {
        step: &'b Update<'a, T>,
        want_dkeep: bool,
        out: Rows3<'b, T>,
    },
    /// [`RetroUpdate::update_row`]'s, with the eligibility trace's gradient, which it takes
    /// from `∂L/∂E_{t−1}` to `∂L/∂E_{t−2}`.
    Retro {
        step: &'b RetroUpdate<'a, T>,
        grad_elig: &'b mut [T],
        out: RetroRows<'b, T>,
    },
}

/// The `[B × H]` outputs of [`Update::update_row`].
pub(crate) struct Rows3<'a, T> {
    pub ds: &'a mut [T],
    pub dkeep: &'a mut [T],
    pub dpre: &'a mut [T],
}

// Every batch row is independent of the others, so the host loops run rows in parallel; only
// α's gradient sums over rows, in fixed groups.
impl<T: Float + Send + Sync> Update<'_, T> {
    rows!(pub(crate) forward_row, forward_avx2, forward_avx512, forward_body, (b: usize, post: &[T], next: &mut [T], raw: &mut [T]));

    /// Writes row `b`'s `next = Hebb_t` and `raw[i] = Σ_j α[i,j] · next[i,j] · post[b,j]`,
    /// the plastic input of the next step (`post` = `h_t`, the next step's pre-synaptic
    /// activity).
    #[inline(always)]
    fn forward_body(&self, b: usize, post: &[T], next: &mut [T], raw: &mut [T]) {
        let h = self.h;
        let post = row(post, h, b);
        for (i, (next, raw)) in next.chunks_exact_mut(h).zip(raw).enumerate() {
            self.advance(b, i, next);
            *raw = dot3(&self.alpha[i * h..(i + 1) * h], next, post);
        }
    }

    rows!(pub(crate) rebuild_row, rebuild_avx2, rebuild_avx512, rebuild_body,
        (b: usize, next: &mut [T]));

    /// `Hebb_t` alone, as [`Update::forward_row`] writes it: the backward pass rebuilds a dropped
    /// trace with it, bit for bit.
    #[inline(always)]
    fn rebuild_body(&self, b: usize, next: &mut [T]) {
        for (i, next) in next.chunks_exact_mut(self.h).enumerate() {
            self.advance(b, i, next);
        }
    }

    /// Post-synaptic neuron `i`'s cells of `Hebb_t` in batch row `b`.
    #[inline(always)]
    fn advance(&self, b: usize, i: usize, next: &mut [T]) {
        let (h, posts) = (self.h, self.posts);
        let (k, s) = (self.keep[b * posts + i], self.s[b * posts + i]);
        let (prev, pre) = (cells(self.prev, h, posts, b, i), row(self.pre, h, b));
        let (lo, hi) = (self.lo, self.hi);
        for ((n, &p), &x) in next.iter_mut().zip(prev).zip(pre) {
            *n = clamp(k * p + s * x, lo, hi);
        }
    }

    rows!(pub(crate) update_row, update_avx2, update_avx512, update_body,
        (b: usize, next: &[T], grad: &mut [T], want_dkeep: bool, out: Rows3<'_, T>));

    /// First backward pass over row `b`. `grad` holds `dL/dHebb_t` and becomes the gradient
    /// `G` of the unclipped trace (zero where the clip was active: `next` at a bound). Writes
    /// `ds_i = Σ_j G[i,j] pre_j`, `dkeep_i = Σ_j G[i,j] prev[i,j]` (when `want_dkeep`;
    /// a rule that keeps everything skips it) and `dpre_j = Σ_i G[i,j] s_i`.
    #[inline(always)]
    fn update_body(
        &self,
        b: usize,
        next: &[T],
        grad: &mut [T],
        want_dkeep: bool,
        out: Rows3<'_, T>,
    ) {
        let (h, posts) = (self.h, self.posts);
        let Rows3 { ds, dkeep, dpre } = out;
        let pre = row(self.pre, h, b);
        dpre.fill(T::zero());
        for (i, grad) in grad.chunks_exact_mut(h).enumerate() {
            let s = self.s[b * posts + i];
            let (next, prev) = (
                cells(next, h, posts, b, i),
                cells(self.prev, h, posts, b, i),
            );
            let (lo, hi) = (self.lo, self.hi);
            for ((g, &n), d) in grad.iter_mut().zip(next).zip(dpre.iter_mut()) {
                *g = passed(*g, n, lo, hi);
                *d = *d + *g * s;
            }
            ds[i] = dot(grad, pre);
            if want_dkeep {
                dkeep[i] = dot(grad, prev);
            }
        }
    }

    rows!(pub(crate) input_rows, input_avx2, input_avx512, input_body,
        (first: usize, draw: &[T], grad: &mut [T], dpre: &mut [T], dalpha: Option<&mut [T]>));

    /// Second backward pass, once the plastic input's gradient `draw` (`[B × H]`) is known,
    /// for the rows from `first` on that `grad` and `dpre` hold. `grad` goes from `G` to
    /// `dL/dHebb_{t−1} = keep_i G + draw_i α[i,j] pre_j`; adds `Σ_i draw_i α[i,j] prev[i,j]`
    /// to `dpre`, and `Σ_b draw_i prev[i,j] pre_j` to `dalpha` (α per connection), the
    /// partial sum of these rows' group ([`alpha_groups`]).
    #[inline(always)]
    fn input_body(
        &self,
        first: usize,
        draw: &[T],
        grad: &mut [T],
        dpre: &mut [T],
        mut dalpha: Option<&mut [T]>,
    ) {
        let (h, posts) = (self.h, self.posts);
        let rows = grad
            .chunks_exact_mut(posts * h)
            .zip(dpre.chunks_exact_mut(h));
        for (b, (grad, dpre)) in (first..).zip(rows) {
            for (i, grad) in grad.chunks_exact_mut(h).enumerate() {
                self.input_cells(b, i, draw, grad, dpre, dalpha.as_deref_mut(), |g, _| g);
            }
        }
    }
}

impl<T: Float + Send + Sync> Update<'_, T> {
    rows!(pub(crate) input_update_row, input_update_avx2, input_update_avx512, input_update_body,
        (b: usize, before: Before<'_, '_, T>, draw: &[T], grad: &mut [T], dpre: &mut [T],
            dalpha: Option<&mut [T]>));

    /// [`Update::input_rows`] of batch row `b`, then the first pass of the step before
    /// (whose `Hebb_t` is this step's `prev`) in the same sweep: the gradient is read and
    /// written once and `prev` read once, where the two passes each read and write the
    /// gradient and read that trace. `grad` goes from this step's `G` to the step before's
    /// `G`; `dpre` is this step's. The same numbers as the two passes.
    #[inline(always)]
    fn input_update_body(
        &self,
        b: usize,
        mut before: Before<'_, '_, T>,
        draw: &[T],
        grad: &mut [T],
        dpre: &mut [T],
        mut dalpha: Option<&mut [T]>,
    ) {
        let (h, posts) = (self.h, self.posts);
        let dpre_earlier = match &mut before {
            Before::Plain { out, .. } => &mut *out.dpre,
            Before::Retro { out, .. } => &mut *out.dpre,
        };
        dpre_earlier.fill(T::zero());
        for (i, grad) in grad.chunks_exact_mut(h).enumerate() {
            let clip = |g, p| passed(g, p, self.lo, self.hi);
            self.input_cells(b, i, draw, grad, dpre, dalpha.as_deref_mut(), clip);
            let at = b * posts + i;
            match &mut before {
                Before::Plain {
                    step,
                    want_dkeep,
                    out,
                } => {
                    let s = step.s[at];
                    for (d, &g) in out.dpre.iter_mut().zip(grad.iter()) {
                        *d = *d + g * s;
                    }
                    out.ds[i] = dot(grad, row(step.pre, h, b));
                    if *want_dkeep {
                        out.dkeep[i] = dot(grad, cells(step.prev, h, posts, b, i));
                    }
                }
                Before::Retro {
                    step,
                    grad_elig,
                    out,
                } => {
                    let (m, k, s) = (step.m[at], step.base.keep[at], step.base.s[at]);
                    let elig = cells(step.elig, h, posts, b, i);
                    let grad_elig = &mut grad_elig[i * h..(i + 1) * h];
                    for (d, &ge) in out.dpre.iter_mut().zip(grad_elig.iter()) {
                        *d = *d + ge * s;
                    }
                    out.dm[i] = dot(grad, elig);
                    out.ds[i] = dot(grad_elig, row(step.base.pre, h, b));
                    out.dkeep[i] = dot(grad_elig, elig);
                    for (ge, &g) in grad_elig.iter_mut().zip(grad.iter()) {
                        *ge = k * *ge + m * g;
                    }
                }
            }
        }
    }

    /// Post-synaptic row `i` of batch row `b` through [`Update::input_rows`]: `grad` from
    /// this step's `G` to `finish(keep_i G + draw_i α pre_j, prev)` cell by cell (the gradient
    /// itself, or where the sweep does the step before's first pass, its clip), `dpre` and
    /// `dalpha` (α per connection, this row's group's partial sum) added to, in one sweep:
    /// `prev` is read once.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn input_cells(
        &self,
        b: usize,
        i: usize,
        draw: &[T],
        grad: &mut [T],
        dpre: &mut [T],
        dalpha: Option<&mut [T]>,
        finish: impl Fn(T, T) -> T,
    ) {
        let (h, posts) = (self.h, self.posts);
        let (k, r) = (self.keep[b * posts + i], draw[b * posts + i]);
        let (pre, prev) = (
            &row(self.pre, h, b)[..h],
            &cells(self.prev, h, posts, b, i)[..h],
        );
        let alpha = &self.alpha[i * h..(i + 1) * h];
        if let Some(ahead) = self.ahead {
            prefetch(cells(ahead, h, posts, b, i));
        }
        let (grad, dpre) = (&mut grad[..h], &mut dpre[..h]);
        match dalpha {
            Some(dalpha) => {
                let dalpha = &mut dalpha[i * h..(i + 1) * h];
                for j in 0..h {
                    let (p, x) = (prev[j], pre[j]);
                    let ra = r * alpha[j];
                    dpre[j] = dpre[j] + ra * p;
                    dalpha[j] = dalpha[j] + r * p * x;
                    grad[j] = finish(k * grad[j] + ra * x, p);
                }
            }
            None => {
                for j in 0..h {
                    let (p, x, a) = (prev[j], pre[j], alpha[j]);
                    dpre[j] = dpre[j] + r * a * p;
                    grad[j] = finish(k * grad[j] + r * a * x, p);
                }
            }
        }
    }
}

/// One step of retroactive neuromodulation, row-major like [`Update`]: the modulator writes
/// the eligibility trace into the Hebbian one, `Hebb_t[i,j] = clamp(Hebb_{t−1}[i,j] +
/// m_i E_{t−1}[i,j], lo, hi)`, and the eligibility trace decays towards the co-activity,
/// `E_t[i,j] = keep_i E_{t−1}[i,j] + s_i pre_j` (keep = 1 − η_E, s = η_E · post). One pass
/// forward reads both traces and writes both, with the next step's plastic input. Backward,
/// [`RetroUpdate::update_row`] takes the eligibility trace's gradient back a step, and the
/// plastic input's part is [`Update::input_rows`] with `keep` = 1 on `Hebb_{t−1}`.
pub(crate) struct RetroUpdate<'a, T> {
    /// The step as [`Update`] sees it, with the eligibility trace's `keep` and `s`.
    pub base: Update<'a, T>,
    /// `E_{t−1}`, `[B × H × H]`.
    pub elig: &'a [T],
    /// The modulator's output per post-synaptic neuron `m_i`, `[B × H]`.
    pub m: &'a [T],
}

/// The `[B × H]` outputs of [`RetroUpdate::update_row`].
pub(crate) struct RetroRows<'a, T> {
    pub dm: &'a mut [T],
    pub ds: &'a mut [T],
    pub dkeep: &'a mut [T],
    pub dpre: &'a mut [T],
}

impl<T: Float + Send + Sync> RetroUpdate<'_, T> {
    rows!(pub(crate) forward_row, forward_avx2, forward_avx512, forward_body,
        (b: usize, post: &[T], next: &mut [T], next_elig: &mut [T], raw: &mut [T]));

    /// Writes row `b`'s `next = Hebb_t`, `next_elig = E_t` and `raw[i] = Σ_j α[i,j] ·
    /// next[i,j] · post[b,j]`, the plastic input of the next step.
    #[inline(always)]
    fn forward_body(
        &self,
        b: usize,
        post: &[T],
        next: &mut [T],
        next_elig: &mut [T],
        raw: &mut [T],
    ) {
        let h = self.base.h;
        let post = row(post, h, b);
        let neurons = next
            .chunks_exact_mut(h)
            .zip(next_elig.chunks_exact_mut(h))
            .zip(raw);
        for (i, ((next, next_elig), raw)) in neurons.enumerate() {
            self.advance(b, i, next, next_elig);
            *raw = dot3(&self.base.alpha[i * h..(i + 1) * h], next, post);
        }
    }

    rows!(pub(crate) rebuild_row, rebuild_avx2, rebuild_avx512, rebuild_body,
        (b: usize, next: &mut [T], next_elig: &mut [T]));

    /// `Hebb_t` and `E_t` alone, as [`RetroUpdate::forward_row`] writes them: the backward pass
    /// rebuilds dropped traces with it, bit for bit.
    #[inline(always)]
    fn rebuild_body(&self, b: usize, next: &mut [T], next_elig: &mut [T]) {
        let h = self.base.h;
        let neurons = next.chunks_exact_mut(h).zip(next_elig.chunks_exact_mut(h));
        for (i, (next, next_elig)) in neurons.enumerate() {
            self.advance(b, i, next, next_elig);
        }
    }

    /// Post-synaptic neuron `i`'s cells of `Hebb_t` and `E_t` in batch row `b`.
    #[inline(always)]
    fn advance(&self, b: usize, i: usize, next: &mut [T], next_elig: &mut [T]) {
        let (h, posts) = (self.base.h, self.base.posts);
        let at = b * posts + i;
        let (m, k, s) = (self.m[at], self.base.keep[at], self.base.s[at]);
        let (prev, elig) = (
            cells(self.base.prev, h, posts, b, i),
            cells(self.elig, h, posts, b, i),
        );
        let pre = row(self.base.pre, h, b);
        let (lo, hi) = (self.base.lo, self.base.hi);
        for ((n, &p), &e) in next.iter_mut().zip(prev).zip(elig) {
            *n = clamp(p + m * e, lo, hi);
        }
        for ((n, &e), &x) in next_elig.iter_mut().zip(elig).zip(pre) {
            *n = k * e + s * x;
        }
    }

    rows!(pub(crate) update_row, update_avx2, update_avx512, update_body,
        (b: usize, next: &[T], grad: &mut [T], grad_elig: &mut [T], out: RetroRows<'_, T>));

    /// First backward pass over row `b`. `grad` holds `dL/dHebb_t` and becomes the gradient
    /// `G` of the unclipped trace (zero where `next` is at a bound); `grad_elig` goes from
    /// `GE = dL/dE_t` to `dL/dE_{t−1} = keep_i GE + m_i G`. Writes `dm_i = Σ_j G[i,j]
    /// E_{t−1}[i,j]`, `ds_i = Σ_j GE[i,j] pre_j`, `dkeep_i = Σ_j GE[i,j] E_{t−1}[i,j]` and
    /// `dpre_j = Σ_i GE[i,j] s_i`.
    #[inline(always)]
    fn update_body(
        &self,
        b: usize,
        next: &[T],
        grad: &mut [T],
        grad_elig: &mut [T],
        out: RetroRows<'_, T>,
    ) {
        let (h, posts) = (self.base.h, self.base.posts);
        let RetroRows {
            dm,
            ds,
            dkeep,
            dpre,
        } = out;
        let pre = row(self.base.pre, h, b);
        dpre.fill(T::zero());
        let neurons = grad.chunks_exact_mut(h).zip(grad_elig.chunks_exact_mut(h));
        for (i, (grad, grad_elig)) in neurons.enumerate() {
            let at = b * posts + i;
            let (m, k, s) = (self.m[at], self.base.keep[at], self.base.s[at]);
            let (next, elig) = (
                cells(next, h, posts, b, i),
                cells(self.elig, h, posts, b, i),
            );
            let (lo, hi) = (self.base.lo, self.base.hi);
            for (g, &n) in grad.iter_mut().zip(next) {
                *g = passed(*g, n, lo, hi);
            }
            for (d, &ge) in dpre.iter_mut().zip(grad_elig.iter()) {
                *d = *d + ge * s;
            }
            dm[i] = dot(grad, elig);
            ds[i] = dot(grad_elig, pre);
            dkeep[i] = dot(grad_elig, elig);
            for (ge, &g) in grad_elig.iter_mut().zip(grad.iter()) {
                *ge = k * *ge + m * g;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The variants [`rows!`] compiles for wider vectors give the baseline's numbers bit for
    //! bit: every sum is written out lane by lane, and nothing is fused or reordered.
    use super::*;

    /// `n` values in [−1, 1), from a fixed linear congruential sequence.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The vector widths [`rows!`] chooses between.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Width {
        Baseline,
        Avx2,
        Avx512,
    }

    /// The widths this CPU runs, the baseline first.
    fn widths() -> Vec<Width> {
        let mut widths = vec![Width::Baseline];
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            widths.push(Width::Avx2);
            if std::is_x86_feature_detected!("avx512f") {
                widths.push(Width::Avx512);
            }
        }
        widths
    }

    /// `$update.$body(args)` compiled for `$width`: the baseline, or the variant [`rows!`]
    /// made for it.
    macro_rules! at {
        ($width:expr, $update:ident.$body:ident / $avx2:ident / $avx512:ident ($($arg:expr),*)) => {
            match $width {
                Width::Baseline => $update.$body($($arg),*),
                // SAFETY: `widths` lists only the widths the CPU has.
                #[cfg(target_arch = "x86_64")]
                Width::Avx2 => unsafe { $update.$avx2($($arg),*) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                Width::Avx512 => unsafe { $update.$avx512($($arg),*) },
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!("no wider vectors off x86-64"),
            }
        };
    }

    #[test]
    fn every_vector_width_gives_the_baseline_numbers() {
        // H = 21: chunks of LANES and a rest; the clip active in some cells.
        let h = 21;
        let (prev, pre, keep, s) = (values(h * h, 1), values(h, 2), values(h, 3), values(h, 4));
        let (alpha, post, draw) = (values(h * h, 5), values(h, 6), values(h, 7));
        let update = Update {
            h,
            posts: h,
            prev: &prev,
            pre: &pre,
            keep: &keep,
            s: &s,
            alpha: &alpha,
            lo: -0.5,
            hi: 0.5,
            ahead: None,
        };
        let run = |width: Width| {
            let (mut next, mut raw) = (vec![0.0; h * h], vec![0.0; h]);
            let mut grad = values(h * h, 8);
            let (mut ds, mut dkeep, mut dpre) = (vec![0.0; h], vec![0.0; h], vec![0.0; h]);
            let mut dalpha = vec![0.0; h * h];
            at!(
                width,
                update.forward_body / forward_avx2 / forward_avx512(0, &post, &mut next, &mut raw)
            );
            let out = Rows3 {
                ds: &mut ds,
                dkeep: &mut dkeep,
                dpre: &mut dpre,
            };
            at!(
                width,
                update.update_body / update_avx2 / update_avx512(0, &next, &mut grad, true, out)
            );
            at!(
                width,
                update.input_body
                    / input_avx2
                    / input_avx512(0, &draw, &mut grad, &mut dpre, Some(&mut dalpha))
            );
            let clipped = next.iter().filter(|n| n.abs() == 0.5).count();
            assert!(clipped > 0, "the clip is never reached");
            // What the backward pass rebuilds of a dropped trace is the trace, bit for bit.
            let mut rebuilt = vec![0.0; h * h];
            at!(
                width,
                update.rebuild_body / rebuild_avx2 / rebuild_avx512(0, &mut rebuilt)
            );
            assert!(
                rebuilt
                    .iter()
                    .zip(&next)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "a rebuilt trace differs from the forward pass's"
            );
            [next, raw, grad, ds, dkeep, dpre, dalpha]
                .map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        };
        // Every pair of the widths the CPU has (on an AVX-512 machine, AVX2 too).
        let results: Vec<_> = widths().into_iter().map(|w| (w, run(w))).collect();
        for (i, (a, ours)) in results.iter().enumerate() {
            for (b, theirs) in &results[i + 1..] {
                assert!(ours == theirs, "{a:?} and {b:?} give different numbers");
            }
        }
    }

    /// [`Update::input_rows`] of batch row 0 at `width`, α per connection.
    fn second_pass(
        width: Width,
        update: &Update<'_, f32>,
        draw: &[f32],
        grad: &mut [f32],
        dpre: &mut [f32],
        dalpha: &mut [f32],
    ) {
        at!(
            width,
            update.input_body / input_avx2 / input_avx512(0, draw, grad, dpre, Some(dalpha))
        );
    }

    /// [`Update::input_update_row`] of batch row 0 at `width`, α per connection.
    fn sweep(
        width: Width,
        update: &Update<'_, f32>,
        before: Before<'_, '_, f32>,
        draw: &[f32],
        grad: &mut [f32],
        dpre: &mut [f32],
        dalpha: &mut [f32],
    ) {
        at!(
            width,
            update.input_update_body
                / input_update_avx2
                / input_update_avx512(0, before, draw, grad, dpre, Some(dalpha))
        );
    }

    /// Asserts that `run(width, fused)` (the outputs' bits) is the baseline's two passes' at
    /// every width the CPU has, fused or not.
    fn same_as_the_two_passes(run: impl Fn(Width, bool) -> Vec<Vec<u32>>) {
        let baseline = run(Width::Baseline, false);
        for width in widths() {
            for fused in [false, true] {
                assert!(
                    run(width, fused) == baseline,
                    "{width:?} (fused: {fused}) differs from the baseline's two passes"
                );
            }
        }
    }

    /// The bits of each value of each output.
    fn bits<const N: usize>(outputs: [Vec<f32>; N]) -> Vec<Vec<u32>> {
        outputs
            .iter()
            .map(|v| v.iter().map(|x| x.to_bits()).collect())
            .collect()
    }

    #[test]
    fn the_fused_sweep_gives_the_two_passes_numbers_at_every_width() {
        // Two steps of a rule with a `keep`, the clip active in some cells: step t − 1
        // (`earlier`) writes the trace step t (`update`) reads.
        let h = 21;
        let (before, pre0, pre1) = (values(h * h, 11), values(h, 12), values(h, 13));
        let (keep0, s0, keep1, s1) = (values(h, 14), values(h, 15), values(h, 16), values(h, 17));
        let (alpha, draw) = (values(h * h, 18), values(h, 19));
        let earlier = Update {
            h,
            posts: h,
            prev: &before,
            pre: &pre0,
            keep: &keep0,
            s: &s0,
            alpha: &alpha,
            lo: -0.5,
            hi: 0.5,
            ahead: None,
        };
        let mut between = vec![0.0; h * h];
        earlier.rebuild_body(0, &mut between);
        assert!(
            between.iter().any(|n| n.abs() == 0.5),
            "the clip is never reached"
        );
        let update = Update {
            prev: &between,
            pre: &pre1,
            keep: &keep1,
            s: &s1,
            ..earlier
        };
        let start = (values(h * h, 20), values(h, 21), values(h * h, 22));
        let run = |width: Width, fused: bool| {
            let (mut grad, mut dpre, mut dalpha) = start.clone();
            let (mut ds, mut dkeep, mut dpre_earlier) = (vec![0.0; h], vec![0.0; h], vec![0.0; h]);
            let out = Rows3 {
                ds: &mut ds,
                dkeep: &mut dkeep,
                dpre: &mut dpre_earlier,
            };
            if fused {
                let before = Before::Plain {
                    step: &earlier,
                    want_dkeep: true,
                    out,
                };
                sweep(
                    width,
                    &update,
                    before,
                    &draw,
                    &mut grad,
                    &mut dpre,
                    &mut dalpha,
                );
            } else {
                second_pass(width, &update, &draw, &mut grad, &mut dpre, &mut dalpha);
                at!(
                    width,
                    earlier.update_body
                        / update_avx2
                        / update_avx512(0, &between, &mut grad, true, out)
                );
            }
            bits([grad, dpre, dalpha, ds, dkeep, dpre_earlier])
        };
        same_as_the_two_passes(run);
    }

    #[test]
    fn the_fused_retroactive_sweep_gives_the_two_passes_numbers_at_every_width() {
        // Step t − 1 (`earlier`) writes the traces step t (`update`, keep = 1 on the Hebbian
        // trace as under retroactive modulation) reads; the clip active in some cells.
        let h = 21;
        let (before, elig, pre0, pre1) = (
            values(h * h, 31),
            values(h * h, 32),
            values(h, 33),
            values(h, 34),
        );
        let (m, keep0, s0, s1) = (values(h, 35), values(h, 36), values(h, 37), values(h, 38));
        let (alpha, draw, ones) = (values(h * h, 39), values(h, 40), vec![1.0; h]);
        let earlier = RetroUpdate {
            base: Update {
                h,
                posts: h,
                prev: &before,
                pre: &pre0,
                keep: &keep0,
                s: &s0,
                alpha: &alpha,
                lo: -0.5,
                hi: 0.5,
                ahead: None,
            },
            elig: &elig,
            m: &m,
        };
        let (mut between, mut elig_between) = (vec![0.0; h * h], vec![0.0; h * h]);
        earlier.rebuild_body(0, &mut between, &mut elig_between);
        assert!(
            between.iter().any(|n| n.abs() == 0.5),
            "the clip is never reached"
        );
        let update = Update {
            prev: &between,
            pre: &pre1,
            keep: &ones,
            s: &s1,
            ..earlier.base
        };
        let start = (
            values(h * h, 41),
            values(h * h, 42),
            values(h, 43),
            values(h * h, 44),
        );
        let run = |width: Width, fused: bool| {
            let (mut grad, mut grad_elig, mut dpre, mut dalpha) = start.clone();
            let (mut dm, mut ds, mut dkeep) = (vec![0.0; h], vec![0.0; h], vec![0.0; h]);
            let mut dpre_earlier = vec![0.0; h];
            let out = RetroRows {
                dm: &mut dm,
                ds: &mut ds,
                dkeep: &mut dkeep,
                dpre: &mut dpre_earlier,
            };
            if fused {
                let before = Before::Retro {
                    step: &earlier,
                    grad_elig: &mut grad_elig,
                    out,
                };
                sweep(
                    width,
                    &update,
                    before,
                    &draw,
                    &mut grad,
                    &mut dpre,
                    &mut dalpha,
                );
            } else {
                second_pass(width, &update, &draw, &mut grad, &mut dpre, &mut dalpha);
                at!(
                    width,
                    earlier.update_body
                        / update_avx2
                        / update_avx512(0, &between, &mut grad, &mut grad_elig, out)
                );
            }
            bits([grad, grad_elig, dpre, dalpha, dm, ds, dkeep, dpre_earlier])
        };
        same_as_the_two_passes(run);
    }
}
