//! A2C's train step, Stable-Baselines3's `A2C.train`: policy gradient on the advantages,
//! value regression, entropy bonus and Backpropamine's Σπ² penalty, with one gradient step
//! through the tape collection recorded (no second forward pass).
use super::config::A2cConfig;
use super::gradient_step::{self, NonFinite};
use super::host_f32;
use super::losses::{explained_variance, Losses, PolicyTerms, Rates};
use super::optim::Optimizer;
use super::returns::normalized;
use super::rollout::Rollout;
use crate::actor_critic::ActorCritic;
use crate::cores::Tape;
use tch::Tensor;

/// Returns, losses and the gradient step at this update's `rates`, backpropagating through
/// `tape`, the one that collected `r`; `after_backward` runs between the backward pass and
/// the step ([`gradient_step::apply`]).
pub(super) fn train(
    ac: &ActorCritic,
    optim: &mut Optimizer,
    a2c: &A2cConfig,
    (rates, r): (&Rates, &Rollout),
    tape: Tape<'_>,
    after_backward: &dyn Fn(),
) -> Result<Losses, NonFinite> {
    let device = ac.core.device();
    let kind = ac.core.kind();
    // The loss is built on the outputs as a leaf; the tape carries its gradient on into the
    // core.
    let hs = Tensor::stack(&r.outputs, 0).set_requires_grad(true);
    let values = ac.value.forward(&hs).squeeze_dim(2);
    let host_v = host_f32(&values.flatten(0, -1));
    let (adv, returns) = r.advantages(&host_v, a2c);
    let mut adv_t = r.tensor(&adv, device, kind);
    if a2c.normalize_advantages && adv.len() > 1 {
        adv_t = normalized(&adv_t);
    }
    let terms = PolicyTerms::new(ac, &hs, &r.taken(device, kind));
    let policy_loss = -(terms.log_probs * &adv_t).mean(kind);
    let value_loss = (r.tensor(&returns, device, kind) - &values)
        .square()
        .mean(kind);
    let loss = &policy_loss + &value_loss * a2c.value_coef - &terms.entropy * rates.entropy_coef
        + &terms.sum_squares * a2c.sum_squares_coef;
    let step = gradient_step::apply(
        optim,
        &loss,
        &hs,
        tape,
        (a2c.max_grad_norm, rates.lr),
        after_backward,
    )?;
    Ok(Losses {
        policy_loss: policy_loss.double_value(&[]),
        value_loss: value_loss.double_value(&[]),
        entropy: terms.entropy.double_value(&[]),
        explained_variance: explained_variance(&host_v, &returns),
        grad_norm: step.grad_norm,
        update_ratio: step.update_ratio,
        ppo: None,
    })
}
