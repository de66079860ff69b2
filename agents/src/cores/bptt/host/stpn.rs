//! The STPN cell's steps on the CPU in plain loops over host copies of its parameters, for
//! [`super::super::stpn`]: the same formulas as `cores/stpn.rs` (derived in
//! `docs/backward-pass.md`), one batch row at a time, where the libtorch operations spend a
//! dozen `[B × H × (in + H)]` kernels per step forward and about thirty back, each writing
//! its intermediate to memory.
//!
//! Forward, one pass over each batch row does the row's whole step: the normalised cell and
//! the fast weights' update. Backward, one region per step shares the batch's groups of rows
//! ([`group_rows`]); each group takes its rows back through the step and adds the
//! parameters' gradients into sums of its own, so that the sums over the batch, added group
//! by group at the end, do not depend on the thread count.
use super::super::pool::{self, Share};
use super::super::stpn::ParamGrads;
use super::{data, data_mut, host, row};
use crate::cores::lanes::{clamp, dot, tanh};
use crate::cores::stpn::{NORM_EPS, NORM_FLOOR};
use crate::cores::trace_update::rows::{group_rows, rows};
use crate::cores::{rnn, Core, ShortTermPlasticity};
use num_traits::Float;
use tch::kind::Element;
use tch::{Device, Kind, Tensor};

/// The host pass of an STPN core (f32 or f64 on the CPU).
pub(in crate::cores::bptt) struct HostStpn(Kinded);

enum Kinded {
    F32(Cell<f32>),
    F64(Cell<f64>),
}

/// The cell's parameters, row-major, `[H × (in + H)]` per synapse: a scalar λ or γ repeated,
/// so that one loop serves both shapes (its gradient is summed back to one value at the end).
struct Cell<T> {
    hidden: usize,
    inputs: usize,
    /// `in + H`: the length of `z_t` and of a row of `[W_in | W]`.
    width: usize,
    w: Vec<T>,
    b: Vec<T>,
    lambda: Vec<T>,
    gamma: Vec<T>,
    /// Whether λ and γ are one value each (`core.stp = "scalar"`), repeated here.
    scalar: bool,
    clip: T,
    eps: T,
    floor: T,
}

/// One recorded step as a step back reads it: `[B × …]` CPU tensors of the core's kind.
pub(in crate::cores::bptt) struct StpnBackStep<'a> {
    /// `z_t = [x_t, h_{t−1}]`, `h_t`, `F_{t−1}` and `∂L/∂h_t` from the loss.
    pub z: &'a Tensor,
    pub h: &'a Tensor,
    pub fast: &'a Tensor,
    pub grad_h: &'a Tensor,
    /// The rows whose episode ended after this step: what later steps carry back stops there.
    pub done: Option<&'a [bool]>,
}

impl HostStpn {
    /// The host pass of `core`'s cell, or `None` where it does not apply (off the CPU, or
    /// values other than f32 and f64).
    pub fn new(core: &Core, stp: &ShortTermPlasticity) -> Option<Self> {
        if !super::HostStep::applies(core) {
            return None;
        }
        match core.kind() {
            Kind::Float => Some(Self(Kinded::F32(Cell::new(core, stp)))),
            Kind::Double => Some(Self(Kinded::F64(Cell::new(core, stp)))),
            _ => None,
        }
    }

    /// One step forward: `h_t` `[B × H]` and `F_t` from `z_t` and `F_{t−1}`.
    pub fn step(&self, z: &Tensor, fast: &Tensor) -> (Tensor, Tensor) {
        match &self.0 {
            Kinded::F32(cell) => cell.step(z, fast),
            Kinded::F64(cell) => cell.step(z, fast),
        }
    }

    /// What the steps back carry, for a batch of `batch` rows, from `∂L/∂F_T` = 0 and
    /// `∂L/∂h_T` = 0.
    pub fn carry(&self, batch: usize) -> StpnCarry {
        match &self.0 {
            Kinded::F32(cell) => StpnCarry::F32(cell.carry(batch)),
            Kinded::F64(cell) => StpnCarry::F64(cell.carry(batch)),
        }
    }

