//! Recurrent cores: plain and plastic RNN and LSTM behind one type, [`Core`].
//!
//! A plain core is the plastic code path with the plastic part absent, so every option
//! (rule, rate and coefficient shapes, neuromodulation) combines with both cells.
mod bptt;
pub mod config;
pub mod init;
mod lanes;
mod lstm;
mod modulator;
pub mod plasticity;
mod rnn;
mod rules;
pub mod state;
mod stpn;
mod trace_update;

#[cfg(feature = "bench")]
pub use bptt::roofline;
pub use bptt::{host_every, steps_on_host, Bptt, BpttError, Engine, Tape, TraceCheckpoints};
pub use config::{
    AlphaShape, CoreConfig, CoreConfigError, CoreKind, EtaShape, InitScheme, Modulation,
    ModulatorShape, Rule, StpShape, MAX_TIMESCALES,
};
pub use modulator::Modulator;
pub use plasticity::{Neuromodulation, Plasticity};
pub use state::{State, Traces};
pub use stpn::ShortTermPlasticity;

use state::foreign_state;

use tch::{nn, Device, Kind, Tensor};

/// What a cell hands back: new hidden (and cell) state, and the activity of the neurons that
/// receive the plastic weights (the trace's post-synaptic side).
pub(crate) struct CellOutput {
    h: Tensor,
    c: Option<Tensor>,
    post: Tensor,
}

/// A recurrent core: `(x_t [B × in], state) → (h_t [B × H], new state)`.
///
/// Variables (under the path given to [`Core::new`]): `w_in` `[G·H × in]`, `b` `[G·H]`,
/// `w` `[G·H × H]` (G = 1 for the RNN, 4 for the LSTM, gate order i, f, g, o), and for plastic
/// cores `alpha`, `eta` or `eta_e`, `mod_w`, `mod_b`, `fan_out` as configured; STPN adds
/// `stp_lambda` and `stp_gamma`.
#[derive(Debug)]
pub struct Core {
    config: CoreConfig,
    input_dim: i64,
    hidden: i64,
    w_in: Tensor,
    b: Tensor,
    w: Tensor,
    plasticity: Option<Plasticity>,
    stp: Option<ShortTermPlasticity>,
    device: Device,
    kind: Kind,
}

impl Core {
    /// Builds the core's variables under `p`, on its var store's device and kind.
    pub fn new(p: &nn::Path, input_dim: i64, config: &CoreConfig) -> Result<Self, CoreConfigError> {
        config.validate()?;
        if input_dim < 1 {
            return Err(CoreConfigError::ZeroInput);
        }
        let h = config.hidden as i64;
        let gates = if config.kind.is_lstm() {
            lstm::GATES
        } else {
            1
        };
        // Drawn in this order (w, w_in, b), so the other kinds' networks stay as they were.
        let w = match config.init {
            _ if config.kind.is_stpn() => stpn::fixed_init(&[h, h], h),
            InitScheme::Backpropamine => init::backpropamine(&[gates * h, h]),
            InitScheme::Orthogonal => init::orthogonal_blocks(gates, h, config.gain),
            InitScheme::Critical => init::orthogonal_blocks(gates, h, 1.0),
        };
        let (w_in, mut b) = if config.kind.is_stpn() {
            (
                stpn::fixed_init(&[h, input_dim], h),
                stpn::fixed_init(&[h], h),
            )
        } else {
            (
                init::linear_default(&[gates * h, input_dim], input_dim),
                init::linear_default(&[gates * h], input_dim),
            )
        };
        if config.init == InitScheme::Critical && config.kind.is_lstm() {
            b = init::with_forget_bias(&b, h);
        }
        Ok(Self {
            config: config.clone(),
            input_dim,
            hidden: h,
            w_in: init::var(p, "w_in", &w_in),
            b: init::var(p, "b", &b),
            w: init::var(p, "w", &w),
            plasticity: config
                .kind
                .is_plastic()
                .then(|| Plasticity::new(p, h, config)),
            stp: config
                .kind
                .is_stpn()
                .then(|| ShortTermPlasticity::new(p, h, input_dim, config.stp, config.stp_learned)),
            device: p.device(),
            kind: p.kind(),
        })
    }

