//! The plastic RNN's steps back on the host, for [`super::super::fused`]: a window of steps
//! (the whole rollout, or one trace checkpoint's segment) in one parallel region.
//!
//! Going back, batch rows depend on each other only through α's gradient, a sum over rows
//! kept per group of rows fixed by `B`. So each group is one task, which takes its rows back
//! through every step of the window, one row at a time, with no hand-off between steps: a
//! row's carried gradient `∂L/∂Hebb` (`H²` values) and the trace it just read stay in its
//! core's cache from one step to the next, where handing the batch out afresh at every step
//! would move them between cores and wait for the slowest thread each time.
use super::super::traces::cpu::{dot, group_rows, rows, RetroRows, RetroUpdate, Rows3, Update};
use super::super::traces::{data, data_mut, pool};
use super::{row, tanh, Drive, HostCore, HostStep, Kinded, LSTM_GATES};
use crate::cores::Rule;
use num_traits::Float;
use std::ops::Range;
use tch::kind::Element;
use tch::{Device, Kind, Tensor};

/// One recorded step as a step back reads it: `[B × H]` or `[B × H × H]` CPU tensors of the
/// core's kind.
pub(in crate::cores::bptt) struct BackStep<'a> {
    /// `∂L/∂h_t` from the loss.
    pub grad_h: Tensor,
    /// `h_{t−1}` after the resets.
    pub pre: &'a Tensor,
    /// `h_t`.
    pub h: &'a Tensor,
    /// `Hebb_{t−1}`, `Hebb_t`, `E_{t−1}`.
    pub hebb: &'a Tensor,
    pub next: &'a Tensor,
    pub elig: Option<&'a Tensor>,
    /// The LSTM's gate activations `i, f, g, o` (`[B × 4H]`), `c_t` and `c_{t−1}`.
    pub lstm: Option<[&'a Tensor; 3]>,
    /// The rows whose episode ended after this step: what later steps carry back stops there.
    pub done: Option<Vec<bool>>,
}

/// What the backward pass carries from step to step, updated in place: `∂L/∂h_t` (and the
/// LSTM's `∂L/∂c_t`) through the state, `∂L/∂Hebb_t` and `∂L/∂E_t` (they become those of the
/// step before), and α's gradient
/// (α per connection), summed over steps in the partial sums of
/// [`super::super::traces::Backend::alpha_groups`]. Contiguous, allocated by the caller and
/// shared with no one.
pub(in crate::cores::bptt) struct BackCarry<'a> {
    pub dh: &'a mut Tensor,
    pub dc: Option<&'a mut Tensor>,
    pub grad_hebb: &'a mut Tensor,
    pub grad_elig: Option<&'a mut Tensor>,
    pub dalpha: Option<&'a mut Tensor>,
}

/// Every step's gradients of the per-neuron quantities the parameters enter through: the
/// pre-activations `da` (`[T × B × G·H]`, `G` = 4 gates for the LSTM), and, `[T × B × H]`
/// each, the factors in [`super::super::fused`]'s
/// `factor_graph` order (`[s, keep]` of the rule, `keep` for rules that have one; `[M, s,
/// keep]` under retroactive modulation). Each window writes its steps' rows.
pub(in crate::cores::bptt) struct StepGrads {
    pub da: Tensor,
    pub dfactors: Vec<Tensor>,
}

impl HostStep {
    /// Room for the gradients of `steps` steps of `batch` rows.
    pub fn step_grads(&self, steps: usize, batch: i64) -> StepGrads {
        let (h, gates, factors, kind) = match &self.0 {
            Kinded::F32(core) => (
                core.hidden,
                core.gates(),
                core.factors_per_step(),
                Kind::Float,
            ),
            Kinded::F64(core) => (
                core.hidden,
                core.gates(),
                core.factors_per_step(),
                Kind::Double,
            ),
        };
        let empty = |n: usize| Tensor::empty([steps as i64, batch, n as i64], (kind, Device::Cpu));
        StepGrads {
            da: empty(gates * h),
            dfactors: (0..factors).map(|_| empty(h)).collect(),
        }
    }

