//! Unrolling a core for training: step by step as the environments answer, then, once the
//! loss is known, backpropagation through time, either by autograd or by the hand-written
//! pass of [`fused`].
//!
//! The tape hands out each `h_t` without a graph. Each step takes the rows whose episode starts
//! there (sb3-contrib's `episode_starts`: the previous step's episode ends), so resets need no
//! call of their own. The caller stacks the outputs, builds its loss on that stack as a leaf
//! tensor, backpropagates the loss to the leaf, and passes the leaf's gradient to
//! [`Tape::backward`], which continues into the core's parameters.
//!
//! The hand-written pass, outermost first (its gradients are derived in
//! `docs/backward-pass.md`):
//! - [`fused`]: the loop over time steps, forward without a graph and backward by hand
//!   (`fused::backward`), keeping every k-th trace (`fused::kept`);
//! - [`host`]: on the CPU, each step of the plastic RNN or LSTM in loops over batch rows,
//!   forward one step at a time and backward every step per group of rows (STPN's: backward
//!   one step at a time, per group of rows);
//! - [`cell`]: elsewhere (CUDA), the per-neuron part of one step (the tanh RNN or the LSTM
//!   around the plastic input), forward and backward, in libtorch operations;
//! - [`stpn`]: the STPN cell's pass, around its fast weights: on the CPU in host loops, else
//!   in libtorch operations;
//! - [`pool`]: the thread team the host loops share their rows on;
//! - [`stacked`]: several timescales' traces as one trace of `K·H` post-synaptic rows, which
//!   the one-trace passes run as they are;
//! - and, outside `bptt/`, the formulas' homes the passes call: `trace_update/` (one step's
//!   passes over the `[B × H × H]` traces, as operations and as loops over a batch row),
//!   `rules.rs`, `modulator.rs`, `lstm.rs` and `rnn.rs`.
mod cell;
mod checkpoints;
mod fused;
mod host;
mod pool;
#[cfg(feature = "bench")]
pub mod roofline;
mod stacked;
mod stpn;

pub use checkpoints::{host_every, TraceCheckpoints};

use super::{Core, State};
use fused::FusedTape;
use stpn::StpnTape;
use tch::{Device, Kind, Tensor};

config_option! {
    /// How backpropagation through time is done (`a2c.bptt`, `plastic bench core --bptt`).
    pub enum Bptt {
        /// The hand-written pass on the CPU where it applies ([`Engine::fused_unsupported`]),
        /// else autograd.
        #[default]
        Auto = "auto",
        /// The hand-written pass on any device (on CUDA it keeps less memory than autograd, one
        /// trace per step), or an error where it does not apply.
        Fused = "fused",
        /// libtorch's autograd throughout.
        Autograd = "autograd",
        /// The hand-written pass in libtorch operations on any device: what `fused` runs on
        /// CUDA, forced on the CPU too (where it is slower than the host loops), so that the
        /// GPU's engine is checked on every machine.
        Ops = "ops",
    }
}