    /// Zero hidden state and traces (or fast weights) for `batch` fresh episodes.
    pub fn initial_state(&self, batch: i64) -> State {
        let opts = (self.kind, self.device);
        let (b, h) = (batch, self.hidden);
        let state = State::new(
            Tensor::zeros([b, h], opts),
            self.config
                .kind
                .is_lstm()
                .then(|| Tensor::zeros([b, h], opts)),
            self.plasticity
                .as_ref()
                .map(|p| p.initial_traces(b, h, opts)),
        );
        State {
            fast: self
                .stp
                .is_some()
                .then(|| Tensor::zeros([b, h, self.input_dim + h], opts)),
            ..state
        }
    }

    /// One time step for the whole batch: returns `h_t` `[B × H]` and the new state.
    ///
    /// Panics if `state` is another core's (see [`State`]).
    pub fn step(&self, x: &Tensor, state: &State) -> (Tensor, State) {
        self.step_silenced(x, state, None)
    }

    /// [`Core::step`] with a lesion: where `alive` (`[H]`, or `[B × H]` per row) is 0, the
    /// output `h_t` is forced to 0 before the traces, the modulator, the heads or the next
    /// step read it. A silenced neuron's own trace rows and LSTM cell still change, but only
    /// its silenced output reads them.
    pub fn step_silenced(
        &self,
        x: &Tensor,
        state: &State,
        alive: Option<&Tensor>,
    ) -> (Tensor, State) {
        if let Some(stp) = &self.stp {
            return self.stpn_step(stp, x, state, alive);
        }
        let h_prev = &state.h;
        let gates = self.fixed_input(x, h_prev);
        let plastic = self.plastic_part(state);
        let add_plastic = |fixed: &Tensor| match &plastic {
            Some((p, traces)) => p.add_recurrent(fixed, traces, h_prev),
            None => fixed.shallow_clone(),
        };
        let out = match self.cell(state) {
            Some(c) => lstm::step(&gates, c, add_plastic),
            None => rnn::step(&gates, add_plastic),
        };
        let out = match alive {
            Some(alive) => CellOutput {
                h: &out.h * alive,
                ..out
            },
            None => out,
        };
        let (traces, modulator) = match &plastic {
            Some((p, traces)) => {
                let (traces, m) = p.update(traces, &out.post, h_prev, &out.h);
                (Some(traces), m)
            }
            None => (None, None),
        };
        let next = State {
            h: out.h,
            c: out.c,
            traces,
            fast: None,
            modulator,
        };
        (next.h.shallow_clone(), next)
    }

    /// [`Core::step_silenced`] of the STPN cell: the fixed weights `[W_in | W]` with the
    /// state's fast weights.
    fn stpn_step(
        &self,
        stp: &ShortTermPlasticity,
        x: &Tensor,
        state: &State,
        alive: Option<&Tensor>,
    ) -> (Tensor, State) {
        let Some(fast) = &state.fast else {
            foreign_state()
        };
        let w = self.stpn_weights();
        let z = Tensor::cat(&[x, &state.h], 1);
        let h = stpn::forward(&w, &self.b, fast, &z);
        let h = match alive {
            Some(alive) => h * alive,
            None => h,
        };
        let fast = stp.update(&w, self.config.clip, fast, &h, &z);
        let next = State {
            fast: Some(fast),
            ..State::new(h.shallow_clone(), None, None)
        };
        (h, next)
    }

    /// STPN's fixed weights `[W_in | W]`, `[H × (in + H)]`: what its fast weights add to.
    pub(crate) fn stpn_weights(&self) -> Tensor {
        Tensor::cat(&[&self.w_in, &self.w], 1)
    }

