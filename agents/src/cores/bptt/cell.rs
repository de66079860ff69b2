//! The recurrent cell around the plastic input, for [`super::fused`]: forward without a graph,
//! backward by hand. The tanh RNN, or the LSTM whose cell candidate `g` receives the plastic
//! input (gates i, f, g, o as in [`crate::cores::lstm`]).
use crate::cores::lstm::GATES;
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
    let chunks = fixed.chunk(GATES, 1);
    let (i, f, g, o) = (
        chunks[0].sigmoid(),
        chunks[1].sigmoid(),
        (&chunks[2] + plastic).tanh(),
        chunks[3].sigmoid(),
    );
    let c = &f * c_prev + &i * &g;
    let h = &o * c.tanh();
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
/// from the trace update (for the RNN it adds to `dL/dh_t`: post is `h_t`) and, for the LSTM,
/// `dL/dc_t` from the steps after. Returns the gradient of the pre-activations (`[B × G·H]`),
/// its plastic layer's part (`[B × H]`), and `dL/dc_{t−1}`.
pub(super) fn backward(
    acts: &CellActs,
    dh: &Tensor,
    dpost: &Tensor,
    dc: Option<&Tensor>,
) -> (Tensor, Tensor, Option<Tensor>) {
    let Some(lstm) = &acts.lstm else {
        // tanh'(a) = 1 − h².
        let da = (dh + dpost) * (-acts.h.square() + 1.0);
        return (da.shallow_clone(), da, None);
    };
    let gates = lstm.gates.chunk(GATES, 1);
    let (i, f, g, o) = (&gates[0], &gates[1], &gates[2], &gates[3]);
    let tanh_c = lstm.c.tanh();
    let mut dc_t = dh * o * (-tanh_c.square() + 1.0);
    if let Some(dc) = dc {
        dc_t += dc;
    }
    // σ'(a) = σ(1 − σ), tanh'(a) = 1 − tanh².
    let sigmoid_grad = |d: Tensor, s: &Tensor| d * s * (-s + 1.0);
    let dg = (&dc_t * i + dpost) * (-g.square() + 1.0);
    let da = Tensor::cat(
        &[
            sigmoid_grad(&dc_t * g, i),
            sigmoid_grad(&dc_t * &lstm.c_prev, f),
            dg.shallow_clone(),
            sigmoid_grad(dh * tanh_c, o),
        ],
        1,
    );
    (da, dg, Some(dc_t * f))
}
