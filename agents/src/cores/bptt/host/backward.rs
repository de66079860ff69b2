//! The plastic RNN's and LSTM's steps back on the host, for [`super::super::fused`]: the
//! whole rollout in one parallel region.
//!
//! Going back, batch rows depend on each other only through α's gradient, a sum over rows
//! kept per group of rows fixed by `B`. So each group is one task, which takes its rows back
//! through every step, one row at a time, with no hand-off between steps: a row's carried
//! gradient `∂L/∂Hebb` (`H²` values) and the trace it just read stay in its core's cache from
//! one step to the next, where handing the batch out afresh at every step would move them
//! between cores and wait for the slowest thread each time.
//!
//! A step back takes two passes over the traces: the first (the trace update's clip and
//! factors) before the cell, the second (the plastic input, `Hebb_{t−1}`'s gradient) after it.
//! Between resets, the second pass of step `t` and the first of step `t − 1` run as one sweep,
//! which reads and writes the carried gradient once where the two passes each would.
//!
//! Where the forward pass kept only every k-th trace (`a2c.trace_checkpoint_every`), a row
//! rebuilds the dropped ones of the segment it enters from the kept one before them, into a
//! buffer of its task: `k − 1` traces of one row, which stay in cache, where rebuilding them
//! for the whole batch would write them to memory and read them back.
use super::super::pool::{self, Share};
use super::{data, data_mut, row, HostCore, HostStep, Kinded, RowFactors, LSTM_GATES};
use crate::cores::plasticity::Neuromodulation;
use crate::cores::rules::ELIGIBILITY;
use crate::cores::trace_update::rows::{
    group_rows, rows, Before, RetroRows, RetroUpdate, Rows3, Update,
};
use crate::cores::{lstm, rnn};
use num_traits::Float;
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
    /// The LSTM's gate activations `i, f, g, o` (`[B × 4H]`), `c_t` and `c_{t−1}`.
    pub lstm: Option<[&'a Tensor; 3]>,
    /// The rows whose episode ended after this step: what later steps carry back stops there.
    pub done: Option<Vec<bool>>,
}

/// The traces the steps back read, `[B × H × H]` CPU tensors of the core's kind:
/// `Hebb_0 … Hebb_T` and, under retroactive modulation, `E_0 … E_T`; `None` where the forward
/// pass dropped one (never the first or the last).
pub(in crate::cores::bptt) struct BackTraces<'a> {
    pub hebb: Vec<Option<&'a Tensor>>,
    pub elig: Option<Vec<Option<&'a Tensor>>>,
}

/// What the backward pass carries from step to step, updated in place: `∂L/∂h_t` (and the
/// LSTM's `∂L/∂c_t`) through the state, `∂L/∂Hebb_t` and `∂L/∂E_t` (they become those of the
/// step before), and α's gradient
/// (α per connection), summed over steps in the partial sums of
/// [`crate::cores::trace_update::rows::alpha_groups`]. Contiguous, allocated by the caller and
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
/// keep]` under retroactive modulation).
pub(in crate::cores::bptt) struct StepGrads {
    pub da: Tensor,
    pub dfactors: Vec<Tensor>,
}

impl HostStep {
    /// Room for the gradients of `steps` steps of `batch` rows.
    pub fn step_grads(&self, steps: usize, batch: i64) -> StepGrads {
        let (h, posts, gates, factors, kind) = match &self.0 {
            Kinded::F32(core) => (
                core.hidden,
                core.posts,
                core.gates(),
                core.factors_per_step(),
                Kind::Float,
            ),
            Kinded::F64(core) => (
                core.hidden,
                core.posts,
                core.gates(),
                core.factors_per_step(),
                Kind::Double,
            ),
        };
        let empty = |n: usize| Tensor::empty([steps as i64, batch, n as i64], (kind, Device::Cpu));
        StepGrads {
            da: empty(gates * h),
            dfactors: (0..factors).map(|_| empty(posts)).collect(),
        }
    }

