//! The tanh RNN cell: `h_t = tanh(W_in x_t + b + W h_{t−1} [+ (α ⊙ Hebb) h_{t−1}])`.
use super::CellOutput;
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