    /// Steps `first … first + steps.len() − 1` back (`steps` in forward order): updates
    /// `carry` and writes the steps' rows of `grads`.
    pub fn backward(
        &self,
        first: usize,
        steps: &[BackStep],
        carry: BackCarry,
        grads: &mut StepGrads,
    ) {
        match &self.0 {
            Kinded::F32(rnn) => rnn.backward(first, steps, carry, grads),
            Kinded::F64(rnn) => rnn.backward(first, steps, carry, grads),
        }
    }
}

/// One step's inputs as host slices, `[B × H]` or `[B × H × H]`.
struct StepRows<'a, T> {
    grad_h: &'a [T],
    pre: &'a [T],
    post: &'a [T],
    hebb: &'a [T],
    next: &'a [T],
    elig: Option<&'a [T]>,
    /// `[B × 4H]`, `[B × H]`, `[B × H]`.
    lstm: Option<[&'a [T]; 3]>,
    done: Option<&'a [bool]>,
}

/// What a group of rows writes: its rows of the carried gradients, and per step of the
/// window its rows of [`StepGrads`] (`None` for a factor the rule does not have).
struct GroupOut<'a, T> {
    grad_hebb: &'a mut [T],
    grad_elig: Option<&'a mut [T]>,
    dh: &'a mut [T],
    dc: Option<&'a mut [T]>,
    /// The group's partial sum of α's gradient, `[H × H]`.
    dalpha: Option<&'a mut [T]>,
    da: Vec<&'a mut [T]>,
    ds: Vec<&'a mut [T]>,
    dkeep: Option<Vec<&'a mut [T]>>,
    dm: Option<Vec<&'a mut [T]>>,
}

/// Steps `steps` of `t` (`[T × B × H]`, `step_len` = `B·H` values a step) as `[group][step]`
/// pieces of `group_len` values.
fn by_group<T: Element>(
    t: &mut Tensor,
    steps: Range<usize>,
    step_len: usize,
    group_len: usize,
) -> Vec<Vec<&mut [T]>> {
    let groups = step_len.div_ceil(group_len);
    let mut out: Vec<Vec<&mut [T]>> = (0..groups).map(|_| Vec::new()).collect();
    let window = &mut data_mut::<T>(t)[steps.start * step_len..steps.end * step_len];
    for step in window.chunks_mut(step_len) {
        for (g, piece) in step.chunks_mut(group_len).enumerate() {
            out[g].push(piece);
        }
    }
    out
}

/// One batch row's buffers for one step back.
struct RowOut<'a, T> {
    grad_hebb: &'a mut [T],
    grad_elig: Option<&'a mut [T]>,
    /// `∂L/∂h_t` (and `∂L/∂c_t`) from later steps in, those of step `t − 1` out.
    dh: &'a mut [T],
    dc: Option<&'a mut [T]>,
    da: &'a mut [T],
    ds: &'a mut [T],
    dkeep: Option<&'a mut [T]>,
    dm: Option<&'a mut [T]>,
    dalpha: Option<&'a mut [T]>,
}

/// The `H`-long vectors a step back works in, allocated once per group and window.
struct Scratch<T> {
    keep: Vec<T>,
    s: Vec<T>,
    rate: Vec<T>,
    big_m: Vec<T>,
    dpre: Vec<T>,
    dkeep: Vec<T>,
    dpost: Vec<T>,
    drate: Vec<T>,
    dh_t: Vec<T>,
    draw: Vec<T>,
}

impl<T: Float> Scratch<T> {
    fn new(h: usize) -> Self {
        let v = || vec![T::zero(); h];
        Self {
            keep: v(),
            s: v(),
            rate: v(),
            big_m: v(),
            dpre: v(),
            dkeep: v(),
            dpost: v(),
            drate: v(),
            dh_t: v(),
            draw: v(),
        }
    }
}

impl<T: Element + Float + Send + Sync> HostCore<T> {
    fn retroactive(&self) -> bool {
        matches!(self.drive, Drive::Retroactive { .. })
    }

    /// Whether the trace update has a `keep` factor with a gradient.
    fn has_keep(&self) -> bool {
        self.retroactive() || self.rule != Rule::Hebb
    }

    fn factors_per_step(&self) -> usize {
        if self.retroactive() {
            3
        } else {
            1 + usize::from(self.has_keep())
        }
    }

