//! What A2C's and PPO's losses share: the policy head's terms on the core's outputs, and
//! what a train step reports.
use crate::actor_critic::ActorCritic;
use crate::gaussian;
use tch::Tensor;

/// What a train step measured (means over its gradient steps where it takes several).
pub(super) struct Losses {
    pub(super) policy_loss: f64,
    pub(super) value_loss: f64,
    pub(super) entropy: f64,
    pub(super) explained_variance: f64,
    pub(super) grad_norm: f64,
    pub(super) update_ratio: f64,
    /// PPO's own measures.
    pub(super) ppo: Option<PpoStats>,
}

/// This update's schedule values: the learning rate and the entropy bonus's weight.
pub(super) struct Rates {
    pub(super) lr: f64,
    pub(super) entropy_coef: f64,
}

/// What PPO's passes over one rollout measured, as sb3-contrib reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PpoStats {
    /// Share of samples whose probability ratio left `[1 − ε, 1 + ε]`, mean over minibatches.
    pub clip_fraction: f64,
    /// `E[(r − 1) − log r]`, mean over minibatches.
    pub approx_kl: f64,
    /// The last minibatch's total loss.
    pub loss: f64,
    /// Gradient steps taken so far in the run.
    pub n_updates: u64,
    pub clip_range: f64,
    pub clip_range_vf: Option<f64>,
}

/// The policy head on outputs `hs` (`[T × B × H]`): the log-probabilities of the actions
/// `taken` ([`super::rollout::Rollout::taken`]), and the means of the entropy `H(π)` and of
/// Backpropamine's `Σ_a π_a²` (0 for a Gaussian policy, which has no action probabilities
/// to sum).
pub(super) struct PolicyTerms {
    /// `[T × B]`.
    pub(super) log_probs: Tensor,
    pub(super) entropy: Tensor,
    pub(super) sum_squares: Tensor,
}

impl PolicyTerms {
    pub(super) fn new(ac: &ActorCritic, hs: &Tensor, taken: &Tensor) -> Self {
        let kind = ac.core.kind();
        if let Some(log_std) = &ac.log_std {
            let log_std = log_std.to_kind(kind);
            return Self {
                log_probs: gaussian::log_prob(&ac.policy.forward(hs), &log_std, taken),
                entropy: gaussian::entropy(&log_std),
                sum_squares: Tensor::zeros([], (kind, hs.device())),
            };
        }
        let log_pi = ac.policy.forward(hs).log_softmax(-1, kind);
        let pi = log_pi.exp();
        let log_probs = log_pi.gather(2, taken, false).squeeze_dim(2);
        let entropy = -(&pi * &log_pi).sum_dim_intlist(2, false, kind).mean(kind);
        let sum_squares = pi.square().sum_dim_intlist(2, false, kind).mean(kind);
        Self {
            log_probs,
            entropy,
            sum_squares,
        }
    }
}

/// `1 − Var(G − V) / Var(G)`: 1 when the critic predicts returns perfectly, ≤ 0 when it does
/// no better than a constant.
pub(super) fn explained_variance(values: &[f32], returns: &[f32]) -> f64 {
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
