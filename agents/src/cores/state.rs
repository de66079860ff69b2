//! Everything a core carries from one step to the next, one row per batch element.
use tch::{Kind, Tensor};

/// Recurrent state of a batch of `B` independent sequences.
///
/// Every tensor has the batch as its first dimension and rows never interact, so one
/// environment's episode end ([`State::reset_rows`]) leaves the others untouched. A state
/// belongs to the core configuration that made it ([`crate::cores::Core::initial_state`]):
/// which tensors it holds follows the core's kind and neuromodulation.
#[derive(Debug)]
pub struct State {
    /// Hidden activations `h_t`, `[B × H]`.
    pub(crate) h: Tensor,
    /// LSTM cell `c_t`, `[B × H]` (LSTM cores only).
    pub(crate) c: Option<Tensor>,
    /// The traces of the plastic weights (plastic cores only).
    pub(crate) traces: Option<Traces>,
    /// STPN's fast weights `F_t`, `[B × H × (in + H)]` (rows: post-synaptic neuron, columns:
    /// the inputs, then the hidden neurons); STPN cores only.
    pub(crate) fast: Option<Tensor>,
    /// Modulator output `M_t` of the step that produced this state: `[B × 1]` (scalar
    /// modulator) or `[B × H]` (fan-out). A diagnostic: the dynamics never read it back.
    pub(crate) modulator: Option<Tensor>,
}

/// The traces of a plastic core, `[B × H × H]` each (rows: post-synaptic neuron, columns:
/// pre-synaptic), as its neuromodulation needs them.
#[derive(Debug)]
pub enum Traces {
    /// The Hebbian trace alone (no neuromodulation, or simple).
    Hebb(Tensor),
    /// Retroactive neuromodulation: the Hebbian trace and the eligibility trace `E` that the
    /// modulator writes into it.
    Retroactive { hebb: Tensor, elig: Tensor },
    /// Multi-timescale synapses (`core.timescales` with two or more): one trace per
    /// timescale, in the order configured.
    Timescales(Vec<Tensor>),
}

/// The names of a multi-timescale core's traces in saved states: the first is the `hebb` of
/// the other plastic cores, so tools that read one trace read the first timescale's.
const TIMESCALE_NAMES: [&str; crate::cores::config::MAX_TIMESCALES] = [
    "hebb", "hebb-2", "hebb-3", "hebb-4", "hebb-5", "hebb-6", "hebb-7", "hebb-8",
];

impl Traces {
    /// The Hebbian trace (of a multi-timescale core, the first timescale's).
    pub fn hebb(&self) -> &Tensor {
        &self.hebbs()[0]
    }

    /// The Hebbian traces, one per timescale (one unless `core.timescales` lists several).
    pub fn hebbs(&self) -> &[Tensor] {
        match self {
            Self::Hebb(hebb) | Self::Retroactive { hebb, .. } => std::slice::from_ref(hebb),
            Self::Timescales(hebbs) => hebbs,
        }
    }

    /// The traces of a direct rule, one per timescale: a single one is [`Traces::Hebb`].
    pub(crate) fn from_timescales(mut hebbs: Vec<Tensor>) -> Self {
        if hebbs.len() == 1 {
            Self::Hebb(hebbs.remove(0))
        } else {
            Self::Timescales(hebbs)
        }
    }

    /// The eligibility trace (retroactive neuromodulation).
    pub fn elig(&self) -> Option<&Tensor> {
        match self {
            Self::Retroactive { elig, .. } => Some(elig),
            Self::Hebb(_) | Self::Timescales(_) => None,
        }
    }

    fn map(&self, f: impl Fn(&Tensor) -> Tensor) -> Self {
        match self {
            Self::Hebb(hebb) => Self::Hebb(f(hebb)),
            Self::Retroactive { hebb, elig } => Self::Retroactive {
                hebb: f(hebb),
                elig: f(elig),
            },
            Self::Timescales(hebbs) => Self::Timescales(hebbs.iter().map(f).collect()),
        }
    }
}

/// Panics for a state handed to a core other than the one that made it (the one check the
/// types leave to run time: a state is a plain value, not tied to its core).
#[track_caller]
pub(crate) fn foreign_state() -> ! {
    panic!(
        "a core was given a state it did not make: a state holds the tensors of its own core's \
         kind and neuromodulation (start from that core's initial_state)"
    )
}

fn mean_abs(t: &Tensor) -> f64 {
    t.abs().mean(Kind::Double).double_value(&[])
}

/// `done` as a `[B]` bool tensor (on the CPU).
pub(crate) fn row_mask(done: &[bool]) -> Tensor {
    let mask: Vec<u8> = done.iter().map(|&d| u8::from(d)).collect();
    Tensor::from_slice(&mask).to_kind(Kind::Bool)
}

impl Clone for State {
    fn clone(&self) -> Self {
        self.map(Tensor::shallow_clone)
    }
}

