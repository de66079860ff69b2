//! The policy of continuous action spaces: Stable-Baselines3's `DiagGaussianDistribution`. The
//! policy head's outputs are the means, one per action component, and a learned log standard
//! deviation per component, independent of the state, sets the spread. Log-probabilities and
//! the entropy are the unclipped sample's (the environment clips, `ActionBox::clip_into`);
//! greedy acting takes the mean.
use crate::acting::ActionMode;
use crate::cores::init;
use plastic_envs::rng::Rng;
use rand_distr::{Distribution, StandardNormal};
use tch::{nn, Kind, Tensor};

/// SB3's `log_std_init`: a standard deviation of 1 at the start.
const LOG_STD_INIT: f64 = 0.0;

/// `ln √(2π)`, the normal density's constant.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// The learned log standard deviations, `[dim]`, as variable `log_std` under `p`.
pub(crate) fn log_std_var(p: &nn::Path, dim: i64) -> Tensor {
    init::var(
        p,
        "log_std",
        &Tensor::full([dim], LOG_STD_INIT, (Kind::Float, p.device())),
    )
}

/// `log N(actions; means, exp(log_std)²)` summed over the components (the last dimension):
/// `means` and `actions` `[... × dim]`, `log_std` `[dim]`; the result is `[...]`.
pub(crate) fn log_prob(means: &Tensor, log_std: &Tensor, actions: &Tensor) -> Tensor {
    let z = (actions - means) / log_std.exp();
    (z.square() * -0.5 - log_std - LN_SQRT_2PI).sum_dim_intlist(-1, false, means.kind())
}

/// The entropy of the distribution, the same in every state: `Σ (½ + ln √(2π) + log σ)`.
pub(crate) fn entropy(log_std: &Tensor) -> Tensor {
    (log_std + (0.5 + LN_SQRT_2PI)).sum(log_std.kind())
}

/// One action per row: `means` `[B × dim]` flattened (host), `std` `[dim]`; sampling draws
/// `mean + std · z` with `z` standard normal from the row's own stream, greedy takes the mean.
pub(crate) fn choose(
    means: &[f32],
    std: &[f32],
    mode: ActionMode,
    rngs: &mut [Rng],
    actions: &mut [f32],
) {
    actions.copy_from_slice(means);
    if mode == ActionMode::Greedy {
        return;
    }
    for (row, rng) in actions.chunks_mut(std.len()).zip(rngs) {
        for (a, &s) in row.iter_mut().zip(std) {
            let z: f32 = StandardNormal.sample(rng);
            *a += s * z;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plastic_envs::rng;

    #[test]
    fn log_prob_and_entropy_are_the_normal_densitys() {
        let means = Tensor::from_slice(&[0.0f32, 1.0]).view([1, 2]);
        let log_std = Tensor::from_slice(&[0.0f32, 2f32.ln()]);
        let actions = Tensor::from_slice(&[1.0f32, 1.0]).view([1, 2]);
        // N(1; 0, 1) · N(1; 1, 4): log = (−½ − ln √(2π)) + (− ln 2 − ln √(2π)).
        let expected = -0.5 - 2.0 * LN_SQRT_2PI - 2f64.ln();
        let got = log_prob(&means, &log_std, &actions).double_value(&[0]);
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
        let h = entropy(&log_std).double_value(&[]);
        assert!(
            (h - (1.0 + 2.0 * LN_SQRT_2PI + 2f64.ln())).abs() < 1e-6,
            "{h}"
        );
    }

    #[test]
    fn samples_spread_by_std_around_the_mean_and_greedy_is_the_mean() {
        let n = 20_000;
        let mut rngs = vec![rng::stream(3, 0)];
        let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
        let mut a = [0.0f32];
        for _ in 0..n {
            choose(&[1.5], &[0.5], ActionMode::Sample, &mut rngs, &mut a);
            sum += f64::from(a[0]);
            sum_sq += f64::from(a[0]).powi(2);
        }
        let mean = sum / n as f64;
        let std = (sum_sq / n as f64 - mean * mean).sqrt();
        assert!((mean - 1.5).abs() < 5.0 * 0.5 / (n as f64).sqrt(), "{mean}");
        assert!((std - 0.5).abs() < 0.02, "{std}");
        choose(&[1.5], &[0.5], ActionMode::Greedy, &mut rngs, &mut a);
        assert_eq!(a, [1.5]);
    }
}
