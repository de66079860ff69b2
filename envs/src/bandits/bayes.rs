//! The exact finite-horizon Bayes-optimal policy of the two-armed Bernoulli tasks, by backward
//! induction over posterior counts.
//!
//! `independent` (two arms, uniform priors): the state after `t` pulls is `(s1, f1, s2, f2)`,
//! `C(T + 3, 4)` states in all (4.4 M at `T = 100`). Only two layers of values are alive at a
//! time; what is kept is one byte per state, the best action.
//!
//! `dependent-*`: a success on arm 1 and a failure on arm 2 are the same evidence about `p1`,
//! so `(a, b) = (s1 + f2, f1 + s2)` is sufficient: the likelihood of `p1` is `p1^a (1 − p1)^b`.
//! Both arms then move the state the same way and differ only in the reward, so the optimal
//! policy is greedy on the posterior mean; the recursion finds that by itself.
use super::{beta_mean, tri, BanditConfig, DependentPrior, Task};

/// Tells the caller to pick either arm: both are optimal.
pub(crate) const EITHER: u8 = 2;

/// Two actions closer than this in value are both optimal (they differ by rounding only).
const TIE: f64 = 1e-9;

/// Beyond this horizon the `independent` table (`C(T + 3, 4)` bytes) grows past 70 MB.
pub(crate) const MAX_INDEPENDENT_LEN: usize = 200;
/// Beyond this horizon the `dependent` table (`T²/2` bytes) grows past 50 MB.
pub(crate) const MAX_DEPENDENT_LEN: usize = 10_000;

/// Best action (0, 1 or [`EITHER`]) in every reachable posterior state of one task.
pub(crate) struct BayesTable {
    len: usize,
    kind: Kind,
    decisions: Vec<u8>,
    /// Expected total reward of optimal play from the start of an episode.
    value: f64,
    /// Expected total reward of always pulling the best arm: `T · E[max(p1, p2)]`.
    oracle: f64,
}

enum Kind {
    /// `row_start[t(t+1)/2 + n1]`: where layer `t`'s states with `n1 = s1 + f1` begin.
    Independent {
        row_start: Vec<usize>,
    },
    Dependent,
}

impl BayesTable {
    /// `None` when the task has no exact solution here: more than two arms, drifting arms,
    /// non-Bernoulli rewards, or a horizon too long to tabulate.
    pub(crate) fn solve(config: &BanditConfig) -> Option<Self> {
        let len = config.horizon();
        match config.task() {
            Task::Independent { arms: 2 } if len <= MAX_INDEPENDENT_LEN => {
                Some(solve_independent(len))
            }
            Task::Dependent(prior) if len <= MAX_DEPENDENT_LEN => Some(solve_dependent(len, prior)),
            _ => None,
        }
    }

    /// The best action after `succ[a]` successes and `fail[a]` failures on arm `a`; `None`
    /// once the horizon is spent.
    pub(crate) fn decision(&self, succ: &[u32], fail: &[u32]) -> Option<u8> {
        let [s1, s2] = [succ[0] as usize, succ[1] as usize];
        let [f1, f2] = [fail[0] as usize, fail[1] as usize];
        let t = s1 + f1 + s2 + f2;
        if t >= self.len {
            return None;
        }
        let index = match &self.kind {
            Kind::Independent { row_start } => {
                row_start[tri(t) + s1 + f1] + s1 * (t - s1 - f1 + 1) + s2
            }
            Kind::Dependent => tri(t) + s1 + f2,
        };
        Some(self.decisions[index])
    }

    pub(crate) fn regret(&self) -> f64 {
        self.oracle - self.value
    }
}

/// Exact expected pseudo-regret per episode of the Bayes-optimal policy,
/// `T · E[max_a p_a] − V*`, for the two-armed `independent` and the `dependent-*` tasks.
pub fn bayes_optimal_regret(config: &BanditConfig) -> Option<f64> {
    BayesTable::solve(config).map(|table| table.regret())
}

/// The better of two action values, and which it is.
fn best(q1: f64, q2: f64) -> (f64, u8) {
    if (q1 - q2).abs() <= TIE * q1.abs().max(1.0) {
        (q1.max(q2), EITHER)
    } else if q1 > q2 {
        (q1, 0)
    } else {
        (q2, 1)
    }
}