    /// One step back (the steps taken last to first), updating `carry`.
    pub fn step_back(&self, carry: &mut StpnCarry, step: StpnBackStep) {
        match (&self.0, carry) {
            (Kinded::F32(cell), StpnCarry::F32(carry)) => cell.step_back(carry, step),
            (Kinded::F64(cell), StpnCarry::F64(carry)) => cell.step_back(carry, step),
            _ => unreachable!("a carry is made by the pass of the same kind"),
        }
    }

    /// The parameters' gradients summed over the steps taken back.
    pub fn grads(&self, carry: &StpnCarry) -> ParamGrads {
        match (&self.0, carry) {
            (Kinded::F32(cell), StpnCarry::F32(carry)) => cell.total(&carry.sums),
            (Kinded::F64(cell), StpnCarry::F64(carry)) => cell.total(&carry.sums),
            _ => unreachable!("a carry is made by the pass of the same kind"),
        }
    }
}

/// What the steps back carry ([`HostStpn::carry`]), in the core's kind.
pub(in crate::cores::bptt) enum StpnCarry {
    F32(Carry<f32>),
    F64(Carry<f64>),
}

/// `∂L/∂F_t` `[B × H × (in + H)]` and `∂L/∂h_t` `[B × H]` through the steps after `t`, and
/// per group of rows its sums of the parameters' gradients and its scratch.
pub(in crate::cores::bptt) struct Carry<T> {
    dfast: Vec<T>,
    dh: Vec<T>,
    sums: Vec<Sums<T>>,
    scratch: Vec<Scratch<T>>,
}

/// The `[in + H]`- and `[H]`-long vectors a step works in.
struct Scratch<T> {
    /// A row of `G = W + F`, and of the update's `W + clamp(U)`.
    g: Vec<T>,
    /// A row of `U` and of `clamp(U)`.
    u: Vec<T>,
    c: Vec<T>,
    /// `∂L/∂z_t`.
    dz: Vec<T>,
    /// `∂L/∂h_t` through the update, and the pre-activation's gradient.
    dpost: Vec<T>,
    da: Vec<T>,
    /// `∂L/∂h_t` from the loss and the later steps.
    dh: Vec<T>,
}

impl<T: Float> Scratch<T> {
    fn new(hidden: usize, width: usize) -> Self {
        let v = |n| vec![T::zero(); n];
        Self {
            g: v(width),
            u: v(width),
            c: v(width),
            dz: v(width),
            dpost: v(hidden),
            da: v(hidden),
            dh: v(hidden),
        }
    }
}

/// A group of rows' sums of the parameters' gradients, in [`Cell`]'s shapes.
struct Sums<T> {
    w: Vec<T>,
    b: Vec<T>,
    lambda: Vec<T>,
    gamma: Vec<T>,
}

/// What a group of rows works on in one step back: its rows of the carried `∂L/∂F_t` and
/// `∂L/∂h_t`, its sums and its scratch.
struct Group<'a, T> {
    dfast: &'a mut [T],
    dh: &'a mut [T],
    sums: &'a mut Sums<T>,
    scratch: &'a mut Scratch<T>,
}

/// One batch row of a step back.
struct RowBack<'a, T> {
    z: &'a [T],
    h: &'a [T],
    fast: &'a [T],
    grad_h: &'a [T],
}

impl<T: Element + Float + Send + Sync> Cell<T> {
    fn new(core: &Core, stp: &ShortTermPlasticity) -> Self {
        let (hidden, inputs) = (core.hidden() as usize, core.input_dim() as usize);
        let width = inputs + hidden;
        let per_synapse = |t: &Tensor| {
            let v = host::<T>(t);
            if v.len() == 1 {
                vec![v[0]; hidden * width]
            } else {
                v
            }
        };
        let float = |v: f64| T::from(v).expect("f32 and f64 hold every f64, rounded");
        Self {
            hidden,
            inputs,
            width,
            w: host(&core.stpn_weights()),
            b: host(core.bias()),
            lambda: per_synapse(stp.lambda()),
            gamma: per_synapse(stp.gamma()),
            scalar: stp.lambda().numel() == 1,
            clip: float(core.config().clip),
            eps: float(NORM_EPS),
            floor: float(NORM_FLOOR),
        }
    }

