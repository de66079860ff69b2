//! The plastic RNN's and LSTM's steps on the CPU in plain loops over host copies of their
//! parameters, for [`super::fused`] (STPN's, for [`super::stpn`], are in [`stpn`]). Forward, one pass over each batch row does the row's
//! whole step (input and recurrent products, the tanh cell or the LSTM's gates and cell,
//! modulator, rule factors, trace update and the next step's plastic input), the rows in one
//! parallel region per step ([`super::pool::for_each`]), where libtorch would spend a
//! dozen operations, each with its dispatch and, on a loaded machine, its thread hand-off, on
//! the same `[B × H]` work. Backward ([`backward`]), one task per group of rows takes them
//! back through every step, rebuilding dropped traces row by row. The parameters do not
//! change during a rollout, so they are copied once per tape; the parameter gradients still
//! come from the one autograd call over all steps at the end.
mod backward;
pub(super) mod stpn;

use super::pool::{self, Share};
use super::stacked::Stacked;
use crate::cores::modulator::HostModulator;
use crate::cores::plasticity::Neuromodulation;
use crate::cores::rules::ELIGIBILITY;
use crate::cores::trace_update::rows::{rows, RetroUpdate, Update};
use crate::cores::{lstm, rnn};
use crate::cores::{AlphaShape, Core, Modulator, Plasticity, Rule};

/// The LSTM's gate blocks `i, f, g, o`, as the core stacks them.
const LSTM_GATES: usize = crate::cores::lstm::GATES as usize;
pub(super) use backward::{BackCarry, BackStep, BackTraces};
use num_traits::Float;
use tch::kind::Element;
use tch::{Device, Kind, Tensor};

/// What one step reads besides the parameters: `[B × in]`, `[B × H]`, `[B × P]` and
/// `[B × P × H]` (`P` = `K·H` for `K` timescales' traces stacked, else `H`; twice under
/// retroactive modulation), CPU tensors of the core's kind.
pub(super) struct StepInput<'a> {
    pub x: &'a Tensor,
    /// `h_{t−1}` after the resets.
    pub pre: &'a Tensor,
    /// The LSTM's `c_{t−1}` after the resets.
    pub c: Option<&'a Tensor>,
    /// The plastic input before α per neuron (`Record::raw` of [`super::fused`]).
    pub raw: &'a Tensor,
    /// `Hebb_{t−1}`.
    pub hebb: &'a Tensor,
    /// `E_{t−1}` (retroactive modulation).
    pub elig: Option<&'a Tensor>,
}

/// What one step writes: `h_t`, the LSTM's `c_t` and gate activations `i, f, g, o`
/// (`[B × 4H]`), `Hebb_t`, `E_t`, the next step's plastic input and the modulator's output
/// `M_t` (`[B × 1]`, or `[B × H]` with a fan-out).
pub(super) struct StepOutput {
    pub h: Tensor,
    pub c: Option<Tensor>,
    pub gates: Option<Tensor>,
    pub hebb: Tensor,
    pub elig: Option<Tensor>,
    pub raw: Tensor,
    pub big_m: Option<Tensor>,
}

/// The plastic core's parameters, row-major. The LSTM stacks its gates' rows of `w_in`, `b`
/// and `w` in the order `i, f, g, o`.
struct HostCore<T> {
    hidden: usize,
    /// The trace's post-synaptic rows: `K·H` for `K` timescales stacked
    /// ([`super::stacked`]), else `H`.
    posts: usize,
    inputs: usize,
    lstm: bool,
    /// `W_in` and `W` transposed (`[in × G·H]`, `[H × G·H]`), for the forward products, and
    /// `W` as it is, for `Wᵀ da` going back.
    w_in_t: Vec<T>,
    w_t: Vec<T>,
    b: Vec<T>,
    w: Vec<T>,
    /// α as the trace pass reads it, `[P × H]`: α per connection, or ones (α per neuron is
    /// applied to the plastic input, `alpha_neuron`, `[P]`).
    alpha_pass: Vec<T>,
    alpha_neuron: Option<Vec<T>>,
    /// What drives the trace update: `η` one per trace row (`[P]`, a scalar repeated), `η_E`
    /// one per neuron, the modulator as host values.
    drive: Neuromodulation<Vec<T>, HostModulator<T>>,
    rule: Rule,
    lo: T,
    hi: T,
}

/// The trace update's factors at one step of one batch row, `[H]` each: `keep` and `s` (the
/// rule's, or under retroactive modulation the eligibility trace's), and the rate (`η` or the
/// modulator's `M`; under retroactive modulation `M`, which writes the eligibility trace into
/// the Hebbian one).
struct RowFactors<T> {
    keep: Vec<T>,
    s: Vec<T>,
    rate: Vec<T>,
}