impl State {
    /// A state from its tensors (a core's [`crate::cores::Core::initial_state`] is the usual
    /// start): `c` for LSTM cores, `traces` for plastic ones; no modulator output yet.
    pub fn new(h: Tensor, c: Option<Tensor>, traces: Option<Traces>) -> Self {
        Self {
            h,
            c,
            traces,
            fast: None,
            modulator: None,
        }
    }

    /// Hidden activations `h_t`, `[B × H]`.
    pub fn h(&self) -> &Tensor {
        &self.h
    }

    /// LSTM cell `c_t`, `[B × H]` (LSTM cores).
    pub fn c(&self) -> Option<&Tensor> {
        self.c.as_ref()
    }

    /// The traces (plastic cores).
    pub fn traces(&self) -> Option<&Traces> {
        self.traces.as_ref()
    }

    /// Hebbian trace, `[B × H × H]` (plastic cores).
    pub fn hebb(&self) -> Option<&Tensor> {
        self.traces.as_ref().map(Traces::hebb)
    }

    /// Eligibility trace `E`, `[B × H × H]` (retroactive neuromodulation).
    pub fn elig(&self) -> Option<&Tensor> {
        self.traces.as_ref().and_then(Traces::elig)
    }

    /// STPN's fast weights `F_t`, `[B × H × (in + H)]` (kind `stpn`).
    pub fn fast(&self) -> Option<&Tensor> {
        self.fast.as_ref()
    }

    /// Modulator output `M_t` of the step that produced this state (`[B × 1]`, or `[B × H]`
    /// with a fan-out); `None` before the first step and without neuromodulation.
    pub fn modulator(&self) -> Option<&Tensor> {
        self.modulator.as_ref()
    }

    pub fn batch_size(&self) -> i64 {
        self.h.size()[0]
    }

    fn map(&self, f: impl Fn(&Tensor) -> Tensor) -> Self {
        Self {
            h: f(&self.h),
            c: self.c.as_ref().map(&f),
            traces: self.traces.as_ref().map(|t| t.map(&f)),
            fast: self.fast.as_ref().map(&f),
            modulator: self.modulator.as_ref().map(&f),
        }
    }

    /// Zeroes every tensor of the rows whose episode ended. `done` is a `[B]` tensor of
    /// bools or numbers (non-zero = done) on any device. Rows not done are copied bit for bit
    /// and keep their gradient path.
    pub fn reset_rows(&self, done: &Tensor) -> Self {
        let b = self.batch_size();
        assert_eq!(done.size(), [b], "reset_rows: mask must have shape [{b}]");
        let done = done.to_device(self.h.device());
        let done = if done.kind() == Kind::Bool {
            done
        } else {
            done.ne(0.0)
        };
        self.map(|t| {
            let mut shape = vec![b];
            shape.resize(t.dim(), 1);
            t.masked_fill(&done.view(shape.as_slice()), 0.0)
        })
    }

    /// The rows `rows` (`[n]` indices) of this state, in that order: PPO re-runs minibatches
    /// of whole sequences from the state each started its rollout in.
    pub fn rows(&self, rows: &Tensor) -> Self {
        self.map(|t| t.index_select(0, &rows.to_device(t.device())))
    }

    /// [`State::reset_rows`] with the mask as a slice, as environments report it.
    pub fn reset_rows_bool(&self, done: &[bool]) -> Self {
        self.reset_rows(&row_mask(done))
    }

    /// The tensors the dynamics read back, by name (`h`, and those of `c`, `hebb` (and
    /// `hebb-2` … of further timescales), `elig` and `fast` the core has), to save a state
    /// between rollouts; the modulator is a diagnostic.
    pub fn named(&self) -> Vec<(&'static str, &Tensor)> {
        let hebbs = self.traces.as_ref().map_or(&[][..], Traces::hebbs);
        let traces = TIMESCALE_NAMES
            .iter()
            .zip(hebbs)
            .map(|(&n, t)| (n, Some(t)));
        [("h", Some(&self.h)), ("c", self.c())]
            .into_iter()
            .chain(traces)
            .chain([("elig", self.elig()), ("fast", self.fast())])
            .filter_map(|(name, t)| t.map(|t| (name, t)))
            .collect()
    }

    /// The same values, cut from the autograd graph (truncated backpropagation through time).
    pub fn detach(&self) -> Self {
        self.map(Tensor::detach)
    }

    /// Mean of `|Hebb|` over batch and connections (plastic cores), for logging.
    pub fn mean_abs_hebb(&self) -> Option<f64> {
        self.hebb().map(mean_abs)
    }

    /// Mean of `|E|`, the eligibility trace (retroactive modulation), for logging.
    pub fn mean_abs_elig(&self) -> Option<f64> {
        self.elig().map(mean_abs)
    }

    /// Mean and standard deviation of the last modulator output, for logging.
    pub fn modulator_stats(&self) -> Option<(f64, f64)> {
        self.modulator.as_ref().map(|m| {
            let m = m.detach().to_kind(Kind::Double);
            let std = if m.numel() > 1 {
                m.std(true).double_value(&[])
            } else {
                0.0
            };
            (m.mean(Kind::Double).double_value(&[]), std)
        })
    }
}
