//! PPO's train step, sb3-contrib's `RecurrentPPO.train`: `n_epochs` passes over the rollout,
//! each in minibatches of whole rows (sequences) in a fresh random order. Every minibatch
//! re-runs its rows from the recurrent state they started the rollout in, with the current
//! parameters, on a tape of the configured engine (so the hand-written pass and trace
//! checkpointing serve PPO as they serve A2C); then the clipped surrogate, the (optionally
//! clipped) value loss, the entropy bonus and one gradient step.
use super::config::{A2cConfig, PpoConfig};
use super::gradient_step::{self, NonFinite};
use super::host_f32;
use super::losses::{explained_variance, Losses, PolicyTerms, PpoStats, Rates};
use super::optim::Optimizer;
use super::returns::normalized;
use super::rollout::Rollout;
use crate::actor_critic::ActorCritic;
use crate::cores::{Engine, Tape, TraceCheckpoints};
use plastic_envs::rng;
use rand::seq::SliceRandom;
use tch::Tensor;

/// Salt of the stream the minibatch orders are drawn from (seed, update).
const MINIBATCH_SALT: u64 = 0x9B0C_0000_0000_0003;

/// How the core is unrolled again: the engine and its trace checkpoints (`a2c.bptt`,
/// `a2c.trace_checkpoint_every`).
pub(super) struct Unroll {
    pub(super) engine: Engine,
    pub(super) checkpoints: TraceCheckpoints,
}

/// Sums over the minibatches that were evaluated, for the means reported.
#[derive(Default)]
struct Sums {
    minibatches: f64,
    policy_loss: f64,
    value_loss: f64,
    entropy: f64,
    clip_fraction: f64,
    approx_kl: f64,
    steps: f64,
    grad_norm: f64,
    update_ratio: f64,
    last_loss: f64,
}