impl<T: Float> RowFactors<T> {
    fn new(h: usize) -> Self {
        Self {
            keep: vec![T::zero(); h],
            s: vec![T::zero(); h],
            rate: vec![T::zero(); h],
        }
    }
}

/// One batch row of [`StepInput`].
struct RowIn<'a, T> {
    x: &'a [T],
    pre: &'a [T],
    c_prev: Option<&'a [T]>,
    raw: &'a [T],
    hebb: &'a [T],
    elig: Option<&'a [T]>,
}

/// The step's outputs for one batch row.
struct RowOut<'a, T> {
    h: &'a mut [T],
    c: Option<&'a mut [T]>,
    gates: Option<&'a mut [T]>,
    hebb: &'a mut [T],
    elig: Option<&'a mut [T]>,
    raw: &'a mut [T],
    big_m: Option<&'a mut [T]>,
}

/// The host step of a plastic RNN or LSTM.
pub(super) struct HostStep(Kinded);

/// [`HostCore`] in the core's kind.
enum Kinded {
    F32(HostCore<f32>),
    F64(HostCore<f64>),
}

impl HostStep {
    /// The host step of `core`, or `None` where it does not apply: cores off the CPU (the
    /// trace passes are libtorch operations there). `(lo, hi)` are the Hebbian trace's clip
    /// bounds.
    pub fn new(core: &Core, p: &Plasticity, (lo, hi): (f64, f64)) -> Option<Self> {
        if !Self::applies(core) {
            return None;
        }
        match core.kind() {
            Kind::Float => Some(Self(Kinded::F32(HostCore::new(core, p, lo, hi)))),
            Kind::Double => Some(Self(Kinded::F64(HostCore::new(core, p, lo, hi)))),
            _ => None,
        }
    }

    /// Whether [`HostStep::new`] gives a step for `core` (a plastic one).
    pub fn applies(core: &Core) -> bool {
        core.device() == tch::Device::Cpu && matches!(core.kind(), Kind::Float | Kind::Double)
    }

    pub fn step(&self, input: StepInput) -> StepOutput {
        match &self.0 {
            Kinded::F32(rnn) => rnn.step(input),
            Kinded::F64(rnn) => rnn.step(input),
        }
    }
}

/// The elements of a contiguous CPU tensor of element type `T`.
pub(super) fn data<T: Element>(t: &Tensor) -> &[T] {
    check::<T>(t);
    // SAFETY: the tensor is a contiguous CPU tensor of `numel` elements of type `T` (checked),
    // and the borrow keeps its storage alive.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const T, t.numel()) }
}

/// [`data`], writable. Only for tensors the host loops allocated and share with no one.
pub(super) fn data_mut<T: Element>(t: &mut Tensor) -> &mut [T] {
    check::<T>(t);
    // SAFETY: as in `data`; the exclusive borrow stands for exclusive use of the storage,
    // which holds because the callers pass freshly allocated, unshared tensors.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut T, t.numel()) }
}

fn check<T: Element>(t: &Tensor) {
    assert!(
        t.device() == Device::Cpu && t.kind() == T::KIND && t.is_contiguous(),
        "host loop input must be a contiguous CPU {:?} tensor, got {:?} {:?}",
        T::KIND,
        t.kind(),
        t.device()
    );
}

/// The elements of `t`, row-major, as `T`.
fn host<T: Element + Float>(t: &Tensor) -> Vec<T> {
    let t = t.detach().to_kind(T::KIND).contiguous();
    let mut v = vec![T::zero(); t.numel()];
    t.copy_data(&mut v, t.numel());
    v
}

/// Batch row `b` of a row-major tensor with rows of `n` elements.
fn row<T>(v: &[T], b: usize, n: usize) -> &[T] {
    &v[b * n..(b + 1) * n]
}

/// `t` (`[1]` or `[H]`) repeated to one value per neuron.
fn per_neuron<T: Element + Float>(t: &Tensor, hidden: usize) -> Vec<T> {
    let v = host::<T>(t);
    if v.len() == 1 {
        vec![v[0]; hidden]
    } else {
        v
    }
}

/// The modulator's parameters as host values.
fn host_modulator<T: Element + Float>(m: &Modulator) -> HostModulator<T> {
    HostModulator {
        w: host(&m.w),
        b: host::<T>(&m.b)[0],
        fan_out: m.fan_out.as_ref().map(host),
    }
}