    /// Every step back (`steps` in forward order, reading `traces`): updates `carry` and
    /// writes `grads`.
    pub fn backward(
        &self,
        steps: &[BackStep],
        traces: &BackTraces,
        carry: BackCarry,
        grads: &mut StepGrads,
    ) {
        match &self.0 {
            Kinded::F32(core) => core.backward(steps, traces, carry, grads),
            Kinded::F64(core) => core.backward(steps, traces, carry, grads),
        }
    }
}

/// One step's inputs as host slices, `[B × H]`.
struct StepRows<'a, T> {
    grad_h: &'a [T],
    pre: &'a [T],
    /// `h_t`.
    h: &'a [T],
    /// `[B × 4H]`, `[B × H]`, `[B × H]`.
    lstm: Option<[&'a [T]; 3]>,
    done: Option<&'a [bool]>,
}

impl<T> StepRows<'_, T> {
    /// The trace's post-synaptic activity in batch row `b`: `h_t`, or the LSTM's `g_t`.
    fn post(&self, b: usize, h: usize) -> &[T] {
        match self.lstm {
            Some([gates, ..]) => &row(gates, b, LSTM_GATES * h)[2 * h..3 * h],
            None => row(self.h, b, h),
        }
    }
}

/// [`BackTraces`] as host slices.
struct TraceRows<'a, T> {
    hebb: Vec<Option<&'a [T]>>,
    elig: Option<Vec<Option<&'a [T]>>>,
}

/// One batch row's traces of the checkpoint segment its steps back are in, rebuilt from the
/// kept trace that starts it at step `start`: `Hebb_u` (and `E_u`) for `u` in
/// `start + 1 ..= end`, in slot `u − start − 1` of `H²` values.
struct Segment<T> {
    start: usize,
    end: usize,
    hebb: Vec<T>,
    elig: Option<Vec<T>>,
}

/// What a group of rows writes: its rows of the carried gradients, and per step its rows of
/// [`StepGrads`] (`None` for a factor the rule does not have).
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

/// `t` (`[T × B × H]`, `step_len` = `B·H` values a step) as `[group][step]` pieces of
/// `group_len` values.
fn by_group<T: Element>(t: &mut Tensor, step_len: usize, group_len: usize) -> Vec<Vec<&mut [T]>> {
    let groups = step_len.div_ceil(group_len);
    let mut out: Vec<Vec<&mut [T]>> = (0..groups).map(|_| Vec::new()).collect();
    for step in data_mut::<T>(t).chunks_mut(step_len) {
        for (g, piece) in step.chunks_mut(group_len).enumerate() {
            out[g].push(piece);
        }
    }
    out
}

/// One batch row's buffers for a step back's cell and second trace pass.
struct RowOut<'a, T> {
    /// `G` of the unclipped trace in, `∂L/∂Hebb_{t−1}` out (the step before's `G` where the
    /// sweep does its first pass); under retroactive modulation `∂L/∂E_{t−1}`, which that
    /// first pass takes a step further back.
    grad_hebb: &'a mut [T],
    grad_elig: Option<&'a mut [T]>,
    /// `∂L/∂h_t` (and `∂L/∂c_t`) from later steps in, those of step `t − 1` out.
    dh: &'a mut [T],
    dc: Option<&'a mut [T]>,
    da: &'a mut [T],
    /// Step `t`'s `[P]` rows of [`StepGrads`] that its first pass wrote.
    ds: &'a [T],
    dkeep: Option<&'a [T]>,
    dm: Option<&'a [T]>,
    dalpha: Option<&'a mut [T]>,
    /// The step before's outputs of the first pass, where the sweep does it.
    earlier: Option<EarlierOut<'a, T>>,
}

/// Step `t − 1`'s `[P]` rows of [`StepGrads`] that its first trace pass writes.
struct EarlierOut<'a, T> {
    ds: &'a mut [T],
    dkeep: Option<&'a mut [T]>,
    dm: Option<&'a mut [T]>,
}

