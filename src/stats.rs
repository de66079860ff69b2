//! Statistics across seeds, as the field reports them: quantiles (NumPy's linear rule), the
//! interquartile mean with a percentile bootstrap interval (Agarwal et al. 2021, rliable),
//! the Mann-Whitney U (rank-sum) test as SciPy computes it, and the probability of
//! improvement.
use rand::{Rng, SeedableRng};
use statrs::distribution::{ContinuousCDF, Normal};

/// The `q`-quantile (0..=1) of `xs` by linear interpolation between order statistics
/// (NumPy's default).
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let s = sorted(xs);
    let pos = q * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    // Equal neighbours are the quantile: interpolating between two infinities (runs that
    // never reached a `--steps-to` score) would give NaN.
    if s[lo] == s[hi] {
        return s[lo];
    }
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The interquartile mean: the mean of the middle half, a quarter of the values (rounded
/// down) cut from each end (SciPy's `trim_mean(x, 0.25)`, as rliable uses).
pub fn iqm(xs: &[f64]) -> f64 {
    let s = sorted(xs);
    let cut = s.len() / 4;
    mean(&s[cut..s.len() - cut])
}

/// A 95% percentile-bootstrap interval of `statistic` over runs drawn with replacement
/// (with one task, rliable's stratified bootstrap is this), from `reps` resamples.
pub fn bootstrap_ci(
    xs: &[f64],
    statistic: fn(&[f64]) -> f64,
    reps: usize,
    seed: u64,
) -> (f64, f64) {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut sample = vec![0.0; xs.len()];
    let values: Vec<f64> = (0..reps)
        .map(|_| {
            for v in &mut sample {
                *v = xs[rng.random_range(0..xs.len())];
            }
            statistic(&sample)
        })
        .collect();
    (quantile(&values, 0.025), quantile(&values, 0.975))
}

/// A two-sided Mann-Whitney U test of `x` against `y`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RankSum {
    /// U of `x`: the pairs in which `x` is larger, ties counting a half.
    pub u: f64,
    pub p_value: f64,
    /// `"exact"` or `"asymptotic"`.
    pub method: &'static str,
}

/// SciPy's `mannwhitneyu(x, y)` with its defaults: exact when a sample has at most 8 values
/// and there are no ties, otherwise the normal approximation with tie and continuity
/// corrections.
pub fn mann_whitney(x: &[f64], y: &[f64]) -> RankSum {
    let (n1, n2) = (x.len(), y.len());
    let u = x
        .iter()
        .map(|a| {
            y.iter()
                .map(|b| match a.partial_cmp(b) {
                    Some(std::cmp::Ordering::Greater) => 1.0,
                    Some(std::cmp::Ordering::Equal) => 0.5,
                    _ => 0.0,
                })
                .sum::<f64>()
        })
        .sum::<f64>();
    let all = sorted(&[x, y].concat());
    let tie_sizes: Vec<f64> = all
        .chunk_by(|a, b| a == b)
        .map(|c| c.len() as f64)
        .filter(|&t| t > 1.0)
        .collect();
    let big = u.max((n1 * n2) as f64 - u);
    if (n1 <= 8 || n2 <= 8) && tie_sizes.is_empty() {
        let counts = u_distribution(n1, n2);
        let total: f64 = counts.iter().sum();
        let at_least: f64 = counts[big as usize..].iter().sum();
        return RankSum {
            u,
            p_value: (2.0 * at_least / total).min(1.0),
            method: "exact",
        };
    }
    let n = (n1 + n2) as f64;
    let ties: f64 = tie_sizes.iter().map(|t| t * t * t - t).sum();
    let sd = ((n1 * n2) as f64 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))).sqrt();
    let z = (big - (n1 * n2) as f64 / 2.0 - 0.5) / sd;
    let normal = Normal::new(0.0, 1.0).expect("a standard normal");
    RankSum {
        u,
        p_value: (2.0 * (1.0 - normal.cdf(z))).min(1.0),
        method: "asymptotic",
    }
}

/// The smallest two-sided p a rank-sum test of `n1` against `n2` runs can give: complete
/// separation, one of the C(n1 + n2, n1) arrangements on each side (2 against 2: 1/3, so
/// such a test never shows a difference however large).
pub fn smallest_rank_sum_p(n1: usize, n2: usize) -> f64 {
    let arrangements = (1..=n1.min(n2)).fold(1.0, |c, k| c * (n1 + n2 + 1 - k) as f64 / k as f64);
    (2.0 / arrangements).min(1.0)
}

/// How many of the arrangements of `n1` and `n2` distinct values give each U (0..=n1·n2).
fn u_distribution(n1: usize, n2: usize) -> Vec<f64> {
    // f[i][j][u]: arrangements of i values of x and j of y with statistic u; the largest
    // value is from x (adding j to u) or from y.
    let mut f = vec![vec![vec![0.0; n1 * n2 + 1]; n2 + 1]; n1 + 1];
    for i in 0..=n1 {
        for j in 0..=n2 {
            if i == 0 || j == 0 {
                f[i][j][0] = 1.0;
                continue;
            }
            for u in 0..=i * j {
                let from_x = if u >= j { f[i - 1][j][u - j] } else { 0.0 };
                f[i][j][u] = from_x + f[i][j - 1][u];
            }
        }
    }
    f[n1][n2].clone()
}

