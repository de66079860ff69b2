//! The recurrent cell around the plastic input, for [`super::fused`]'s operations engine:
//! what it records of each step, and the cell's formulas ([`crate::cores::rnn`],
//! [`crate::cores::lstm`]) called on it.
use crate::cores::{lstm, rnn};
use tch::Tensor;

/// What the cell computed at one step.
pub(super) struct CellActs {
    /// `h_t`.
    pub h: Tensor,
    /// The trace's post-synaptic activity: `h_t` (RNN) or `g_t` (LSTM).
    pub post: Tensor,
    pub lstm: Option<LstmActs>,
}

pub(super) struct LstmActs {
    /// `c_t`.
    pub c: Tensor,
    /// `c_{t−1}`, after the previous step's resets.
    pub c_prev: Tensor,
    /// The gate activations `i, f, g, o`, `[B × 4H]`.
    pub gates: Tensor,
}

impl CellActs {
    /// The tanh RNN's step that gave `h_t`.
    pub fn rnn(h: Tensor) -> Self {
        Self {
            post: h.shallow_clone(),
            h,
            lstm: None,
        }
    }
}

/// One step: `fixed` = `W_in x_t + b + W h_{t−1}` (`[B × G·H]`), `plastic` the plastic
/// input of the plastic layer (`[B × H]`), `c_prev` the LSTM's cell (`None`: the tanh RNN,
/// whose state has no cell).
pub(super) fn forward(fixed: &Tensor, plastic: &Tensor, c_prev: Option<&Tensor>) -> CellActs {
    let Some(c_prev) = c_prev else {
        return CellActs::rnn((fixed + plastic).tanh());
    };
    let lstm::Gates { i, f, g, o, c, h } = lstm::forward(fixed, c_prev, |g| g + plastic);
    CellActs {
        h,
        post: g.shallow_clone(),
        lstm: Some(LstmActs {
            c,
            c_prev: c_prev.shallow_clone(),
            gates: Tensor::cat(&[i, f, g, o], 1),
        }),
    }
}

/// Backward through one step, given `dL/dh_t` over every path through `h_t`, `dL/dpost`
/// from the trace update and, for the LSTM, `dL/dc_t` from the steps after. Returns the
/// gradient of the pre-activations (`[B × G·H]`), its plastic layer's part (`[B × H]`), and
/// `dL/dc_{t−1}`.
pub(super) fn backward(
    acts: &CellActs,
    dh: &Tensor,
    dpost: &Tensor,
    dc: Option<&Tensor>,
) -> (Tensor, Tensor, Option<Tensor>) {
    match &acts.lstm {
        Some(l) => {
            let (da, dg, dc_prev) = lstm::backward([&l.gates, &l.c, &l.c_prev], dh, dpost, dc);
            (da, dg, Some(dc_prev))
        }
        None => {
            let da = rnn::backward(&acts.h, dh, dpost);
            (da.shallow_clone(), da, None)
        }
    }
}
