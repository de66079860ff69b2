//! Discounted Gittins indices of Bernoulli arms with Beta(1, 1) priors, by calibration.
//!
//! The index of an arm in state `(s, f)` is the retirement reward `λ` per step at which a
//! gambler holding only that arm is indifferent between retiring now (`λ / (1 − γ)`) and
//! pulling it once more and then stopping optimally. For a fixed `λ` one backward pass over
//! every state `(s, f)` with `s + f ≤ N` solves that stopping problem for all states at once;
//! the pass is repeated on a grid of `λ` in [0, 1], and each state's index is where the
//! advantage of pulling, `continue − retire` (convex, piecewise linear and decreasing in `λ`),
//! changes sign. The pass carries each value's slope in `λ` too, so the crossing comes from
//! the tangents at the two grid points around it: within 2e-4 of a 10× finer grid at
//! γ = 0.99, where linear interpolation was off by 1e-3 at a similar cost. One pass serves every
//! state, so the cost is `GRID · N² / 2` whatever the number of states wanted.
//! Past the truncation `N` the posterior is treated as known: `max(λ, m) / (1 − γ)`; `N` lies
//! far enough beyond the tabulated states that `γ` has discounted that approximation away.
use super::{beta_mean, tri};

/// Spacing of the `λ` grid is `1 / GRID`.
const GRID: usize = 400;
/// The truncation lies where the discount has fallen to this, seen from the deepest tabulated
/// state (300 pulls beyond it at γ = 0.99). There the known-mean approximation moves indices
/// by about 1e-5: the value of what is still to learn is small and discounted.
const TAIL: f64 = 0.05;

/// Gittins indices of every state with fewer than `pulls` pulls.
pub(crate) struct GittinsTable {
    pulls: usize,
    /// `index[n(n+1)/2 + s]` for `n = s + f`.
    index: Vec<f64>,
}

impl GittinsTable {
    /// Tabulates the indices for discount `discount` (in (0, 1)) and `s + f < pulls`.
    pub(crate) fn new(discount: f64, pulls: usize) -> Self {
        let top = pulls + (TAIL.ln() / discount.ln()).ceil() as usize;
        let retire_weight = 1.0 / (1.0 - discount);
        // Posterior means, layer by layer, for the whole truncated triangle.
        let mean: Vec<f64> = (0..=top)
            .flat_map(|n| (0..=n).map(move |s| beta_mean(s, n)))
            .collect();
        let mut index = vec![f64::NAN; tri(pulls)];
        // `(advantage of pulling over retiring, its slope in λ)` at the previous grid point.
        let mut before = vec![(0.0, 0.0); tri(pulls)];
        // `(value, its slope in λ)` of every state of one layer; the slope is the expected
        // discounted weight of the retirement reward under optimal stopping.
        let mut value = vec![(0.0, 0.0); top + 1];
        let step = 1.0 / GRID as f64;
        for j in 0..=GRID {
            let lambda = j as f64 * step;
            let retire = (lambda * retire_weight, retire_weight);
            for (v, &m) in value.iter_mut().zip(&mean[tri(top)..]) {
                *v = if lambda >= m {
                    retire
                } else {
                    (m * retire_weight, 0.0)
                };
            }
            for n in (0..top).rev() {
                let layer = tri(n);
                // In place: state s of layer n reads states s and s + 1 of layer n + 1.
                for s in 0..=n {
                    let m = mean[layer + s];
                    let (win, lose) = (value[s + 1], value[s]);
                    let pull = (
                        m * (1.0 + discount * win.0) + (1.0 - m) * discount * lose.0,
                        discount * (m * win.1 + (1.0 - m) * lose.1),
                    );
                    value[s] = if pull.0 > retire.0 { pull } else { retire };
                    if n >= pulls {
                        continue;
                    }
                    let id = layer + s;
                    let now = (pull.0 - retire.0, pull.1 - retire.1);
                    if index[id].is_nan() && now.0 <= 0.0 {
                        index[id] = crossing(lambda - step, before[id], lambda, now);
                    }
                    before[id] = now;
                }
            }
        }
        Self { pulls, index }
    }

    /// The index of an arm seen to succeed `succ` and fail `fail` times. Beyond the table (an
    /// arm pulled more often than the horizon allows) it falls back to the posterior mean,
    /// the limit the index tends to as the arm becomes known.
    pub(crate) fn index(&self, succ: u32, fail: u32) -> f64 {
        let (s, n) = (succ as usize, (succ + fail) as usize);
        if n < self.pulls {
            self.index[tri(n) + s]
        } else {
            beta_mean(s, n)
        }
    }
}

/// Where a convex, piecewise linear, decreasing function crosses zero between `lo` (positive
/// there) and `hi` (not positive), given its value and slope at both. With one kink between
/// them the function is the larger of the two tangents, so the later tangent root is exact;
/// with more it is a lower bound close to the root.
fn crossing(
    lo: f64,
    (value_lo, slope_lo): (f64, f64),
    hi: f64,
    (value_hi, slope_hi): (f64, f64),
) -> f64 {
    let from_lo = lo - value_lo / slope_lo;
    let from_hi = hi - value_hi / slope_hi;
    from_lo.max(from_hi).clamp(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_gittins_published_values() {
        // Gittins' tables, as quoted by Christian & Griffiths, "Algorithms to Live By" (2016).
        let t = GittinsTable::new(0.9, 12);
        for ((s, f), want) in [
            ((0, 0), 0.7029),
            ((1, 1), 0.6346),
            ((2, 2), 0.6010),
            ((9, 1), 0.8695),
        ] {
            let got = t.index(s, f);
            assert!(
                (got - want).abs() < 5e-4,
                "γ = 0.9, ({s}, {f}): {got} vs {want}"
            );
        }
        let got = GittinsTable::new(0.99, 1).index(0, 0);
        assert!((got - 0.8699).abs() < 5e-4, "γ = 0.99, (0, 0): {got}");
    }

    #[test]
    fn index_exceeds_the_mean_rises_with_successes_and_falls_with_pulls() {
        let t = GittinsTable::new(0.99, 30);
        for n in 0..30u32 {
            for s in 0..=n {
                let (idx, mean) = (t.index(s, n - s), f64::from(s + 1) / f64::from(n + 2));
                assert!(
                    idx > mean && idx < 1.0,
                    "({s}, {}): {idx} vs mean {mean}",
                    n - s
                );
                if s < n {
                    assert!(
                        t.index(s + 1, n - s - 1) > idx,
                        "success at ({s}, {})",
                        n - s
                    );
                }
            }
        }
        // Same posterior mean 1/2, more evidence: less to learn, smaller bonus.
        for k in 0..14 {
            assert!(t.index(k + 1, k + 1) < t.index(k, k), "({k}, {k})");
        }
    }

    #[test]
    fn beyond_the_table_the_index_is_the_posterior_mean() {
        let t = GittinsTable::new(0.9, 3);
        assert_eq!(t.index(3, 1), 4.0 / 6.0);
    }
}