/// P(a run of `x` scores higher than one of `y`), ties counting a half (rliable's
/// probability of improvement, for scores where higher is better).
pub fn probability_of_improvement(x: &[f64], y: &[f64]) -> f64 {
    mann_whitney(x, y).u / (x.len() * y.len()) as f64
}

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn quantiles_and_the_interquartile_mean_follow_numpy_and_scipy() {
        let xs = [7.0, 1.0, 3.0, 5.0];
        // numpy.percentile([1, 3, 5, 7], [25, 50, 75]) = 2.5, 4, 5.5
        assert_eq!([0.25, 0.5, 0.75].map(|q| quantile(&xs, q)), [2.5, 4.0, 5.5]);
        // scipy.stats.trim_mean(range(10), 0.25): cuts 2 from each end, mean of 2..=7.
        let ten: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(iqm(&ten), 4.5);
        assert_eq!(iqm(&[1.0, 2.0, 3.0, 100.0]), 2.5);
        assert_eq!(iqm(&[4.0, 9.0, 1.0]), mean(&[4.0, 9.0, 1.0]));
    }

    #[test]
    fn quantiles_between_infinities_are_infinite_not_nan() {
        let inf = f64::INFINITY;
        assert_eq!(quantile(&[1.0, inf, inf], 0.5), inf);
        assert_eq!(quantile(&[1.0, inf, inf], 0.975), inf);
        assert_eq!(quantile(&[1.0, 3.0, inf], 0.25), 2.0);
        assert_eq!(bootstrap_ci(&[1.0, 2.0, inf, 4.0, 5.0], iqm, 200, 3).1, inf);
    }

    #[test]
    fn bootstrap_intervals_hold_the_statistic_and_shrink_with_the_spread() {
        let xs: Vec<f64> = (0..20).map(f64::from).collect();
        let (lo, hi) = bootstrap_ci(&xs, iqm, 2000, 1);
        assert!(
            lo < iqm(&xs) && iqm(&xs) < hi && hi - lo < 10.0,
            "{lo} {hi}"
        );
        assert_eq!(bootstrap_ci(&[3.0; 5], iqm, 100, 1), (3.0, 3.0));
        assert_eq!(
            bootstrap_ci(&xs, iqm, 500, 9),
            bootstrap_ci(&xs, iqm, 500, 9)
        );
    }

    #[test]
    fn rank_sum_tests_match_hand_computed_cases() {
        // Complete separation, 3 against 3: U = 0 of 9, and 1 of the C(6,3) = 20
        // arrangements is as extreme on each side: p = 2/20.
        let r = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert_eq!((r.u, r.method), (0.0, "exact"));
        assert!(close(r.p_value, 0.1), "{r:?}");
        // One swap: U = 1; arrangements with U ≤ 1: 2 of 20 on each side: p = 4/20.
        let r = mann_whitney(&[1.0, 2.0, 4.0], &[3.0, 5.0, 6.0]);
        assert_eq!(r.u, 1.0);
        assert!(close(r.p_value, 0.2), "{r:?}");
        // Symmetric, and capped at 1.
        assert!(close(
            mann_whitney(&[4.0, 5.0, 6.0], &[1.0, 2.0, 3.0]).p_value,
            0.1
        ));
        assert_eq!(mann_whitney(&[1.0, 4.0], &[2.0, 3.0]).p_value, 1.0);
        // Ties: the normal approximation. x = [1, 2, 2], y = [2, 3, 3]: U = 0 + 0.5 + 0.5
        // + 0.5·0 ... = 1.0; n = 6, ties 3 (three 2s) and 2 (two 3s): Σ(t³−t) = 24 + 6;
        // σ² = 9/12·(7 − 30/30) = 4.5; z = (8 − 4.5 − 0.5)/√4.5; p = 2(1 − Φ(z)).
        let r = mann_whitney(&[1.0, 2.0, 2.0], &[2.0, 3.0, 3.0]);
        assert_eq!((r.u, r.method), (1.0, "asymptotic"));
        let z = 3.0 / 4.5f64.sqrt();
        let expected = 2.0 * (1.0 - Normal::new(0.0, 1.0).unwrap().cdf(z));
        assert!(close(r.p_value, expected), "{r:?} {expected}");
        assert!(close(
            probability_of_improvement(&[1.0, 2.0, 2.0], &[2.0, 3.0, 3.0]),
            1.0 / 9.0
        ));
    }

    #[test]
    fn the_exact_distribution_counts_every_arrangement() {
        let f = u_distribution(3, 3);
        assert_eq!(f, [1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 2.0, 1.0, 1.0]);
        let f = u_distribution(4, 6);
        assert_eq!(f.iter().sum::<f64>(), 210.0); // C(10, 4)
                                                  // The exact test's p at complete separation is the smallest there is.
        for (n1, n2) in [(2, 2), (3, 3), (1, 4), (4, 6)] {
            let x: Vec<f64> = (0..n1).map(f64::from).collect();
            let y: Vec<f64> = (n1..n1 + n2).map(f64::from).collect();
            let p = smallest_rank_sum_p(n1 as usize, n2 as usize);
            assert!(close(p, mann_whitney(&x, &y).p_value), "{n1} {n2} {p}");
        }
        assert!(close(smallest_rank_sum_p(2, 2), 1.0 / 3.0));
        assert_eq!(smallest_rank_sum_p(1, 1), 1.0);
    }
}