/// Row piece `at` of a per-step gradient at step `t`, to read, and where the sweep
/// [`HostCore::fuses`] at step `t − 1`, to write.
fn step_and_before<'a, T>(
    steps: &'a mut [&mut [T]],
    t: usize,
    at: std::ops::Range<usize>,
    fuses: bool,
) -> (&'a [T], Option<&'a mut [T]>) {
    if fuses {
        let (before, from_t) = steps.split_at_mut(t);
        (&from_t[0][at.clone()], Some(&mut before[t - 1][at]))
    } else {
        (&steps[t][at], None)
    }
}

/// One batch row's inputs to the trace update's first pass back through step `t`.
struct FirstPass<'a, T> {
    pre: &'a [T],
    /// `Hebb_{t−1}`, `Hebb_t` and, under retroactive modulation, `E_{t−1}`.
    hebb: &'a [T],
    next: &'a [T],
    elig: Option<&'a [T]>,
    /// The row's episode ended after step `t`.
    reset: bool,
}

/// What the first pass writes: the carried gradients (a reset zeroes them first) and step
/// `t`'s `[P]` rows of [`StepGrads`].
struct FirstPassOut<'a, T> {
    grad_hebb: &'a mut [T],
    grad_elig: Option<&'a mut [T]>,
    dh: &'a mut [T],
    dc: Option<&'a mut [T]>,
    ds: &'a mut [T],
    dkeep: Option<&'a mut [T]>,
    dm: Option<&'a mut [T]>,
}

/// The vectors a step back works in, allocated once per group: `H` long, or `P` (one per
/// trace row) for the factors and their gradients.
struct Scratch<T> {
    factors: RowFactors<T>,
    /// Another step's factors: the step before's, for the fused sweep, or a rebuilt step's.
    other: RowFactors<T>,
    /// `∂L/∂h_{t−1}` through the traces: this step's, and the step before's first pass's part.
    dpre: Vec<T>,
    dpre_earlier: Vec<T>,
    dkeep: Vec<T>,
    dpost: Vec<T>,
    drate: Vec<T>,
    dh_t: Vec<T>,
    draw: Vec<T>,
}

impl<T: Float> Scratch<T> {
    fn new(h: usize, posts: usize) -> Self {
        let v = |n: usize| vec![T::zero(); n];
        Self {
            factors: RowFactors::new(posts),
            other: RowFactors::new(posts),
            dpre: v(h),
            dpre_earlier: v(h),
            dkeep: v(posts),
            dpost: v(h),
            drate: v(posts),
            dh_t: v(h),
            draw: v(posts),
        }
    }
}

impl<T: Element + Float + Send + Sync> HostCore<T> {
    fn retroactive(&self) -> bool {
        matches!(self.drive, Neuromodulation::Retroactive { .. })
    }

    /// Whether the trace update has a `keep` factor with a gradient.
    fn has_keep(&self) -> bool {
        self.retroactive() || self.rule.has_keep()
    }

    fn factors_per_step(&self) -> usize {
        if self.retroactive() {
            3
        } else {
            1 + usize::from(self.has_keep())
        }
    }