fn solve_independent(len: usize) -> BayesTable {
    // Layer t holds (n1, s1, s2) for n1 = s1 + f1 ∈ 0..=t, s1 ∈ 0..=n1, s2 ∈ 0..=t − n1,
    // laid out n1-major: `row_start` is the global index of each (t, n1) block.
    let mut row_start = Vec::with_capacity(tri(len + 1));
    let mut layer_start = Vec::with_capacity(len + 2);
    let mut next = 0;
    for t in 0..=len {
        layer_start.push(next);
        for n1 in 0..=t {
            row_start.push(next);
            next += (n1 + 1) * (t - n1 + 1);
        }
    }
    layer_start.push(next);
    let mut decisions = vec![0u8; layer_start[len]];
    // Values of layer t + 1, indexed relative to its start; the last layer is worth nothing.
    let mut later = vec![0.0f64; layer_start[len + 1] - layer_start[len]];
    let mut now = Vec::new();
    for t in (0..len).rev() {
        let (base, next_base) = (layer_start[t], layer_start[t + 1]);
        // Local index in layer t + 1 of (n1, s1, s2).
        let at = |n1: usize, s1: usize, s2: usize| {
            row_start[tri(t + 1) + n1] - next_base + s1 * (t + 1 - n1 + 1) + s2
        };
        now.clear();
        now.resize(next_base - base, 0.0);
        for n1 in 0..=t {
            let n2 = t - n1;
            let start = row_start[tri(t) + n1];
            for s1 in 0..=n1 {
                let m1 = beta_mean(s1, n1);
                let (win1, lose1) = (at(n1 + 1, s1 + 1, 0), at(n1 + 1, s1, 0));
                let (win2, lose2) = (at(n1, s1, 1), at(n1, s1, 0));
                for s2 in 0..=n2 {
                    let m2 = beta_mean(s2, n2);
                    let q1 = m1 * (1.0 + later[win1 + s2]) + (1.0 - m1) * later[lose1 + s2];
                    let q2 = m2 * (1.0 + later[win2 + s2]) + (1.0 - m2) * later[lose2 + s2];
                    let (v, d) = best(q1, q2);
                    let i = start + s1 * (n2 + 1) + s2;
                    now[i - base] = v;
                    decisions[i] = d;
                }
            }
        }
        std::mem::swap(&mut now, &mut later);
    }
    row_start.truncate(tri(len));
    BayesTable {
        len,
        kind: Kind::Independent { row_start },
        decisions,
        value: later[0],
        // E[max(U1, U2)] = 2/3.
        oracle: len as f64 * 2.0 / 3.0,
    }
}

/// Posterior mean of `p1` after evidence `(a, b)` in a dependent family.
fn posterior_mean(prior: DependentPrior, a: usize, b: usize) -> f64 {
    match prior.low() {
        None => beta_mean(a, a + b),
        Some(low) => {
            let high = 1.0 - low;
            // P(p1 = low) / P(p1 = high) = (low / high)^(a − b); overflow gives 0, not NaN.
            let p_high = 1.0 / (1.0 + (low / high).powi(a as i32 - b as i32));
            p_high * high + (1.0 - p_high) * low
        }
    }
}