    fn backward(&self, first: usize, steps: &[BackStep], carry: BackCarry, grads: &mut StepGrads) {
        let h = self.hidden;
        let batch = carry.dh.size()[0] as usize;
        let rows = group_rows(batch);
        let held: Vec<[Tensor; 5]> = steps
            .iter()
            .map(|s| [&s.grad_h, s.pre, s.h, s.hebb, s.next].map(Tensor::contiguous))
            .collect();
        let eligs: Vec<Option<Tensor>> = steps
            .iter()
            .map(|s| s.elig.map(Tensor::contiguous))
            .collect();
        let lstm: Vec<Option<[Tensor; 3]>> = steps
            .iter()
            .map(|s| s.lstm.map(|l| l.map(Tensor::contiguous)))
            .collect();
        let inputs: Vec<StepRows<T>> = held
            .iter()
            .zip(&eligs)
            .zip(&lstm)
            .zip(steps)
            .map(
                |((([grad_h, pre, post, hebb, next], elig), lstm), s)| StepRows {
                    grad_h: data(grad_h),
                    pre: data(pre),
                    post: data(post),
                    hebb: data(hebb),
                    next: data(next),
                    elig: elig.as_ref().map(data),
                    lstm: lstm.as_ref().map(|l| l.each_ref().map(data)),
                    done: s.done.as_deref(),
                },
            )
            .collect();
        // This window's steps of the per-step gradients, by group.
        let (bh, gh) = (batch * h, rows * h);
        let window = first..first + steps.len();
        let step_grads = |t| by_group::<T>(t, window.clone(), bh, gh).into_iter();
        let gates = self.gates();
        let mut da =
            by_group::<T>(&mut grads.da, window.clone(), gates * bh, gates * gh).into_iter();
        // In `factor_graph`'s order: `[M, s, keep]` under retroactive modulation, else
        // `[s]` or `[s, keep]`.
        let mut factors = grads.dfactors.iter_mut().map(step_grads);
        let mut dm = if self.retroactive() {
            factors.next()
        } else {
            None
        };
        let mut ds = factors.next().expect("every rule has an s");
        let mut dkeep = factors.next();
        let mut grad_elig = carry
            .grad_elig
            .map(|g| data_mut::<T>(g).chunks_mut(rows * h * h));
        let mut dalpha = carry.dalpha.map(|d| data_mut::<T>(d).chunks_mut(h * h));
        let mut dc = carry.dc.map(|d| data_mut::<T>(d).chunks_mut(gh));
        let mut groups: Vec<GroupOut<T>> = data_mut::<T>(carry.grad_hebb)
            .chunks_mut(rows * h * h)
            .zip(data_mut::<T>(carry.dh).chunks_mut(gh))
            .map(|(grad_hebb, dh)| GroupOut {
                grad_hebb,
                grad_elig: grad_elig.as_mut().and_then(Iterator::next),
                dh,
                dc: dc.as_mut().and_then(Iterator::next),
                dalpha: dalpha.as_mut().and_then(Iterator::next),
                da: da.next().expect("one piece per group"),
                ds: ds.next().expect("one piece per group"),
                dkeep: dkeep.as_mut().and_then(Iterator::next),
                dm: dm.as_mut().and_then(Iterator::next),
            })
            .collect();
        pool::for_each(batch * h * h * steps.len(), &mut groups, |k, out| {
            let mut scratch = Scratch::new(h);
            for r in 0..out.dh.len() / h {
                let b = k * rows + r;
                let at = |n: usize| r * n..(r + 1) * n;
                for (s, x) in inputs.iter().enumerate().rev() {
                    let ahead = s
                        .checked_sub(1)
                        .map(|before| row(inputs[before].hebb, b, h * h));
                    let mut row_out = RowOut {
                        grad_hebb: &mut out.grad_hebb[at(h * h)],
                        grad_elig: out.grad_elig.as_deref_mut().map(|g| &mut g[at(h * h)]),
                        dh: &mut out.dh[at(h)],
                        dc: out.dc.as_deref_mut().map(|d| &mut d[at(h)]),
                        da: &mut out.da[s][at(gates * h)],
                        ds: &mut out.ds[s][at(h)],
                        dkeep: out.dkeep.as_mut().map(|d| &mut d[s][at(h)]),
                        dm: out.dm.as_mut().map(|d| &mut d[s][at(h)]),
                        dalpha: out.dalpha.as_deref_mut(),
                    };
                    if x.done.is_some_and(|done| done[b]) {
                        // A reset cuts every gradient path through the state.
                        row_out.grad_hebb.fill(T::zero());
                        if let Some(g) = row_out.grad_elig.as_deref_mut() {
                            g.fill(T::zero());
                        }
                        row_out.dh.fill(T::zero());
                        if let Some(d) = row_out.dc.as_deref_mut() {
                            d.fill(T::zero());
                        }
                    }
                    let step = RowBack {
                        grad_h: row(x.grad_h, b, h),
                        pre: row(x.pre, b, h),
                        post: row(x.post, b, h),
                        hebb: row(x.hebb, b, h * h),
                        next: row(x.next, b, h * h),
                        elig: x.elig.map(|e| row(e, b, h * h)),
                        lstm: x.lstm.map(|[gates, c, c_prev]| {
                            [
                                row(gates, b, LSTM_GATES * h),
                                row(c, b, h),
                                row(c_prev, b, h),
                            ]
                        }),
                        ahead,
                    };
                    self.row_back(step, row_out, &mut scratch);
                }
            }
        });
    }
}