    fn step(&self, z: &Tensor, fast: &Tensor) -> (Tensor, Tensor) {
        let (hidden, width) = (self.hidden, self.width);
        let batch = z.size()[0];
        let opts = (T::KIND, Device::Cpu);
        let mut h = Tensor::empty([batch, hidden as i64], opts);
        let mut next = Tensor::empty([batch, hidden as i64, width as i64], opts);
        let (z, fast) = (z.contiguous(), fast.contiguous());
        let (z, fast) = (data::<T>(&z), data::<T>(&fast));
        let mut rows: Vec<(&mut [T], &mut [T])> = data_mut::<T>(&mut h)
            .chunks_mut(hidden)
            .zip(data_mut::<T>(&mut next).chunks_mut(hidden * width))
            .collect();
        let cells = batch as usize * hidden * width;
        pool::for_each(cells, &mut rows, Share::Pinned, |b, (h, next)| {
            let fast = row(fast, b, hidden * width);
            self.forward_row(row(z, b, width), fast, h, next);
        });
        (h, next)
    }

    rows!(forward_row, forward_avx2, forward_avx512, forward_body,
        (z: &[T], fast: &[T], h: &mut [T], next: &mut [T]));

    /// One batch row forward: `h_t = tanh((G z_t) / N + b)` with `G = W + F_{t−1}`, then
    /// `F_t` (`cores/stpn.rs`'s `forward` and `update`).
    #[inline(always)]
    fn forward_body(&self, z: &[T], fast: &[T], h: &mut [T], next: &mut [T]) {
        let m = self.width;
        let (mut g, mut u) = (vec![T::zero(); m], vec![T::zero(); m]);
        for (i, h_i) in h.iter_mut().enumerate() {
            self.sum_row(i, &fast[i * m..(i + 1) * m], &mut g);
            let norm = dot(&g, &g).sqrt() + self.eps;
            *h_i = tanh(dot(&g, z) / norm + self.b[i]);
        }
        for (i, next) in next.chunks_exact_mut(m).enumerate() {
            let f = &fast[i * m..(i + 1) * m];
            let norm = self.clamped(i, h[i], z, f, [&mut u, next, &mut g]);
            // One division a row, a product a cell (a vector division costs about twenty).
            let inverse = (norm + self.eps).recip();
            for v in next.iter_mut() {
                *v = *v * inverse;
            }
        }
    }

    /// `g = W[i] + f`: row `i` of `[W_in | W]` plus that of the fast weights `f`.
    #[inline(always)]
    fn sum_row(&self, i: usize, f: &[T], g: &mut [T]) {
        let w = &self.w[i * self.width..(i + 1) * self.width];
        for ((g, &w), &f) in g.iter_mut().zip(w).zip(f) {
            *g = w + f;
        }
    }

    /// Row `i` of the update before its normalisation, `u = λ ⊙ f + γ ⊙ h_i z` and
    /// `c = clamp(u, −c, c)` (`f`: row `i` of `F_{t−1}`), and `g = W[i] + c`; returns `‖g‖₂`.
    #[inline(always)]
    fn clamped(&self, i: usize, h_i: T, z: &[T], f: &[T], [u, c, g]: [&mut [T]; 3]) -> T {
        let at = i * self.width..(i + 1) * self.width;
        let (lambda, gamma) = (&self.lambda[at.clone()], &self.gamma[at]);
        for j in 0..self.width {
            u[j] = f[j] * lambda[j] + gamma[j] * (h_i * z[j]);
            c[j] = clamp(u[j], -self.clip, self.clip);
        }
        self.sum_row(i, c, g);
        dot(g, g).sqrt()
    }