    fn backward(
        &self,
        steps: &[BackStep],
        traces: &BackTraces,
        carry: BackCarry,
        grads: &mut StepGrads,
    ) {
        let (h, posts) = (self.hidden, self.posts);
        let batch = carry.dh.size()[0] as usize;
        let rows = group_rows(batch);
        let held: Vec<[Tensor; 3]> = steps
            .iter()
            .map(|s| [&s.grad_h, s.pre, s.h].map(Tensor::contiguous))
            .collect();
        let lstm: Vec<Option<[Tensor; 3]>> = steps
            .iter()
            .map(|s| s.lstm.map(|l| l.map(Tensor::contiguous)))
            .collect();
        let inputs: Vec<StepRows<T>> = held
            .iter()
            .zip(&lstm)
            .zip(steps)
            .map(|(([grad_h, pre, h], lstm), s)| StepRows {
                grad_h: data(grad_h),
                pre: data(pre),
                h: data(h),
                lstm: lstm.as_ref().map(|l| l.each_ref().map(data)),
                done: s.done.as_deref(),
            })
            .collect();
        let held_traces = |ts: &Vec<Option<&Tensor>>| -> Vec<Option<Tensor>> {
            ts.iter().map(|t| t.map(Tensor::contiguous)).collect()
        };
        let (hebb, elig) = (
            held_traces(&traces.hebb),
            traces.elig.as_ref().map(held_traces),
        );
        fn trace_rows<T: Element>(ts: &[Option<Tensor>]) -> Vec<Option<&[T]>> {
            ts.iter().map(|t| t.as_ref().map(data)).collect()
        }
        let traces = TraceRows {
            hebb: trace_rows(&hebb),
            elig: elig.as_deref().map(trace_rows),
        };
        // The most traces a row rebuilds at once: the longest run of dropped ones.
        let gap = traces
            .hebb
            .split(Option::is_some)
            .map(<[_]>::len)
            .max()
            .unwrap_or(0);
        // The per-step gradients, by group: the factors' one per trace row.
        let (bh, gh) = (batch * h, rows * h);
        let step_grads = |t| by_group::<T>(t, batch * posts, rows * posts).into_iter();
        let gates = self.gates();
        let mut da = by_group::<T>(&mut grads.da, gates * bh, gates * gh).into_iter();
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
            .map(|g| data_mut::<T>(g).chunks_mut(rows * posts * h));
        let mut dalpha = carry.dalpha.map(|d| data_mut::<T>(d).chunks_mut(posts * h));
        let mut dc = carry.dc.map(|d| data_mut::<T>(d).chunks_mut(gh));
        let mut groups: Vec<GroupOut<T>> = data_mut::<T>(carry.grad_hebb)
            .chunks_mut(rows * posts * h)
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
        // Each group's rows, one after another, back through every step.
        let back = |k: usize, out: &mut GroupOut<T>| {
            let mut scratch = Scratch::new(h, posts);
            let mut segment = Segment::new(gap * posts * h, traces.elig.is_some());
            for r in 0..out.dh.len() / h {
                let b = k * rows + r;
                segment.clear();
                for t in (0..inputs.len()).rev() {
                    self.step_back(b, r, t, &inputs, &traces, &mut segment, out, &mut scratch);
                }
            }
        };
        let cells = batch * posts * h * steps.len();
        pool::for_each(cells, &mut groups, Share::Claimed, back);
    }

    /// Whether batch row `b`'s step back through `t` ends with the trace update's first pass
    /// of step `t − 1`, fused into its own second pass ([`Update::input_update_row`]): not
    /// at the first step, or across a reset (which cuts the gradient in between).
    fn fuses(&self, b: usize, t: usize, inputs: &[StepRows<T>]) -> bool {
        t > 0 && !inputs[t - 1].done.is_some_and(|done| done[b])
    }

