//! Discounted Gittins indices of Bernoulli arms with Beta(1, 1) priors, by calibration.
//!
//! The index of an arm in state `(s, f)` is the retirement reward `λ` per step at which a
//! gambler holding only that arm is indifferent between retiring now (`λ / (1 − γ)`) and
//! pulling it once more and then stopping optimally. For a fixed `λ` one backward pass over
//! every state `(s, f)` with `s + f ≤ N` solves that stopping problem for all states at once;
//! the pass is repeated on a grid of `λ` in [0, 1], and each state's index is where the
//! advantage of pulling, `continue − retire` (convex, piecewise linear and decreasing in `λ`),
//! changes sign, found by linear interpolation between the two grid points around it.
//! Past the truncation `N` the posterior is treated as known: `max(λ, m) / (1 − γ)`; `N` lies
//! far enough beyond the tabulated states that `γ` has discounted that approximation away.

/// Spacing of the `λ` grid is `1 / GRID`.
const GRID: usize = 500;
/// The truncation lies this far (in discount weight) beyond the deepest tabulated state.
const TAIL: f64 = 1e-3;

/// Gittins indices of every state with fewer than `pulls` pulls.
pub(crate) struct GittinsTable {
    pulls: usize,
    /// `index[n(n+1)/2 + s]` for `n = s + f`.
    index: Vec<f64>,
}

fn tri(n: usize) -> usize {
    n * (n + 1) / 2
}

impl GittinsTable {
    /// Tabulates the indices for discount `discount` (in (0, 1)) and `s + f < pulls`.
    pub(crate) fn new(discount: f64, pulls: usize) -> Self {
        let depth = (TAIL.ln() / discount.ln()).ceil() as usize;
        Self::calibrate(discount, pulls, depth, GRID)
    }

    fn calibrate(discount: f64, pulls: usize, depth: usize, grid: usize) -> Self {
        let top = pulls + depth;
        let wanted = tri(pulls);
        let retire_weight = 1.0 / (1.0 - discount);
        // Posterior means, layer by layer, for the whole truncated triangle.
        let mean: Vec<f64> = (0..=top)
            .flat_map(|n| (0..=n).map(move |s| (s + 1) as f64 / (n + 2) as f64))
            .collect();
        let mut index = vec![f64::NAN; wanted];
        let mut advantage_before = vec![0.0; wanted];
        let mut value = vec![0.0; top + 1];
        for j in 0..=grid {
            let lambda = j as f64 / grid as f64;
            let retire = lambda * retire_weight;
            for (v, &m) in value.iter_mut().zip(&mean[tri(top)..]) {
                *v = lambda.max(m) * retire_weight;
            }
            for n in (0..top).rev() {
                let layer = tri(n);
                // In place: state s of layer n reads states s and s + 1 of layer n + 1.
                for s in 0..=n {
                    let m = mean[layer + s];
                    let pull =
                        m * (1.0 + discount * value[s + 1]) + (1.0 - m) * discount * value[s];
                    value[s] = pull.max(retire);
                    if n < pulls {
                        let id = layer + s;
                        let advantage = pull - retire;
                        if index[id].is_nan() && advantage <= 0.0 {
                            let before = advantage_before[id];
                            let step = 1.0 / grid as f64;
                            index[id] = lambda - step + step * before / (before - advantage);
                        }
                        advantage_before[id] = advantage;
                    }
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
            (s + 1) as f64 / (n + 2) as f64
        }
    }
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
    fn scratch() {
        let reference = GittinsTable::calibrate(0.99, 100, 2000, 4000);
        for (depth, grid) in [
            (688, 500),
            (688, 4000),
            (300, 4000),
            (200, 4000),
            (100, 4000),
            (300, 200),
            (300, 100),
            (200, 100),
            (150, 100),
        ] {
            let t0 = std::time::Instant::now();
            let t = GittinsTable::calibrate(0.99, 100, depth, grid);
            let el = t0.elapsed();
            let mut worst = (0.0f64, 0, 0);
            for n in 0..100u32 {
                for s in 0..=n {
                    let e = (t.index(s, n - s) - reference.index(s, n - s)).abs();
                    if e > worst.0 {
                        worst = (e, s, n - s);
                    }
                }
            }
            eprintln!(
                "depth {depth} grid {grid}: worst {worst:?} (0,0) {:.5} time {el:?}",
                t.index(0, 0)
            );
        }
        eprintln!(
            "ref (0,0) {:.5} (10,10) {:.5} (50,49) {:.5}",
            reference.index(0, 0),
            reference.index(10, 10),
            reference.index(50, 49)
        );
    }

    #[test]
    fn beyond_the_table_the_index_is_the_posterior_mean() {
        let t = GittinsTable::new(0.9, 3);
        assert_eq!(t.index(3, 1), 4.0 / 6.0);
    }
}
