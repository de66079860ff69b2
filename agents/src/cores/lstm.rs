//! The LSTM cell (gates i, f, g, o as PyTorch), forward and backward, in the forms the engines
//! need: tensor operations (autograd, the operations engine) and loops over one batch row
//! (the host loops). In the plastic LSTM only the recurrent input to the cell candidate `g`
//! has a plastic part, and `g_t` is the trace's post-synaptic activity.
use super::lanes::{sigmoid, tanh};
use super::CellOutput;
use num_traits::Float;
use tch::Tensor;

/// Number of stacked gate blocks in the input and recurrent weights.
pub(crate) const GATES: i64 = 4;

/// One step's gate activations `i, f, g, o`, new cell `c_t` and output `h_t`, `[B × H]` each.
pub(crate) struct Gates {
    pub i: Tensor,
    pub f: Tensor,
    pub g: Tensor,
    pub o: Tensor,
    pub c: Tensor,
    pub h: Tensor,
}

/// One step from `gates` = `W_in x_t + b + W h_{t−1}` for all gates (`[B × 4H]`) and the cell
/// `c_prev`; `add_plastic` adds the plastic input to `g`'s pre-activation.
pub(crate) fn forward(
    gates: &Tensor,
    c_prev: &Tensor,
    add_plastic: impl FnOnce(&Tensor) -> Tensor,
) -> Gates {
    let chunks = gates.chunk(GATES, 1);
    let (i, f, g, o) = (
        chunks[0].sigmoid(),
        chunks[1].sigmoid(),
        add_plastic(&chunks[2]).tanh(),
        chunks[3].sigmoid(),
    );
    let c = &f * c_prev + &i * &g;
    let h = &o * c.tanh();
    Gates { i, f, g, o, c, h }
}

/// [`forward`] for [`super::Core::step`].
pub(super) fn step(
    gates: &Tensor,
    c_prev: &Tensor,
    add_plastic: impl FnOnce(&Tensor) -> Tensor,
) -> CellOutput {
    let Gates { g, c, h, .. } = forward(gates, c_prev, add_plastic);
    CellOutput {
        h,
        c: Some(c),
        post: g,
    }
}

/// Backward through one step from its gate activations `[i, f, g, o]` (`[B × 4H]`), `c_t`
/// and `c_{t−1}`, given `dL/dh_t`, `dL/dg_t` from outside the cell (`dpost`: the trace
/// update's) and `dL/dc_t` from the steps after. Returns the gradient of the
/// pre-activations (`[B × 4H]`), `g`'s part of it (`[B × H]`) and `dL/dc_{t−1}`.
pub(crate) fn backward(
    [gates, c, c_prev]: [&Tensor; 3],
    dh: &Tensor,
    dpost: &Tensor,
    dc: Option<&Tensor>,
) -> (Tensor, Tensor, Tensor) {
    let gates = gates.chunk(GATES, 1);
    let (i, f, g, o) = (&gates[0], &gates[1], &gates[2], &gates[3]);
    let tanh_c = c.tanh();
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
            sigmoid_grad(&dc_t * c_prev, f),
            dg.shallow_clone(),
            sigmoid_grad(dh * tanh_c, o),
        ],
        1,
    );
    (da, dg, dc_t * f)
}

/// [`forward`] for one batch row: `gates` (`[4H]`) holds the pre-activations and becomes the
/// activations `i, f, g, o`; writes `c_t` and `h_t`. `plastic(i)` is neuron i's plastic input.
#[inline(always)]
pub(crate) fn forward_row<T: Float>(
    gates: &mut [T],
    plastic: impl Fn(usize) -> T,
    c_prev: &[T],
    c: &mut [T],
    h_t: &mut [T],
) {
    let h = h_t.len();
    for i in 0..h {
        let gi = sigmoid(gates[i]);
        let gf = sigmoid(gates[h + i]);
        let gg = tanh(gates[2 * h + i] + plastic(i));
        let go = sigmoid(gates[3 * h + i]);
        [gates[i], gates[h + i], gates[2 * h + i], gates[3 * h + i]] = [gi, gf, gg, go];
        c[i] = gf * c_prev[i] + gi * gg;
        h_t[i] = go * tanh(c[i]);
    }
}

/// [`backward`] for one batch row: writes the pre-activations' gradient `da` (`[4H]`), and
/// `dc` goes from `dL/dc_t` (from the steps after) to `dL/dc_{t−1}`.
#[inline(always)]
pub(crate) fn backward_row<T: Float>(
    [gates, c, c_prev]: [&[T]; 3],
    dh: &[T],
    dpost: &[T],
    dc: &mut [T],
    da: &mut [T],
) {
    let h = dh.len();
    let one = T::one();
    for i in 0..h {
        let (gi, gf, gg, go) = (gates[i], gates[h + i], gates[2 * h + i], gates[3 * h + i]);
        let tanh_c = tanh(c[i]);
        let dc_t = dh[i] * go * (one - tanh_c * tanh_c) + dc[i];
        da[i] = dc_t * gg * gi * (one - gi);
        da[h + i] = dc_t * c_prev[i] * gf * (one - gf);
        da[2 * h + i] = (dc_t * gi + dpost[i]) * (one - gg * gg);
        da[3 * h + i] = dh[i] * tanh_c * go * (one - go);
        dc[i] = dc_t * gf;
    }
}