    fn carry(&self, batch: usize) -> Carry<T> {
        let (hidden, width) = (self.hidden, self.width);
        let groups = batch.div_ceil(group_rows(batch));
        Carry {
            dfast: vec![T::zero(); batch * hidden * width],
            dh: vec![T::zero(); batch * hidden],
            sums: (0..groups).map(|_| self.zero_sums()).collect(),
            scratch: (0..groups).map(|_| Scratch::new(hidden, width)).collect(),
        }
    }

    fn step_back(&self, carry: &mut Carry<T>, step: StpnBackStep) {
        let (hidden, width) = (self.hidden, self.width);
        let batch = carry.dh.len() / hidden;
        let rows = group_rows(batch);
        let held = [step.z, step.h, step.fast, step.grad_h].map(Tensor::contiguous);
        let [z, h, fast, grad_h] = held.each_ref().map(data::<T>);
        let mut groups: Vec<Group<T>> = carry
            .dfast
            .chunks_mut(rows * hidden * width)
            .zip(carry.dh.chunks_mut(rows * hidden))
            .zip(carry.sums.iter_mut().zip(carry.scratch.iter_mut()))
            .map(|((dfast, dh), (sums, scratch))| Group {
                dfast,
                dh,
                sums,
                scratch,
            })
            .collect();
        let cells = batch * hidden * width;
        pool::for_each(cells, &mut groups, Share::Pinned, |k, group| {
            let dfast = group.dfast.chunks_exact_mut(hidden * width);
            let dh = group.dh.chunks_exact_mut(hidden);
            for (r, (dfast, dh)) in dfast.zip(dh).enumerate() {
                let b = k * rows + r;
                if step.done.is_some_and(|done| done[b]) {
                    // A reset cuts every gradient path through the state.
                    dfast.fill(T::zero());
                    dh.fill(T::zero());
                }
                let x = RowBack {
                    z: row(z, b, width),
                    h: row(h, b, hidden),
                    fast: row(fast, b, hidden * width),
                    grad_h: row(grad_h, b, hidden),
                };
                self.back_row(x, dfast, dh, group.sums, group.scratch);
            }
        });
    }

    /// Zero sums.
    fn zero_sums(&self) -> Sums<T> {
        let n = self.hidden * self.width;
        Sums {
            w: vec![T::zero(); n],
            b: vec![T::zero(); self.hidden],
            lambda: vec![T::zero(); n],
            gamma: vec![T::zero(); n],
        }
    }

    /// The groups' sums added in group order, as tensors in the parameters' shapes.
    fn total(&self, sums: &[Sums<T>]) -> ParamGrads {
        let (h, m) = (self.hidden as i64, self.width as i64);
        let add = |part: fn(&Sums<T>) -> &[T], dims: &[i64]| {
            let mut total = part(&sums[0]).to_vec();
            for s in &sums[1..] {
                for (t, &v) in total.iter_mut().zip(part(s)) {
                    *t = *t + v;
                }
            }
            Tensor::from_slice(&total).view(dims)
        };
        // A scalar λ or γ was repeated over the synapses: its gradient is their sum.
        let shaped = |t: Tensor| match self.scalar {
            true => t.sum(T::KIND).view([1]),
            false => t,
        };
        ParamGrads {
            w: add(|s| &s.w, &[h, m]),
            b: add(|s| &s.b, &[h]),
            lambda: shaped(add(|s| &s.lambda, &[h, m])),
            gamma: shaped(add(|s| &s.gamma, &[h, m])),
        }
    }