impl<T: Element + Float + Send + Sync> HostCore<T> {
    fn new(core: &Core, p: &Plasticity, lo: f64, hi: f64) -> Self {
        let hidden = core.hidden() as usize;
        let stacked = Stacked::of(p);
        let posts = stacked.posts(hidden as i64) as usize;
        let (w_in, b) = core.w_in_b();
        let per_connection = core.config().alpha == AlphaShape::PerConnection;
        let stacked_param = |t: &Tensor| stacked.param(t, hidden as i64);
        let drive = p.neuromodulation.map(
            |rate| per_neuron(&stacked_param(rate), hidden),
            host_modulator,
        );
        let float = |v: f64| T::from(v).expect("f32 and f64 hold every f64, rounded");
        Self {
            hidden,
            posts,
            inputs: core.input_dim() as usize,
            lstm: core.config().kind.is_lstm(),
            w_in_t: host(&w_in.tr()),
            w_t: host(&core.w().tr()),
            b: host(b),
            w: host(core.w()),
            alpha_pass: if per_connection {
                host(&stacked_param(&p.alpha))
            } else {
                vec![T::one(); posts * hidden]
            },
            alpha_neuron: (!per_connection).then(|| host(&stacked_param(&p.alpha))),
            drive,
            rule: p.rule,
            lo: float(lo),
            hi: float(hi),
        }
    }

    /// Gate blocks of the pre-activation: the LSTM's, or the RNN's one.
    fn gates(&self) -> usize {
        if self.lstm {
            LSTM_GATES
        } else {
            1
        }
    }

    fn modulator(&self) -> Option<&HostModulator<T>> {
        self.drive.modulator()
    }

    fn step(&self, input: StepInput) -> StepOutput {
        let (h, posts) = (self.hidden, self.posts);
        let batch = input.pre.size()[0];
        let opts = (T::KIND, tch::Device::Cpu);
        let (ph, bh) = ([batch, posts as i64, h as i64], [batch, h as i64]);
        let mut out = StepOutput {
            h: Tensor::empty(bh, opts),
            c: self.lstm.then(|| Tensor::empty(bh, opts)),
            gates: self
                .lstm
                .then(|| Tensor::empty([batch, (LSTM_GATES * h) as i64], opts)),
            hebb: Tensor::empty(ph, opts),
            elig: input.elig.map(|_| Tensor::empty(ph, opts)),
            raw: Tensor::empty([batch, posts as i64], opts),
            big_m: self
                .modulator()
                .map(|m| Tensor::empty([batch, m.columns(h) as i64], opts)),
        };
        let [x, pre, raw, hebb] =
            [input.x, input.pre, input.raw, input.hebb].map(|t| t.contiguous());
        let elig = input.elig.map(Tensor::contiguous);
        let c_prev = input.c.map(Tensor::contiguous);
        let (x, pre, raw, hebb) = (
            data::<T>(&x),
            data::<T>(&pre),
            data::<T>(&raw),
            data::<T>(&hebb),
        );
        let elig = elig.as_ref().map(data::<T>);
        let c_prev = c_prev.as_ref().map(data::<T>);
        let m_columns = self.modulator().map_or(1, |m| m.columns(h));
        let mut rows: Vec<RowOut<T>> = {
            let mut elig_rows = out
                .elig
                .as_mut()
                .map(|e| data_mut::<T>(e).chunks_mut(posts * h));
            let mut m_rows = out
                .big_m
                .as_mut()
                .map(|m| data_mut::<T>(m).chunks_mut(m_columns));
            let mut c_rows = out.c.as_mut().map(|c| data_mut::<T>(c).chunks_mut(h));
            let mut gate_rows = out
                .gates
                .as_mut()
                .map(|g| data_mut::<T>(g).chunks_mut(LSTM_GATES * h));
            data_mut::<T>(&mut out.h)
                .chunks_mut(h)
                .zip(data_mut::<T>(&mut out.hebb).chunks_mut(posts * h))
                .zip(data_mut::<T>(&mut out.raw).chunks_mut(posts))
                .map(|((h, hebb), raw)| RowOut {
                    h,
                    c: c_rows.as_mut().and_then(Iterator::next),
                    gates: gate_rows.as_mut().and_then(Iterator::next),
                    hebb,
                    raw,
                    elig: elig_rows.as_mut().and_then(Iterator::next),
                    big_m: m_rows.as_mut().and_then(Iterator::next),
                })
                .collect()
        };
        let cells = batch as usize * h * h;
        pool::for_each(cells, &mut rows, Share::Pinned, |b, out| {
            let input = RowIn {
                x: row(x, b, self.inputs),
                pre: row(pre, b, h),
                c_prev: c_prev.map(|c| row(c, b, h)),
                raw: row(raw, b, posts),
                hebb: row(hebb, b, posts * h),
                elig: elig.map(|e| row(e, b, posts * h)),
            };
            self.row(input, out)
        });
        out
    }

    rows!(row, row_avx2, row_avx512, row_body, (input: RowIn<'_, T>, out: &mut RowOut<'_, T>));

