//! The gradient step every on-policy algorithm ends its train step with: the loss's backward
//! pass through the heads to the core's outputs, on through the tape into the core, clipping
//! and the optimiser's step.
use super::optim::Optimizer;
use crate::cores::Tape;
use tch::Tensor;

/// The quantity that was not finite: the update stops before it could spoil the model, or
/// after the step that did.
pub(super) struct NonFinite(pub(super) &'static str);

/// What one gradient step measured.
pub(super) struct Stepped {
    /// Global gradient norm before clipping.
    pub(super) grad_norm: f64,
    /// ‖Δθ‖ / ‖θ‖.
    pub(super) update_ratio: f64,
}

/// Backpropagates `loss`, built on the stacked outputs `outputs` (a leaf that requires its
/// gradient), into the heads and, through `tape`, the core; runs `after_backward` (training
/// under noise puts the noiseless parameters back there); clips the global gradient norm to
/// `max_grad_norm` and steps `optim` at learning rate `lr`.
pub(super) fn apply(
    optim: &mut Optimizer,
    loss: &Tensor,
    outputs: &Tensor,
    tape: Tape<'_>,
    (max_grad_norm, lr): (f64, f64),
    after_backward: &dyn Fn(),
) -> Result<Stepped, NonFinite> {
    if !loss.double_value(&[]).is_finite() {
        return Err(NonFinite("loss"));
    }
    optim.zero_grad();
    loss.backward();
    tape.backward(&outputs.grad());
    after_backward();
    let grad_norm = optim.clip_grad_norm(max_grad_norm);
    if !grad_norm.is_finite() {
        return Err(NonFinite("gradient norm"));
    }
    let step = optim.step(lr);
    if !step.param_norm.is_finite() {
        return Err(NonFinite("model after the update"));
    }
    Ok(Stepped {
        grad_norm,
        update_ratio: step.update_ratio(),
    })
}