    /// The state's LSTM cell (`None`: the tanh RNN, which has none).
    pub(crate) fn cell<'s>(&self, state: &'s State) -> Option<&'s Tensor> {
        match (self.config.kind.is_lstm(), &state.c) {
            (true, Some(c)) => Some(c),
            (false, None) => None,
            _ => foreign_state(),
        }
    }

    /// The plasticity with the state's traces (`None`: a plain core, which has neither).
    fn plastic_part<'s>(&'s self, state: &'s State) -> Option<(&'s Plasticity, &'s Traces)> {
        match (&self.plasticity, &state.traces) {
            (Some(p), Some(traces)) => Some((p, traces)),
            (None, None) => None,
            _ => foreign_state(),
        }
    }

    /// `W_in x_t + b + W h_{t−1}`, `[B × G·H]`: every input but the plastic one.
    fn fixed_input(&self, x: &Tensor, h_prev: &Tensor) -> Tensor {
        x.linear(&self.w_in, Some(&self.b))
            .addmm(h_prev, &self.w.tr())
    }

    /// A scalar whose gradients with respect to `W_in`, `b` and `W` are those of
    /// `Σ da ⊙ fixed_input(x, h_prev)` (`da`: `[N × G·H]`, no graph), without the forward
    /// products autograd would take first: `Σ W ⊙ (daᵀ h_prev)` and the like, each product a
    /// constant to autograd.
    pub(crate) fn fixed_input_surrogate(&self, x: &Tensor, h_prev: &Tensor, da: &Tensor) -> Tensor {
        let kind = self.kind();
        let da_t = da.tr();
        (&self.w_in * da_t.mm(x)).sum(kind)
            + (&self.b * da.sum_dim_intlist(0, false, kind)).sum(kind)
            + (&self.w * da_t.mm(h_prev)).sum(kind)
    }

    /// Runs `xs` `[T × B × in]` from `state`: returns outputs `[T × B × H]` and the last state.
    pub fn unroll(&self, xs: &Tensor, state: &State) -> (Tensor, State) {
        let mut state = state.clone();
        let mut outs = Vec::with_capacity(xs.size()[0] as usize);
        for x in xs.unbind(0) {
            let (h, next) = self.step(&x, &state);
            outs.push(h);
            state = next;
        }
        (Tensor::stack(&outs, 0), state)
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    pub fn input_dim(&self) -> i64 {
        self.input_dim
    }

    /// Output size H.
    pub fn hidden(&self) -> i64 {
        self.hidden
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Input weights `[G·H × in]`.
    pub fn w_in(&self) -> &Tensor {
        &self.w_in
    }

    /// Input bias `[G·H]`.
    pub fn bias(&self) -> &Tensor {
        &self.b
    }

    /// Input weights `W_in`, `[G·H × in]`, and bias `b`, `[G·H]`.
    pub(crate) fn w_in_b(&self) -> (&Tensor, &Tensor) {
        (&self.w_in, &self.b)
    }

    /// Fixed recurrent weights `W`, `[G·H × H]` (LSTM: gates i, f, g, o stacked).
    pub fn w(&self) -> &Tensor {
        &self.w
    }

    /// The fixed recurrent weights onto the plastic layer (`W` of the RNN, `W_hg` of the LSTM),
    /// `[H × H]`, the matrix that `α ⊙ Hebb` adds to.
    pub fn plastic_layer_w(&self) -> Tensor {
        if self.config.kind.is_lstm() {
            self.w.narrow(0, 2 * self.hidden, self.hidden)
        } else {
            self.w.shallow_clone()
        }
    }

    pub fn plasticity(&self) -> Option<&Plasticity> {
        self.plasticity.as_ref()
    }

    /// Plasticity coefficients `α` (`[H × H]` or `[H]`).
    pub fn alpha(&self) -> Option<&Tensor> {
        self.plasticity.as_ref().map(|p| &p.alpha)
    }

    /// Plasticity rate `η` (`[1]` or `[H]`; only without neuromodulation).
    pub fn eta(&self) -> Option<&Tensor> {
        self.plasticity
            .as_ref()
            .and_then(|p| p.neuromodulation.eta())
    }

    /// Eligibility-trace rate `η_E` (retroactive neuromodulation).
    pub fn eta_e(&self) -> Option<&Tensor> {
        self.plasticity
            .as_ref()
            .and_then(|p| p.neuromodulation.eta_e())
    }

    /// STPN's learned decay and gain (kind `stpn`).
    pub fn stp(&self) -> Option<&ShortTermPlasticity> {
        self.stp.as_ref()
    }

    pub fn modulator(&self) -> Option<&Modulator> {
        self.plasticity
            .as_ref()
            .and_then(|p| p.neuromodulation.modulator())
    }
}