    /// One batch row's step.
    #[inline(always)]
    fn row_body(&self, input: RowIn<T>, out: &mut RowOut<T>) {
        let RowIn {
            x,
            pre,
            c_prev,
            raw,
            hebb,
            elig,
        } = input;
        let h = self.hidden;
        // Neuron i's plastic input: its rows' of every timescale (one but for several).
        let plastic = |i: usize| {
            let term = |r: usize| match &self.alpha_neuron {
                Some(alpha) => alpha[r] * raw[r],
                None => raw[r],
            };
            (i + h..self.posts)
                .step_by(h)
                .fold(term(i), |sum, r| sum + term(r))
        };
        match (out.gates.as_deref_mut(), out.c.as_deref_mut(), c_prev) {
            // The LSTM: the plastic input goes to the cell candidate g.
            (Some(gates), Some(c), Some(c_prev)) => {
                self.fixed_input(x, pre, gates);
                lstm::forward_row(gates, plastic, c_prev, c, out.h);
            }
            // h_t = tanh(W_in x + b + W h_{t−1} + the plastic input).
            _ => {
                self.fixed_input(x, pre, out.h);
                rnn::forward_row(out.h, plastic);
            }
        }
        let h_t: &[T] = out.h;
        // The trace's post-synaptic activity: h_t, or the LSTM's g_t.
        let post: &[T] = match out.gates.as_deref() {
            Some(gates) => &gates[2 * h..3 * h],
            None => h_t,
        };
        let mut f = RowFactors::new(self.posts);
        let m = self.row_factors(h_t, post, &mut f);
        if let (Some(md), Some(m), Some(big_m)) = (self.modulator(), m, out.big_m.as_deref_mut()) {
            for (i, v) in big_m.iter_mut().enumerate() {
                *v = md.at(m, i);
            }
        }
        let update = self.update(hebb, pre, &f.keep, &f.s);
        match (elig, out.elig.as_deref_mut()) {
            (Some(elig), Some(next_elig)) => {
                let retro = RetroUpdate {
                    base: update,
                    elig,
                    m: &f.rate,
                };
                retro.forward_row(0, h_t, out.hebb, next_elig, out.raw);
            }
            _ => update.forward_row(0, h_t, out.hebb, out.raw),
        }
    }

    /// The trace update's factors at a step whose cell gave `h_t` and the post-synaptic
    /// activity `post`, the same forward, going back and rebuilding a dropped trace. Returns
    /// the modulator's output `m`, if any.
    #[inline(always)]
    fn row_factors(&self, h_t: &[T], post: &[T], f: &mut RowFactors<T>) -> Option<T> {
        let m = self.modulator().map(|md| md.output(h_t));
        let RowFactors { keep, s, rate } = f;
        match (&self.drive, m) {
            (Neuromodulation::Retroactive { modulator, eta_e }, Some(m)) => {
                for i in 0..self.hidden {
                    rate[i] = modulator.at(m, i);
                    (keep[i], s[i]) = ELIGIBILITY.factors_at(eta_e[i], post[i]);
                }
            }
            // Row i of the trace (of timescale i / H) belongs to neuron i % H.
            (drive, m) => {
                for i in 0..self.posts {
                    rate[i] = match (drive, m) {
                        (Neuromodulation::None { eta }, _) => eta[i],
                        (Neuromodulation::Simple { modulator }, Some(m)) => modulator.at(m, i),
                        _ => unreachable!("a modulated rule has a modulator output"),
                    };
                    (keep[i], s[i]) = self.rule.factors_at(rate[i], post[i % self.hidden]);
                }
            }
        }
        m
    }

    /// `out = W_in x + b + W h_{t−1}` for every gate row, as a sum of the transposed weights'
    /// rows scaled by `x_j` and `h_{t−1,j}`: vectorised along `out`, where a dot product per
    /// row would wait on its own running sum at every addition.
    #[inline(always)]
    fn fixed_input(&self, x: &[T], pre: &[T], out: &mut [T]) {
        let n = out.len();
        out.copy_from_slice(&self.b);
        let columns = x.iter().zip(self.w_in_t.chunks_exact(n));
        for (&v, w) in columns.chain(pre.iter().zip(self.w_t.chunks_exact(n))) {
            for (o, &w) in out.iter_mut().zip(w) {
                *o = *o + v * w;
            }
        }
    }

    /// The trace pass's view of one batch row (row 0 of its slices).
    fn update<'a>(
        &'a self,
        hebb: &'a [T],
        pre: &'a [T],
        keep: &'a [T],
        s: &'a [T],
    ) -> Update<'a, T> {
        Update {
            h: self.hidden,
            posts: self.posts,
            prev: hebb,
            pre,
            keep,
            s,
            alpha: &self.alpha_pass,
            lo: self.lo,
            hi: self.hi,
            ahead: None,
        }
    }
}