    /// Batch row `b` (row `r` of its group) back through step `t`: the trace update's first
    /// pass, unless the step after fused it into its own sweep, then the cell and the second
    /// pass (with the step before's first, where it [`HostCore::fuses`]).
    #[allow(clippy::too_many_arguments)]
    fn step_back(
        &self,
        b: usize,
        r: usize,
        t: usize,
        inputs: &[StepRows<T>],
        traces: &TraceRows<T>,
        segment: &mut Segment<T>,
        out: &mut GroupOut<T>,
        scratch: &mut Scratch<T>,
    ) {
        let (h, posts) = (self.hidden, self.posts);
        let gates = self.gates();
        let x = &inputs[t];
        let at = |n: usize| r * n..(r + 1) * n;
        let hh = posts * h;
        self.ensure_trace(b, t, inputs, traces, segment, &mut scratch.other);
        let m = self.row_factors(row(x.h, b, h), x.post(b, h), &mut scratch.factors);
        if !(t + 1 < inputs.len() && self.fuses(b, t + 1, inputs)) {
            let update = FirstPass {
                pre: row(x.pre, b, h),
                hebb: segment.hebb_at(&traces.hebb, t, b, hh),
                next: segment.hebb_at(&traces.hebb, t + 1, b, hh),
                elig: traces.elig.as_ref().map(|e| segment.elig_at(e, t, b, hh)),
                reset: x.done.is_some_and(|done| done[b]),
            };
            let grads = FirstPassOut {
                grad_hebb: &mut out.grad_hebb[at(hh)],
                grad_elig: out.grad_elig.as_deref_mut().map(|g| &mut g[at(hh)]),
                dh: &mut out.dh[at(h)],
                dc: out.dc.as_deref_mut().map(|d| &mut d[at(h)]),
                ds: &mut out.ds[t][at(posts)],
                dkeep: out.dkeep.as_mut().map(|d| &mut d[t][at(posts)]),
                dm: out.dm.as_mut().map(|d| &mut d[t][at(posts)]),
            };
            self.first_pass(update, grads, scratch);
        }
        let fuses = self.fuses(b, t, inputs);
        let has_keep = out.dkeep.is_some();
        if fuses && (has_keep || traces.elig.is_some()) {
            // The step before's first pass reads the traces before it.
            self.ensure_trace(b, t - 1, inputs, traces, segment, &mut scratch.other);
        }
        let earlier = fuses.then(|| {
            let before = &inputs[t - 1];
            Earlier {
                pre: row(before.pre, b, h),
                h_t: row(before.h, b, h),
                post: before.post(b, h),
                hebb: if has_keep {
                    segment.hebb_at(&traces.hebb, t - 1, b, hh)
                } else {
                    &[]
                },
                elig: traces
                    .elig
                    .as_ref()
                    .map(|e| segment.elig_at(e, t - 1, b, hh)),
            }
        });
        let (ds, ds_before) = step_and_before(&mut out.ds, t, at(posts), fuses);
        let (dkeep, dkeep_before) = out
            .dkeep
            .as_mut()
            .map(|d| step_and_before(d, t, at(posts), fuses))
            .unzip();
        let (dm, dm_before) = out
            .dm
            .as_mut()
            .map(|d| step_and_before(d, t, at(posts), fuses))
            .unzip();
        let row_out = RowOut {
            grad_hebb: &mut out.grad_hebb[at(hh)],
            grad_elig: out.grad_elig.as_deref_mut().map(|g| &mut g[at(hh)]),
            dh: &mut out.dh[at(h)],
            dc: out.dc.as_deref_mut().map(|d| &mut d[at(h)]),
            da: &mut out.da[t][at(gates * h)],
            ds,
            dkeep,
            dm,
            dalpha: out.dalpha.as_deref_mut(),
            earlier: ds_before.map(|ds| EarlierOut {
                ds,
                dkeep: dkeep_before.flatten(),
                dm: dm_before.flatten(),
            }),
        };
        let step = RowBack {
            grad_h: row(x.grad_h, b, h),
            pre: row(x.pre, b, h),
            h_t: row(x.h, b, h),
            post: x.post(b, h),
            hebb: segment.hebb_at(&traces.hebb, t, b, hh),
            lstm: x.lstm.map(|[gates, c, c_prev]| {
                [
                    row(gates, b, LSTM_GATES * h),
                    row(c, b, h),
                    row(c_prev, b, h),
                ]
            }),
            // The trace the step before reads, if it comes from memory (a rebuilt one is in
            // cache).
            ahead: t
                .checked_sub(1)
                .and_then(|u| traces.hebb[u])
                .map(|v| row(v, b, hh)),
            earlier,
        };
        self.row_back(step, row_out, m, scratch);
    }