fn solve_dependent(len: usize, prior: DependentPrior) -> BayesTable {
    let mut decisions = vec![0u8; tri(len)];
    let mut later = vec![0.0f64; len + 1];
    for t in (0..len).rev() {
        let now: Vec<f64> = (0..=t)
            .map(|a| {
                let m = posterior_mean(prior, a, t - a);
                // Either pull moves the evidence to (a + 1, b) with probability m, paying on arm
                // 1, and to (a, b + 1) otherwise, paying on arm 2.
                let future = m * later[a + 1] + (1.0 - m) * later[a];
                let (v, d) = best(m + future, 1.0 - m + future);
                decisions[tri(t) + a] = d;
                v
            })
            .collect();
        later = now;
    }
    let best_mean = match prior.low() {
        // E[max(p, 1 − p)] for p ~ U[0, 1].
        None => 0.75,
        Some(low) => 1.0 - low,
    };
    BayesTable {
        len,
        kind: Kind::Dependent,
        decisions,
        value: later[0],
        oracle: len as f64 * best_mean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(id: &str) -> BanditConfig {
        BanditConfig::from_id(id).unwrap().unwrap()
    }

    /// The same recursion by plain memoised recursion over `(s1, f1, s2, f2)`.
    fn brute_force(len: usize) -> f64 {
        fn v(
            len: usize,
            c: [usize; 4],
            memo: &mut std::collections::HashMap<[usize; 4], f64>,
        ) -> f64 {
            if c.iter().sum::<usize>() == len {
                return 0.0;
            }
            if let Some(&x) = memo.get(&c) {
                return x;
            }
            let mut best = f64::MIN;
            for arm in 0..2 {
                let (s, f) = (c[2 * arm], c[2 * arm + 1]);
                let m = beta_mean(s, s + f);
                let (mut win, mut lose) = (c, c);
                win[2 * arm] += 1;
                lose[2 * arm + 1] += 1;
                best = best.max(m * (1.0 + v(len, win, memo)) + (1.0 - m) * v(len, lose, memo));
            }
            memo.insert(c, best);
            best
        }
        v(len, [0; 4], &mut Default::default())
    }

    #[test]
    fn independent_table_agrees_with_plain_recursion() {
        for len in [1, 2, 3, 7, 12] {
            let table =
                BayesTable::solve(&config(&format!("bandit-independent:len={len}"))).unwrap();
            let want = brute_force(len);
            assert!(
                (table.value - want).abs() < 1e-9,
                "len {len}: {} vs {want}",
                table.value
            );
        }
    }

    #[test]
    fn one_step_is_a_coin_flip_between_equal_arms() {
        // With nothing seen both arms are worth 1/2: regret T·2/3 − 1/2 at T = 1.
        let table = BayesTable::solve(&config("bandit-independent:len=1")).unwrap();
        assert!((table.regret() - (2.0 / 3.0 - 0.5)).abs() < 1e-12);
        assert_eq!(table.decision(&[0, 0], &[0, 0]), Some(EITHER));
        assert_eq!(table.decision(&[1, 0], &[0, 0]), None);
    }

    #[test]
    fn decisions_follow_the_evidence() {
        let table = BayesTable::solve(&config("bandit-independent")).unwrap();
        assert_eq!(table.decision(&[5, 0], &[0, 5]), Some(0));
        assert_eq!(table.decision(&[0, 5], &[5, 0]), Some(1));
        assert_eq!(table.decision(&[3, 3], &[2, 2]), Some(EITHER));
        let table = BayesTable::solve(&config("bandit-dependent-hard")).unwrap();
        // Arm 2 failing is evidence for arm 1.
        assert_eq!(table.decision(&[0, 0], &[0, 1]), Some(0));
        assert_eq!(table.decision(&[0, 1], &[0, 0]), Some(1));
        // Evidence (a, b) = (s1 + f2, f1 + s2) = (2, 2).
        assert_eq!(table.decision(&[2, 1], &[1, 0]), Some(EITHER));
        assert_eq!(table.decision(&[2, 1], &[1, 2]), Some(0));
    }

    #[test]
    fn dependent_optimum_is_greedy_and_easy_first_pull_is_a_coin_flip() {
        // Regret of the first pull alone: 0.8 half of the time.
        let one = BayesTable::solve(&config("bandit-dependent-easy:len=1")).unwrap();
        assert!((one.regret() - 0.4).abs() < 1e-12);
        // After one pull the evidence settles easy almost surely: the regret grows slowly.
        let two = BayesTable::solve(&config("bandit-dependent-easy:len=2")).unwrap();
        // Second pull errs only when the first pull misled: P = 0.1 · … = 0.1, cost 0.8.
        assert!((two.regret() - 0.48).abs() < 1e-12, "{}", two.regret());
    }

    #[test]
    fn unsupported_tasks_have_no_table() {
        for id in [
            "bandit-independent:arms=3",
            "bandit-restless",
            "bandit-informative-11",
        ] {
            assert!(bayes_optimal_regret(&config(id)).is_none(), "{id}");
        }
        let too_long = format!("bandit-independent:len={}", MAX_INDEPENDENT_LEN + 1);
        assert!(bayes_optimal_regret(&config(&too_long)).is_none());
    }
}
