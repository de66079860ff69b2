//! Returns and advantages of one rollout, on the host (`T × B` numbers: cheap, and exact).
use tch::Tensor;

/// One rollout as the return computation sees it, time-major `[T × B]`.
pub struct RolloutData<'a> {
    pub batch: usize,
    /// `r_t`, with `γ V(final obs)` already added on truncation in the truncated regime.
    pub rewards: &'a [f32],
    /// `V_t`.
    pub values: &'a [f32],
    /// The episode ended at step `t` (terminated or truncated): `V_{t+1}` belongs to another one.
    pub dones: &'a [bool],
    /// `V_T` after the last step (zeros where nothing is bootstrapped).
    pub last_values: &'a [f32],
}

/// GAE(λ): `δ_t = r_t + γ V_{t+1} (1 − d_t) − V_t`, `A_t = δ_t + γλ (1 − d_t) A_{t+1}`.
/// Returns `(A, G = A + V)`, time-major like the input.
pub fn gae(data: &RolloutData, gamma: f64, lambda: f64) -> (Vec<f32>, Vec<f32>) {
    let b = data.batch;
    let n = data.rewards.len();
    assert!(n.is_multiple_of(b) && data.values.len() == n && data.dones.len() == n);
    assert_eq!(data.last_values.len(), b);
    let mut adv = vec![0.0f32; n];
    let mut next_adv = vec![0.0f64; b];
    let mut next_value: Vec<f64> = data.last_values.iter().map(|&v| f64::from(v)).collect();
    for t in (0..n / b).rev() {
        for row in 0..b {
            let i = t * b + row;
            let keep = if data.dones[i] { 0.0 } else { 1.0 };
            let value = f64::from(data.values[i]);
            let delta = f64::from(data.rewards[i]) + gamma * next_value[row] * keep - value;
            next_adv[row] = delta + gamma * lambda * keep * next_adv[row];
            adv[i] = next_adv[row] as f32;
            next_value[row] = value;
        }
    }
    let returns = adv.iter().zip(data.values).map(|(a, v)| a + v).collect();
    (adv, returns)
}

/// Advantages normalised over `adv`'s elements (Stable-Baselines3's
/// `normalize_advantage`; the 1e-8 keeps a constant batch finite).
pub(crate) fn normalized(adv: &Tensor) -> Tensor {
    (adv - adv.mean(adv.kind())) / (adv.std(true) + 1e-8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_one_gives_discounted_returns_that_stop_at_episode_ends() {
        // One row, 4 steps, the episode ends after step 1; bootstrap 10 after step 3.
        let data = RolloutData {
            batch: 1,
            rewards: &[1.0, 2.0, 3.0, 4.0],
            values: &[0.5, 0.25, 1.0, 2.0],
            dones: &[false, true, false, false],
            last_values: &[10.0],
        };
        let (adv, ret) = gae(&data, 0.5, 1.0);
        let expected_ret = [
            1.0 + 0.5 * 2.0,
            2.0,
            3.0 + 0.5 * (4.0 + 0.5 * 10.0),
            4.0 + 5.0,
        ];
        for (r, e) in ret.iter().zip(expected_ret) {
            assert!((r - e).abs() < 1e-6, "{ret:?}");
        }
        for i in 0..4 {
            assert!((adv[i] - (ret[i] - data.values[i])).abs() < 1e-6);
        }
    }

    #[test]
    fn lambda_zero_is_one_step_td_and_rows_stay_apart() {
        let data = RolloutData {
            batch: 2,
            rewards: &[1.0, 0.0, 0.0, 1.0],
            values: &[0.0, 1.0, 2.0, 3.0],
            dones: &[false; 4],
            last_values: &[4.0, 5.0],
        };
        let (adv, _) = gae(&data, 0.9, 0.0);
        let expected = [
            1.0 + 0.9 * 2.0,
            0.9 * 3.0 - 1.0,
            0.9 * 4.0 - 2.0,
            1.0 + 0.9 * 5.0 - 3.0,
        ];
        for (a, e) in adv.iter().zip(expected) {
            assert!((a - e).abs() < 1e-5, "{adv:?}");
        }
    }
}
