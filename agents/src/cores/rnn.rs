//! The tanh RNN cell, `h_t = tanh(W_in x_t + b + W h_{t−1} [+ (α ⊙ Hebb) h_{t−1}])`, forward
//! and backward, as tensor operations and as loops over one batch row.
use super::lanes::tanh;
use super::CellOutput;
use num_traits::Float;
use tch::Tensor;

/// `gates` holds `W_in x_t + b + W h_{t−1}`, `[B × H]`; `add_plastic` adds the plastic input.
pub(super) fn step(gates: &Tensor, add_plastic: impl FnOnce(&Tensor) -> Tensor) -> CellOutput {
    let h = add_plastic(gates).tanh();
    CellOutput {
        post: h.shallow_clone(),
        h,
        c: None,
    }
}

/// The pre-activation's gradient, given `dL/dh_t` through the state and `dL/dpost` from the
/// trace update (post is `h_t`, so the two add): tanh'(a) = 1 − h².
pub(crate) fn backward(h: &Tensor, dh: &Tensor, dpost: &Tensor) -> Tensor {
    (dh + dpost) * (-h.square() + 1.0)
}

/// One batch row forward: `h` holds the pre-activations and becomes `h_t`; `plastic(i)` is
/// neuron i's plastic input.
#[inline(always)]
pub(crate) fn forward_row<T: Float>(h: &mut [T], plastic: impl Fn(usize) -> T) {
    for (i, h_i) in h.iter_mut().enumerate() {
        *h_i = tanh(*h_i + plastic(i));
    }
}

/// [`backward`] for one batch row, into `da`.
#[inline(always)]
pub(crate) fn backward_row<T: Float>(h: &[T], dh: &[T], dpost: &[T], da: &mut [T]) {
    let one = T::one();
    for i in 0..h.len() {
        da[i] = (dh[i] + dpost[i]) * (one - h[i] * h[i]);
    }
}