impl Bptt {
    /// The engine this setting picks for `core`.
    pub fn engine(self, core: &Core) -> Result<Engine, BpttError> {
        let cpu = core.device() == Device::Cpu;
        match (self, Engine::fused_unsupported(core)) {
            (Self::Autograd, _) | (Self::Auto, Some(_)) => Ok(Engine::Autograd),
            // On a GPU the hand-written pass is libtorch operations too; until it is measured
            // faster there, `auto` keeps autograd, and `fused` is the way to save memory.
            (Self::Auto, None) if !cpu => Ok(Engine::Autograd),
            (Self::Auto | Self::Fused, None) => Ok(Engine::Fused),
            (Self::Ops, None) => Ok(Engine::Ops),
            (Self::Fused | Self::Ops, Some(why)) => Err(BpttError {
                setting: self.name(),
                why,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "bptt = \"{setting}\" runs plastic cores in f32 or f64, and this core {why}; use bptt = \"auto\" (hand-written where it applies) or \"autograd\""
)]
pub struct BpttError {
    setting: &'static str,
    why: String,
}

/// Who computes the backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Autograd,
    /// The hand-written pass: on the CPU in host loops, elsewhere in libtorch operations.
    Fused,
    /// The hand-written pass in libtorch operations on any device.
    Ops,
}

impl Engine {
    /// The name of the `a2c.bptt` setting that picks exactly this engine.
    pub fn name(self) -> &'static str {
        match self {
            Self::Autograd => Bptt::Autograd.name(),
            Self::Fused => Bptt::Fused.name(),
            Self::Ops => Bptt::Ops.name(),
        }
    }

    /// Why the hand-written engines cannot run `core` (a phrase such as `has kind = "lstm"`), if it
    /// cannot.
    pub fn fused_unsupported(core: &Core) -> Option<String> {
        let config = core.config();
        if !config.kind.is_plastic() && !config.kind.is_stpn() {
            return Some(format!("has kind = \"{}\"", config.kind.name()));
        }
        if !matches!(core.kind(), Kind::Float | Kind::Double) {
            return Some(format!("holds {:?} values", core.kind()));
        }
        None
    }
}

/// Whether `engine` runs `core`'s steps on the host, with no libtorch operation per step (the
/// hand-written pass for the plastic RNN, LSTM and STPN on the CPU): what
/// [`crate::threads::assign`] is told.
pub fn steps_on_host(core: &Core, engine: Engine) -> bool {
    engine == Engine::Fused
        && Engine::fused_unsupported(core).is_none()
        && host::HostStep::applies(core)
}

/// A core unrolled for training.
pub enum Tape<'a> {
    Autograd {
        core: &'a Core,
        state: State,
        /// `h_t` with their graphs.
        outputs: Vec<Tensor>,
    },
    Fused(FusedTape<'a>),
    /// The hand-written pass of the STPN cell.
    Stpn(StpnTape<'a>),
}

impl<'a> Tape<'a> {
    /// Starts an unroll of `core` from `state` (whose graph, if any, is not followed back),
    /// with `engine` where it applies: a hand-written engine on a core it cannot run
    /// ([`Engine::fused_unsupported`]) runs autograd, as `bptt = "auto"` would
    /// ([`Tape::engine`] says which runs). The hand-written pass keeps the traces of the
    /// steps `checkpoints` says (`a2c.trace_checkpoint_every`) and rebuilds the others going
    /// back: the same gradients, bit for bit, in less memory.
    pub fn new(
        core: &'a Core,
        state: &State,
        engine: Engine,
        checkpoints: TraceCheckpoints,
    ) -> Self {
        let hand_written = matches!(engine, Engine::Fused | Engine::Ops)
            && Engine::fused_unsupported(core).is_none();
        let every = checkpoints.every(core, engine);
        match (core.plasticity(), core.stp()) {
            (Some(plasticity), _) if hand_written => {
                Self::Fused(FusedTape::new(core, plasticity, state, every, engine))
            }
            (_, Some(stp)) if hand_written => {
                Self::Stpn(StpnTape::new(core, stp, state, every, engine))
            }
            _ => Self::Autograd {
                core,
                state: state.detach(),
                outputs: Vec::new(),
            },
        }
    }

    /// The engine that runs this tape's backward pass.
    pub fn engine(&self) -> Engine {
        match self {
            Self::Autograd { .. } => Engine::Autograd,
            Self::Fused(tape) => tape.engine(),
            Self::Stpn(tape) => tape.engine(),
        }
    }

    /// One step for the whole batch: `h_t` `[B × H]`, without a graph. The rows marked in
    /// `episode_start` (`[B]`: where the previous step ended an episode) start a fresh one:
    /// their hidden state and traces are zeroed before the step. Outputs and states already
    /// returned keep their values.
    pub fn step(&mut self, x: &Tensor, episode_start: &[bool]) -> Tensor {
        self.step_silenced(x, episode_start, None)
    }

    /// [`Tape::step`] with the neurons where `alive` (`[B × H]`) is 0 silenced
    /// ([`Core::step_silenced`]; `a2c.train_dropout`). Only autograd takes a mask: the
    /// hand-written passes have none, and the trainer runs autograd under dropout.
    pub fn step_silenced(
        &mut self,
        x: &Tensor,
        episode_start: &[bool],
        alive: Option<&Tensor>,
    ) -> Tensor {
        let start = episode_start
            .contains(&true)
            .then(|| super::state::row_mask(episode_start));
        assert!(
            alive.is_none() || matches!(self, Self::Autograd { .. }),
            "only autograd's tape silences neurons"
        );
        match self {
            Self::Autograd {
                core,
                state,
                outputs,
            } => {
                if let Some(start) = &start {
                    *state = state.reset_rows(start);
                }
                let (h, next) = core.step_silenced(x, state, alive);
                *state = next;
                let out = h.detach();
                outputs.push(h);
                out
            }
            Self::Fused(tape) => tape.step(x, start.as_ref()),
            Self::Stpn(tape) => tape.step(x, start.as_ref()),
        }
    }

    /// The state after the last step, without a graph (episodes that ended there are reset
    /// by the next step's `episode_start`, not in this state).
    pub fn state(&self) -> State {
        match self {
            Self::Autograd { state, .. } => state.detach(),
            Self::Fused(tape) => tape.state(),
            Self::Stpn(tape) => tape.state(),
        }
    }

    /// Adds to the `.grad` of the core's parameters the gradient of a loss whose gradient with
    /// respect to the stacked outputs `h_1 … h_T` is `grad_h` (`[T × B × H]`).
    pub fn backward(self, grad_h: &Tensor) {
        match self {
            Self::Autograd { outputs, .. } => {
                (Tensor::stack(&outputs, 0) * grad_h)
                    .sum(grad_h.kind())
                    .backward();
            }
            Self::Fused(tape) => tape.backward(grad_h),
            Self::Stpn(tape) => tape.backward(grad_h),
        }
    }
}