/// One batch row's inputs to a step back.
struct RowBack<'a, T> {
    grad_h: &'a [T],
    pre: &'a [T],
    /// `h_t`.
    post: &'a [T],
    hebb: &'a [T],
    next: &'a [T],
    elig: Option<&'a [T]>,
    /// The LSTM's gate activations `i, f, g, o`, `c_t` and `c_{t−1}`.
    lstm: Option<[&'a [T]; 3]>,
    /// `Hebb_{t−2}`, which the step after this one reads (none at the window's start).
    ahead: Option<&'a [T]>,
}

impl<T: Element + Float + Send + Sync> HostCore<T> {
    rows!(row_back, row_back_avx2, row_back_avx512, row_back_body,
        (x: RowBack<'_, T>, g: RowOut<'_, T>, scratch: &mut Scratch<T>));

    /// One batch row back through one step, as [`super::super::fused`]'s backward loop does
    /// for the whole batch with libtorch operations (docs/backward-pass.md, steps 1–4 back).
    #[inline(always)]
    fn row_back_body(&self, x: RowBack<T>, g: RowOut<T>, scratch: &mut Scratch<T>) {
        let h = self.hidden;
        let one = T::one();
        let h_t = x.post;
        // The trace's post-synaptic activity: h_t, or the LSTM's g_t.
        let post = match x.lstm {
            Some([gates, ..]) => &gates[2 * h..3 * h],
            None => h_t,
        };
        let m = self.modulator().map(|md| md.output(h_t));
        let Scratch {
            keep,
            s,
            rate,
            big_m,
            dpre,
            dkeep: dkeep_local,
            dpost,
            drate,
            dh_t,
            draw,
        } = scratch;
        dpre.fill(T::zero());
        let retro = match (&self.drive, m) {
            (Drive::Retroactive { modulator, eta_e }, Some(m)) => Some((modulator, eta_e, m)),
            _ => None,
        };
        if let Some((modulator, eta_e, m)) = retro {
            for i in 0..h {
                big_m[i] = modulator.at(m, i);
                keep[i] = one - eta_e[i];
                s[i] = post[i] * eta_e[i];
            }
            let update = RetroUpdate {
                base: self.update(x.hebb, x.pre, keep, s),
                elig: x
                    .elig
                    .expect("retroactive modulation has an eligibility trace"),
                m: big_m,
            };
            let dm = g.dm.expect("retroactive modulation writes dM");
            let dkeep = g.dkeep.expect("the eligibility trace has a keep");
            let grad_elig = g.grad_elig.expect("retroactive modulation carries dE");
            let rows = RetroRows {
                dm: &mut *dm,
                ds: &mut *g.ds,
                dkeep: &mut *dkeep,
                dpre: &mut *dpre,
            };
            update.update_row(0, x.next, g.grad_hebb, grad_elig, rows);
            for i in 0..h {
                dpost[i] = g.ds[i] * eta_e[i];
                drate[i] = dm[i];
            }
            // The Hebbian trace keeps all of itself.
            keep.fill(one);
        } else {
            for i in 0..h {
                rate[i] = match (&self.drive, m) {
                    (Drive::Eta(eta), _) => eta[i],
                    (Drive::Simple(md), Some(m)) => md.at(m, i),
                    _ => unreachable!("a modulated rule has a modulator output"),
                };
                (keep[i], s[i]) = self.factors(rate[i], post[i]);
            }
            let has_keep = g.dkeep.is_some();
            let dkeep: &mut [T] = match g.dkeep {
                Some(d) => d,
                None => dkeep_local,
            };
            let rows = Rows3 {
                ds: &mut *g.ds,
                dkeep: &mut *dkeep,
                dpre: &mut *dpre,
            };
            self.update(x.hebb, x.pre, keep, s)
                .update_row(0, x.next, g.grad_hebb, has_keep, rows);
            for i in 0..h {
                let (r, p, d) = (rate[i], post[i], g.ds[i]);
                let (mut dp, mut dr) = (d * r, d * p);
                if has_keep {
                    let k = dkeep[i];
                    match self.rule {
                        Rule::Hebb => {}
                        Rule::Decay => dr = dr - k,
                        Rule::Oja => {
                            dp = dp - r * p * k * (one + one);
                            dr = dr - p * p * k;
                        }
                        Rule::Instar => {
                            dp = dp - r * k;
                            dr = dr - p * k;
                        }
                    }
                }
                dpost[i] = dp;
                drate[i] = dr;
            }
        }
        // ∂L/∂h_t: from the loss, from the steps after, and through the modulator (which
        // reads h_t): ∂L/∂m = Σ_i ∂L/∂M_i (· f_i), tanh' = 1 − m².
        for ((d, &a), &b) in dh_t.iter_mut().zip(x.grad_h).zip(g.dh.iter()) {
            *d = a + b;
        }
        if let (Some(md), Some(m)) = (self.modulator(), m) {
            let dm = match &md.fan_out {
                Some(f) => dot(drate, f),
                None => drate.iter().fold(T::zero(), |a, &d| a + d),
            };
            let gm = dm * (one - m * m);
            for (d, &w) in dh_t.iter_mut().zip(&md.w) {
                *d = *d + gm * w;
            }
        }
        let da_plastic = match (x.lstm, g.dc) {
            (Some([gates, c, c_prev]), Some(dc)) => {
                // The LSTM (σ' = σ(1 − σ), tanh' = 1 − tanh²); the trace's ∂L/∂post adds to
                // ∂L/∂g, and the plastic layer is g's.
                for i in 0..h {
                    let (gi, gf, gg, go) =
                        (gates[i], gates[h + i], gates[2 * h + i], gates[3 * h + i]);
                    let tanh_c = tanh(c[i]);
                    let dc_t = dh_t[i] * go * (one - tanh_c * tanh_c) + dc[i];
                    g.da[i] = dc_t * gg * gi * (one - gi);
                    g.da[h + i] = dc_t * c_prev[i] * gf * (one - gf);
                    g.da[2 * h + i] = (dc_t * gi + dpost[i]) * (one - gg * gg);
                    g.da[3 * h + i] = dh_t[i] * tanh_c * go * (one - go);
                    dc[i] = dc_t * gf;
                }
                &g.da[2 * h..3 * h]
            }
            _ => {
                // The tanh cell: tanh' = 1 − h²; post = h_t, so ∂L/∂post adds to ∂L/∂h_t.
                for i in 0..h {
                    g.da[i] = (dh_t[i] + dpost[i]) * (one - h_t[i] * h_t[i]);
                }
                &g.da[..]
            }
        };
        for (i, d) in draw.iter_mut().enumerate() {
            *d = match &self.alpha_neuron {
                Some(alpha) => da_plastic[i] * alpha[i],
                None => da_plastic[i],
            };
        }
        let update = Update {
            ahead: x.ahead,
            ..self.update(x.hebb, x.pre, keep, s)
        };
        update.input_rows(0, draw, g.grad_hebb, dpre, g.dalpha);
        // ∂L/∂h_{t−1} = Wᵀ da (every gate's rows) + the traces' part.
        g.dh.copy_from_slice(dpre);
        for (i, &da) in g.da.iter().enumerate() {
            for (d, &w) in g.dh.iter_mut().zip(&self.w[i * h..(i + 1) * h]) {
                *d = *d + da * w;
            }
        }
    }
}
