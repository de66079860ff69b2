//! The LSTM cell (gates i, f, g, o as PyTorch). In the plastic LSTM only the recurrent input to
//! the cell candidate `g` has a plastic part, and `g_t` is the trace's post-synaptic activity.
use super::CellOutput;
use tch::Tensor;

/// Number of stacked gate blocks in the input and recurrent weights.
pub(super) const GATES: i64 = 4;

/// `gates` holds `W_in x_t + b + W h_{t−1}` for all gates, `[B × 4H]`.
pub(super) fn step(
    gates: &Tensor,
    c_prev: &Tensor,
    add_plastic: impl FnOnce(&Tensor) -> Tensor,
) -> CellOutput {
    let chunks = gates.chunk(GATES, 1);
    let (i, f, g, o) = (&chunks[0], &chunks[1], &chunks[2], &chunks[3]);
    let g = add_plastic(g).tanh();
    let c = f.sigmoid() * c_prev + i.sigmoid() * &g;
    let h = o.sigmoid() * c.tanh();
    CellOutput {
        h,
        c: Some(c),
        post: g,
    }
}