    /// Makes batch row `b`'s trace after step `t − 1` readable: where the forward pass dropped
    /// it and `segment` does not hold it yet, rebuilds the dropped traces of the segment
    /// holding it into `segment`, from the kept trace before them, as the forward pass wrote
    /// them: the same factors, the same pass, the same resets.
    fn ensure_trace(
        &self,
        b: usize,
        t: usize,
        inputs: &[StepRows<T>],
        traces: &TraceRows<T>,
        segment: &mut Segment<T>,
        f: &mut RowFactors<T>,
    ) {
        if traces.hebb[t].is_some() || segment.holds(t) {
            return;
        }
        let (h, hh) = (self.hidden, self.posts * self.hidden);
        let start = (0..t)
            .rev()
            .find(|&u| traces.hebb[u].is_some())
            .expect("the first trace is kept");
        segment.start = start;
        segment.end = t;
        for (u, x) in inputs.iter().enumerate().take(t).skip(start) {
            self.row_factors(row(x.h, b, h), x.post(b, h), f);
            // The episode ended after step u: the forward pass zeroed the row's traces.
            let ended = x.done.is_some_and(|done| done[b]);
            // `Hebb_u` (slot `u − start − 1`, or the kept trace) and `Hebb_{u+1}`'s slot.
            let (prev, next) = Segment::step(&mut segment.hebb, traces.hebb[u], u - start, b, hh);
            let update = self.update(prev, row(x.pre, b, h), &f.keep, &f.s);
            match (&traces.elig, segment.elig.as_mut()) {
                (Some(eligs), Some(rebuilt)) => {
                    let (elig, next_elig) = Segment::step(rebuilt, eligs[u], u - start, b, hh);
                    let retro = RetroUpdate {
                        base: update,
                        elig,
                        m: &f.rate,
                    };
                    retro.rebuild_row(0, next, next_elig);
                    if ended {
                        next_elig.fill(T::zero());
                    }
                }
                _ => update.rebuild_row(0, next),
            }
            if ended {
                next.fill(T::zero());
            }
        }
    }
}

impl<T: Float> Segment<T> {
    /// Room for `cells` values of each trace.
    fn new(cells: usize, retroactive: bool) -> Self {
        Self {
            start: 0,
            end: 0,
            hebb: vec![T::zero(); cells],
            elig: retroactive.then(|| vec![T::zero(); cells]),
        }
    }

    /// Holds no trace (a new row starts).
    fn clear(&mut self) {
        self.end = self.start;
    }

    /// Whether it holds the trace after step `t − 1`.
    fn holds(&self, t: usize) -> bool {
        self.start < t && t <= self.end
    }

    /// For the rebuild of slot `slot` (the trace after step `start + slot`): batch row `b` of
    /// the trace before it (`kept`, at the segment's start, else the slot before) and the slot.
    fn step<'a>(
        rebuilt: &'a mut [T],
        kept: Option<&'a [T]>,
        slot: usize,
        b: usize,
        hh: usize,
    ) -> (&'a [T], &'a mut [T]) {
        let (before, after) = rebuilt.split_at_mut(slot * hh);
        let prev = match slot {
            0 => row(kept.expect("a segment starts at a kept trace"), b, hh),
            _ => &before[(slot - 1) * hh..],
        };
        (prev, &mut after[..hh])
    }

    /// Batch row `b` of the trace after step `t − 1`: kept, else rebuilt here.
    fn hebb_at<'a>(&'a self, kept: &[Option<&'a [T]>], t: usize, b: usize, hh: usize) -> &'a [T] {
        Self::at(kept, &self.hebb, self.start, t, b, hh)
    }

    fn elig_at<'a>(&'a self, kept: &[Option<&'a [T]>], t: usize, b: usize, hh: usize) -> &'a [T] {
        let rebuilt = self.elig.as_deref().unwrap_or(&[]);
        Self::at(kept, rebuilt, self.start, t, b, hh)
    }

    fn at<'a>(
        kept: &[Option<&'a [T]>],
        rebuilt: &'a [T],
        start: usize,
        t: usize,
        b: usize,
        hh: usize,
    ) -> &'a [T] {
        match kept[t] {
            Some(v) => row(v, b, hh),
            None => {
                debug_assert!(start < t, "trace {t} is neither kept nor rebuilt");
                &rebuilt[(t - start - 1) * hh..(t - start) * hh]
            }
        }
    }
}

/// One batch row's inputs to a step back's cell and second trace pass.
struct RowBack<'a, T> {
    grad_h: &'a [T],
    pre: &'a [T],
    h_t: &'a [T],
    /// The trace's post-synaptic activity: `h_t`, or the LSTM's `g_t`.
    post: &'a [T],
    /// `Hebb_{t−1}`.
    hebb: &'a [T],
    /// The LSTM's gate activations `i, f, g, o`, `c_t` and `c_{t−1}`.
    lstm: Option<[&'a [T]; 3]>,
    /// `Hebb_{t−2}`, which the step back after this one reads
    /// as its `hebb`, when it comes from memory (none at the first step, or where it is
    /// rebuilt: in cache).
    ahead: Option<&'a [T]>,
    /// Step `t − 1`, where the sweep does its first pass.
    earlier: Option<Earlier<'a, T>>,
}