    rows!(back_row, back_avx2, back_avx512, back_body,
        (x: RowBack<'_, T>, dfast: &mut [T], dh: &mut [T], sums: &mut Sums<T>, s: &mut Scratch<T>));

    /// One batch row back through one step (`cores/stpn.rs`'s `update_backward`, then its
    /// `backward`): `dfast` and `dh` come in as `∂L/∂F_t` and `∂L/∂h_t` from the later steps
    /// and leave as `∂L/∂F_{t−1}` and `∂L/∂h_{t−1}`.
    #[inline(always)]
    fn back_body(
        &self,
        x: RowBack<T>,
        dfast: &mut [T],
        dh: &mut [T],
        sums: &mut Sums<T>,
        s: &mut Scratch<T>,
    ) {
        let (m, zero) = (self.width, T::zero());
        s.dz.fill(zero);
        // The update: F_t = C / N' with N' = ‖W + C‖ + ε per row, C = clamp(U).
        for i in 0..self.hidden {
            let at = i * m..(i + 1) * m;
            let (f, df) = (&x.fast[at.clone()], &mut dfast[at.clone()]);
            let norm = self.clamped(i, x.h[i], x.z, f, [&mut s.u, &mut s.c, &mut s.g]);
            let big_n = norm + self.eps;
            // dC = dF / N' − k (W + C), k = Σ_j dF_j F_t,j / (N' ‖W + C‖), F_t = C / N'.
            let k = dot(df, &s.c) / big_n / (big_n * norm.max(self.floor));
            let inverse = big_n.recip();
            let (lambda, gamma) = (&self.lambda[at.clone()], &self.gamma[at.clone()]);
            let sum_w = &mut sums.w[at.clone()];
            let sum_lambda = &mut sums.lambda[at.clone()];
            let sum_gamma = &mut sums.gamma[at.clone()];
            let (h_i, z, u, g) = (x.h[i], &x.z[..m], &s.u[..m], &s.g[..m]);
            // `s.c` is free again: it takes ∂L/∂(h_t ⊗ z_t) of the row.
            let dhebb = &mut s.c[..m];
            for j in 0..m {
                let through_norm = -(k * g[j]);
                let dc = df[j] * inverse + through_norm;
                // The clamp passes the gradient where −c ≤ u ≤ c (bounds included).
                let du = if u[j].abs() <= self.clip { dc } else { zero };
                sum_w[j] = sum_w[j] + through_norm;
                dhebb[j] = du * gamma[j];
                s.dz[j] = s.dz[j] + dhebb[j] * h_i;
                // Summed whether or not λ and γ are learned (`core.stp_learned`), as the
                // operations engine does: the gradient reaches only learned parameters, and a
                // store under a condition compiles to AVX2's masked store, many times slower
                // on AMD's CPUs than the two sums.
                sum_lambda[j] = sum_lambda[j] + du * f[j];
                sum_gamma[j] = sum_gamma[j] + du * (h_i * z[j]);
                df[j] = du * lambda[j];
            }
            s.dpost[i] = dot(dhebb, z);
        }
        // The cell: h = tanh(y / N + b), y = G z, N = ‖G‖ + ε, G = W + F_{t−1}.
        for ((d, &later), &loss) in s.dh.iter_mut().zip(dh.iter()).zip(x.grad_h) {
            *d = later + loss;
        }
        rnn::backward_row(x.h, &s.dh, &s.dpost, &mut s.da);
        for i in 0..self.hidden {
            let at = i * m..(i + 1) * m;
            self.sum_row(i, &x.fast[at.clone()], &mut s.g);
            let norm = dot(&s.g, &s.g).sqrt();
            let big_n = norm + self.eps;
            let y = dot(&s.g, x.z);
            let da = s.da[i];
            let dy = da / big_n;
            // N's gradient reaches G along G / ‖G‖.
            let along = -(da * y) / (big_n * big_n) / norm.max(self.floor);
            let (df, sum_w) = (&mut dfast[at.clone()], &mut sums.w[at]);
            let (z, g) = (&x.z[..m], &s.g[..m]);
            for j in 0..m {
                let dg = dy * z[j] + along * g[j];
                sum_w[j] = sum_w[j] + dg;
                df[j] = df[j] + dg;
                s.dz[j] = s.dz[j] + g[j] * dy;
            }
            sums.b[i] = sums.b[i] + da;
        }
        dh.copy_from_slice(&s.dz[self.inputs..]);
    }
}