/// Learns from `r` for update `update` of a run seeded `seed`.
#[allow(clippy::too_many_arguments)]
pub(super) fn train(
    ac: &ActorCritic,
    optim: &mut Optimizer,
    unroll: &Unroll,
    a2c: &A2cConfig,
    ppo: &PpoConfig,
    rates: &Rates,
    r: &Rollout,
    (seed, update): (u64, u64),
) -> Result<Losses, NonFinite> {
    let device = ac.core.device();
    let kind = ac.core.kind();
    let [steps, batch] = r.shape();
    let taken = r.taken(device, kind);
    // What the policy that collected said, from the outputs it produced.
    let (old_log_probs, old_values) = tch::no_grad(|| {
        let hs = Tensor::stack(&r.outputs, 0);
        let values = ac.value.forward(&hs).squeeze_dim(2);
        (PolicyTerms::new(ac, &hs, &taken).log_probs, values)
    });
    let host_v = host_f32(&old_values.flatten(0, -1));
    let (host_adv, host_returns) = r.advantages(&host_v, a2c);
    let (adv, returns) = (
        r.tensor(&host_adv, device, kind),
        r.tensor(&host_returns, device, kind),
    );
    let observations = Tensor::stack(&r.observations, 0);
    let rows_per_minibatch = batch as usize / ppo.minibatches;
    let mut order: Vec<i64> = (0..batch).collect();
    let mut rng = rng::stream(seed ^ MINIBATCH_SALT, update as usize);
    let clip = ppo.clip_range;
    let mut sums = Sums::default();
    'passes: for _ in 0..ppo.n_epochs {
        order.shuffle(&mut rng);
        for rows in order.chunks(rows_per_minibatch) {
            let index = Tensor::from_slice(rows).to_device(device);
            let pick = |t: &Tensor| t.index_select(1, &index);
            let mut tape = Tape::new(
                &ac.core,
                &r.start_state.rows(&index),
                unroll.engine,
                unroll.checkpoints,
            );
            // Every step's features in one call, with a graph the tape's backward pass
            // continues into the encoder.
            let xs = ac.encoder.encode_steps(&pick(&observations));
            let outputs: Vec<Tensor> = (0..steps)
                .map(|t| {
                    let starts: Vec<bool> = rows
                        .iter()
                        .map(|&row| r.episode_starts[(t * batch + row) as usize])
                        .collect();
                    // The neurons collection silenced (`a2c.train_dropout`), row by row.
                    let alive = r.alive.get(t as usize).map(|a| a.index_select(0, &index));
                    tape.step_silenced(&xs.get(t), &starts, alive.as_ref())
                })
                .collect();
            // As in A2C: the loss on the outputs as a leaf, the tape on into the core.
            let hs = Tensor::stack(&outputs, 0).set_requires_grad(true);
            let terms = PolicyTerms::new(ac, &hs, &pick(&taken));
            let log_ratio = &terms.log_probs - pick(&old_log_probs);
            let ratio = log_ratio.exp();
            let mut adv = pick(&adv);
            if a2c.normalize_advantages && adv.numel() > 1 {
                adv = normalized(&adv);
            }
            let surrogate = (&adv * &ratio).minimum(&(&adv * ratio.clamp(1.0 - clip, 1.0 + clip)));
            let policy_loss = -surrogate.mean(kind);
            let values = ac.value.forward(&hs).squeeze_dim(2);
            let old = pick(&old_values);
            let c = ppo.clip_range_vf;
            let values = match c.is_finite() {
                true => &old + (&values - &old).clamp(-c, c),
                false => values,
            };
            let value_loss = (pick(&returns) - values).square().mean(kind);
            let loss = &policy_loss + &value_loss * a2c.value_coef
                - &terms.entropy * rates.entropy_coef
                + &terms.sum_squares * a2c.sum_squares_coef;
            let (approx_kl, clip_fraction) = tch::no_grad(|| {
                let kl = ((&ratio - 1.0) - &log_ratio).mean(kind).double_value(&[]);
                let clipped = (&ratio - 1.0).abs().gt(clip).to_kind(kind);
                (kl, clipped.mean(kind).double_value(&[]))
            });
            sums.minibatches += 1.0;
            sums.policy_loss += policy_loss.double_value(&[]);
            sums.value_loss += value_loss.double_value(&[]);
            sums.entropy += terms.entropy.double_value(&[]);
            sums.clip_fraction += clip_fraction;
            sums.approx_kl += approx_kl;
            sums.last_loss = loss.double_value(&[]);
            // sb3-contrib checks before the step: a minibatch this far off is not learnt from.
            if approx_kl > 1.5 * ppo.target_kl {
                break 'passes;
            }
            let step = gradient_step::apply(
                optim,
                &loss,
                &hs,
                tape,
                (a2c.max_grad_norm, rates.lr),
                &|| {},
            )?;
            sums.steps += 1.0;
            sums.grad_norm += step.grad_norm;
            sums.update_ratio += step.update_ratio;
        }
    }
    let per_minibatch = |v: f64| v / sums.minibatches;
    // No step taken (the first minibatch already past the KL target): nothing moved.
    let per_step = |v: f64| {
        if sums.steps > 0.0 {
            v / sums.steps
        } else {
            0.0
        }
    };
    Ok(Losses {
        policy_loss: per_minibatch(sums.policy_loss),
        value_loss: per_minibatch(sums.value_loss),
        entropy: per_minibatch(sums.entropy),
        explained_variance: explained_variance(&host_v, &host_returns),
        grad_norm: per_step(sums.grad_norm),
        update_ratio: per_step(sums.update_ratio),
        ppo: Some(PpoStats {
            clip_fraction: per_minibatch(sums.clip_fraction),
            approx_kl: per_minibatch(sums.approx_kl),
            loss: sums.last_loss,
            n_updates: optim.steps(),
            clip_range: clip,
            clip_range_vf: ppo.clip_range_vf.is_finite().then_some(ppo.clip_range_vf),
        }),
    })
}