/// What step `t − 1`'s first trace pass reads of one batch row besides `Hebb_{t−1}`.
struct Earlier<'a, T> {
    /// `h_{t−2}`, `h_{t−1}` and the trace's post-synaptic activity at step `t − 1`.
    pre: &'a [T],
    h_t: &'a [T],
    post: &'a [T],
    /// `Hebb_{t−2}`, where the rule has a `keep` (else empty: the pass does not read it).
    hebb: &'a [T],
    /// `E_{t−2}` (retroactive modulation).
    elig: Option<&'a [T]>,
}

impl<T: Element + Float + Send + Sync> HostCore<T> {
    /// The trace update's first pass back through one step of one batch row, from `∂L/∂Hebb_t`
    /// (and `∂L/∂E_t`) to the unclipped trace's `G` (and `∂L/∂E_{t−1}`), writing the factors'
    /// gradients and the pass's part of `∂L/∂h_{t−1}` (`scratch.dpre`); the factors are
    /// `scratch.factors`.
    fn first_pass(&self, x: FirstPass<T>, mut g: FirstPassOut<T>, scratch: &mut Scratch<T>) {
        if x.reset {
            // A reset cuts every gradient path through the state.
            g.grad_hebb.fill(T::zero());
            if let Some(ge) = g.grad_elig.as_deref_mut() {
                ge.fill(T::zero());
            }
            g.dh.fill(T::zero());
            if let Some(d) = g.dc {
                d.fill(T::zero());
            }
        }
        let Scratch {
            factors: RowFactors { keep, s, rate },
            dpre,
            dkeep: dkeep_local,
            ..
        } = scratch;
        let update = self.update(x.hebb, x.pre, keep, s);
        match (x.elig, g.grad_elig) {
            (Some(elig), Some(grad_elig)) => {
                let retro = RetroUpdate {
                    base: update,
                    elig,
                    m: rate,
                };
                let rows = RetroRows {
                    dm: g.dm.expect("retroactive modulation writes dM"),
                    ds: g.ds,
                    dkeep: g.dkeep.expect("the eligibility trace has a keep"),
                    dpre,
                };
                retro.update_row(0, x.next, g.grad_hebb, grad_elig, rows);
            }
            _ => {
                let has_keep = g.dkeep.is_some();
                let rows = Rows3 {
                    ds: g.ds,
                    dkeep: g.dkeep.unwrap_or(dkeep_local),
                    dpre,
                };
                update.update_row(0, x.next, g.grad_hebb, has_keep, rows);
            }
        }
    }

    rows!(row_back, row_back_avx2, row_back_avx512, row_back_body,
        (x: RowBack<'_, T>, g: RowOut<'_, T>, m: Option<T>, scratch: &mut Scratch<T>));

