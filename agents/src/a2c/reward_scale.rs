//! Reward scaling by the running standard deviation of the discounted return, as
//! Stable-Baselines3's `VecNormalize(norm_reward=True)` does. The critic then learns values of
//! order one whatever the task's scale: Acrobot's −1 per step for up to 500 steps is otherwise
//! a value near −100 that a shared core must produce before any advantage means anything.

use super::config::A2cConfig;

/// Scaled rewards are clipped to this magnitude.
const CLIP: f64 = 10.0;

/// The scaling the trainer applies to rewards as it collects them. It holds only the
/// discount: the statistics live where checkpoints save them, the running ones in
/// `Progress::return_stats` and each row's discounted return with the episodes under way.
#[derive(Debug, Clone, Copy)]
pub(super) struct RewardScale {
    gamma: f64,
}

impl RewardScale {
    /// The scaling `a2c.normalize_rewards` asks for, if it does.
    pub(super) fn new(a2c: &A2cConfig) -> Option<Self> {
        a2c.normalize_rewards.then_some(Self { gamma: a2c.gamma })
    }

    /// Scales one step's raw `rewards` (one per row) in place, once they are added to the
    /// rows' `discounted` returns and these returns to `stats`.
    pub(super) fn apply<'a>(
        &self,
        rewards: &mut [f32],
        discounted: impl Iterator<Item = &'a mut f64>,
        stats: &mut RunningStats,
    ) {
        let returns: Vec<f64> = discounted
            .zip(rewards.iter())
            .map(|(d, &r)| {
                *d = *d * self.gamma + f64::from(r);
                *d
            })
            .collect();
        stats.scale(rewards, returns.into_iter());
    }
}

/// Running mean and variance of a stream, updated a batch at a time (the parallel form of
/// Welford's algorithm: the same result however the stream is split).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct RunningStats {
    pub count: f64,
    pub mean: f64,
    pub var: f64,
}

impl RunningStats {
    pub fn update(&mut self, xs: impl ExactSizeIterator<Item = f64> + Clone) {
        let n = xs.len() as f64;
        if n == 0.0 {
            return;
        }
        let mean = xs.clone().sum::<f64>() / n;
        let var = xs.map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let total = self.count + n;
        let delta = mean - self.mean;
        let m2 = self.var * self.count + var * n + delta * delta * self.count * n / total;
        self.mean += delta * n / total;
        self.var = m2 / total;
        self.count = total;
    }

    /// Multiplies `rewards` by 1/std of the discounted returns seen so far (after adding
    /// `returns`, this step's discounted return of each row), clipped to ±10.
    pub fn scale(
        &mut self,
        rewards: &mut [f32],
        returns: impl ExactSizeIterator<Item = f64> + Clone,
    ) {
        self.update(returns);
        let inv_std = 1.0 / (self.var + 1e-8).sqrt();
        for r in rewards {
            *r = (f64::from(*r) * inv_std).clamp(-CLIP, CLIP) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_merge_into_the_statistics_of_the_whole_stream() {
        let xs = [1.0, 4.0, -2.0, 7.5, 0.25, 3.0, -1.0];
        let mut split = RunningStats::default();
        split.update(xs[..3].iter().copied());
        split.update(xs[3..].iter().copied());
        let mut whole = RunningStats::default();
        whole.update(xs.iter().copied());
        let mean = xs.iter().sum::<f64>() / 7.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 7.0;
        for s in [split, whole] {
            assert_eq!(s.count, 7.0);
            assert!(
                (s.mean - mean).abs() < 1e-12 && (s.var - var).abs() < 1e-12,
                "{s:?}"
            );
        }
    }

    #[test]
    fn rewards_are_divided_by_the_return_spread_and_clipped() {
        let mut s = RunningStats::default();
        s.update([-2.0, 2.0].into_iter());
        let mut rewards = [-1.0f32, 0.5, 1e9];
        // Returns of 2 and −2 again: the variance stays 4, so the scale is 1/2.
        s.scale(&mut rewards, [2.0, -2.0].into_iter());
        assert_eq!(rewards, [-0.5, 0.25, 10.0]);
    }
}
