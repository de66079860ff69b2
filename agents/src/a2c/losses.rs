//! The losses and the gradient step of one update, Stable-Baselines3's `A2C.train`: policy
//! gradient on the advantages, value regression, entropy bonus and Backpropamine's Σπ²
//! penalty, then one backward pass through the rollout's tape, clipping and the optimiser's
//! step. Kept apart from collection: a rollout and its tape are all that pass between them.
use super::config::A2cConfig;
use super::host_f32;
use super::optim::Optimizer;
use super::returns::{gae, RolloutData};
use super::rollout::Rollout;
use crate::actor_critic::ActorCritic;
use crate::cores::Tape;
use tch::Tensor;

/// What the losses and the step measured.
pub(super) struct Losses {
    pub(super) policy_loss: f64,
    pub(super) value_loss: f64,
    pub(super) entropy: f64,
    pub(super) explained_variance: f64,
    pub(super) grad_norm: f64,
    pub(super) update_ratio: f64,
}

/// The quantity that was not finite: the update stops before it could spoil the model, or
/// after the step that did.
pub(super) struct NonFinite(pub(super) &'static str);

/// Returns, losses, the backward pass through the rollout, clipping and the optimiser step at
/// learning rate `lr` with entropy weight `entropy_coef`.
pub(super) fn learn(
    ac: &ActorCritic,
    optim: &mut Optimizer,
    a2c: &A2cConfig,
    lr: f64,
    entropy_coef: f64,
    r: &Rollout,
    tape: Tape<'_>,
) -> Result<Losses, NonFinite> {
    let device = ac.core.device();
    let kind = ac.core.kind();
    // The loss is built on the outputs as a leaf; the tape carries its gradient on into the
    // core.
    let hs = Tensor::stack(&r.outputs, 0).set_requires_grad(true);
    let values = ac.value.forward(&hs).squeeze_dim(2);
    let host_v = host_f32(&values.flatten(0, -1));
    let data = RolloutData {
        batch: r.batch,
        rewards: &r.rewards,
        values: &host_v,
        dones: &r.dones,
        last_values: &r.last_values,
    };
    let (adv, returns) = gae(&data, a2c.gamma, a2c.gae_lambda);
    let shape = r.shape();
    let to_t = |v: &[f32]| {
        Tensor::from_slice(v)
            .view(shape)
            .to_device(device)
            .to_kind(kind)
    };
    let mut adv_t = to_t(&adv);
    if a2c.normalize_advantages && adv.len() > 1 {
        adv_t = (&adv_t - adv_t.mean(kind)) / (adv_t.std(true) + 1e-8);
    }
    let log_pi = ac.policy.forward(&hs).log_softmax(-1, kind);
    let pi = log_pi.exp();
    let taken = Tensor::from_slice(&r.actions)
        .view([shape[0], shape[1], 1])
        .to_device(device);
    let log_probs = log_pi.gather(2, &taken, false).squeeze_dim(2);
    let policy_loss = -(log_probs * &adv_t).mean(kind);
    let value_loss = (to_t(&returns) - &values).square().mean(kind);
    let entropy = -(&pi * &log_pi).sum_dim_intlist(2, false, kind).mean(kind);
    let sum_squares = pi.square().sum_dim_intlist(2, false, kind).mean(kind);
    let loss = &policy_loss + &value_loss * a2c.value_coef - &entropy * entropy_coef
        + &sum_squares * a2c.sum_squares_coef;
    if !loss.double_value(&[]).is_finite() {
        return Err(NonFinite("loss"));
    }
    optim.zero_grad();
    loss.backward();
    tape.backward(&hs.grad());
    let grad_norm = optim.clip_grad_norm(a2c.max_grad_norm);
    if !grad_norm.is_finite() {
        return Err(NonFinite("gradient norm"));
    }
    let step = optim.step(lr);
    if !step.param_norm.is_finite() {
        return Err(NonFinite("model after the update"));
    }
    Ok(Losses {
        policy_loss: policy_loss.double_value(&[]),
        value_loss: value_loss.double_value(&[]),
        entropy: entropy.double_value(&[]),
        explained_variance: explained_variance(&host_v, &returns),
        grad_norm,
        update_ratio: step.update_ratio(),
    })
}

/// `1 − Var(G − V) / Var(G)`: 1 when the critic predicts returns perfectly, ≤ 0 when it does
/// no better than a constant.
fn explained_variance(values: &[f32], returns: &[f32]) -> f64 {
    let var = |x: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = x.collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / v.len() as f64
    };
    let var_g = var(&mut returns.iter().map(|&g| f64::from(g)));
    if var_g == 0.0 {
        return 0.0;
    }
    let var_resid = var(&mut returns.iter().zip(values).map(|(&g, &v)| f64::from(g - v)));
    1.0 - var_resid / var_g
}