    /// One batch row back through one step once the trace update's first pass is done (`m`:
    /// the modulator's output), as [`super::super::fused`]'s backward loop does for the whole
    /// batch with libtorch operations (docs/backward-pass.md, steps 1–4 back).
    #[inline(always)]
    fn row_back_body(&self, x: RowBack<T>, g: RowOut<T>, m: Option<T>, scratch: &mut Scratch<T>) {
        let h = self.hidden;
        let (h_t, post) = (x.h_t, x.post);
        let Scratch {
            factors,
            other,
            dpre,
            dpre_earlier,
            dkeep: dkeep_local,
            dpost,
            drate,
            dh_t,
            draw,
        } = scratch;
        let RowFactors { keep, s, rate } = factors;
        if let Neuromodulation::Retroactive { eta_e, .. } = &self.drive {
            let dm = g.dm.expect("retroactive modulation writes dM");
            let dkeep = g.dkeep.expect("the eligibility trace has a keep");
            for i in 0..h {
                (dpost[i], _) =
                    ELIGIBILITY.factors_backward_at(eta_e[i], post[i], g.ds[i], dkeep[i]);
                drate[i] = dm[i];
            }
            // The Hebbian trace keeps all of itself.
            keep.fill(T::one());
        } else {
            let dkeep: &[T] = g.dkeep.unwrap_or(dkeep_local);
            // Row i of the trace (of timescale i / H) belongs to neuron i % H: its
            // ∂L/∂post adds to the neuron's over the timescales.
            for i in 0..self.posts {
                let (dp, dr) =
                    self.rule
                        .factors_backward_at(rate[i], post[i % h], g.ds[i], dkeep[i]);
                dpost[i % h] = if i < h { dp } else { dpost[i % h] + dp };
                drate[i] = dr;
            }
        }
        // ∂L/∂h_t: from the loss, from the steps after, and through the modulator (which
        // reads h_t): ∂L/∂m = Σ_i ∂L/∂M_i (· f_i), tanh' = 1 − m².
        for ((d, &a), &b) in dh_t.iter_mut().zip(x.grad_h).zip(g.dh.iter()) {
            *d = a + b;
        }
        if let (Some(md), Some(m)) = (self.modulator(), m) {
            md.backward(m, drate, dh_t);
        }
        let da_plastic = match (x.lstm, g.dc) {
            (Some([gates, c, c_prev]), Some(dc)) => {
                // The trace's ∂L/∂post adds to ∂L/∂g, and the plastic layer is g's.
                lstm::backward_row([gates, c, c_prev], dh_t, dpost, dc, g.da);
                &g.da[2 * h..3 * h]
            }
            _ => {
                // post = h_t, so ∂L/∂post adds to ∂L/∂h_t.
                rnn::backward_row(h_t, dh_t, dpost, g.da);
                &g.da[..]
            }
        };
        // Each trace row's plastic input is its neuron's.
        for (i, d) in draw.iter_mut().enumerate() {
            *d = match &self.alpha_neuron {
                Some(alpha) => da_plastic[i % h] * alpha[i],
                None => da_plastic[i % h],
            };
        }
        let update = Update {
            ahead: x.ahead,
            ..self.update(x.hebb, x.pre, keep, s)
        };
        match (x.earlier, g.earlier) {
            (Some(e), Some(out)) => {
                self.row_factors(e.h_t, e.post, other);
                let earlier = self.update(e.hebb, e.pre, &other.keep, &other.s);
                match (e.elig, g.grad_elig) {
                    (Some(elig), Some(grad_elig)) => {
                        let step = RetroUpdate {
                            base: earlier,
                            elig,
                            m: &other.rate,
                        };
                        let before = Before::Retro {
                            step: &step,
                            grad_elig,
                            out: RetroRows {
                                dm: out.dm.expect("retroactive modulation writes dM"),
                                ds: out.ds,
                                dkeep: out.dkeep.expect("the eligibility trace has a keep"),
                                dpre: dpre_earlier,
                            },
                        };
                        update.input_update_row(0, before, draw, g.grad_hebb, dpre, g.dalpha);
                    }
                    _ => {
                        let before = Before::Plain {
                            step: &earlier,
                            want_dkeep: out.dkeep.is_some(),
                            out: Rows3 {
                                ds: out.ds,
                                dkeep: out.dkeep.unwrap_or(dkeep_local),
                                dpre: dpre_earlier,
                            },
                        };
                        update.input_update_row(0, before, draw, g.grad_hebb, dpre, g.dalpha);
                    }
                }
            }
            _ => update.input_rows(0, draw, g.grad_hebb, dpre, g.dalpha),
        }
        // ∂L/∂h_{t−1} = Wᵀ da (every gate's rows) + the traces' part.
        g.dh.copy_from_slice(dpre);
        for (i, &da) in g.da.iter().enumerate() {
            for (d, &w) in g.dh.iter_mut().zip(&self.w[i * h..(i + 1) * h]) {
                *d = *d + da * w;
            }
        }
        // The step before's first-pass part, where this sweep did it, starts its sum.
        std::mem::swap(dpre, dpre_earlier);
    }
}
