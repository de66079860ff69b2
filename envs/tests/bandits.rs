//! The bandit environments and reference policies, through the public API.
use plastic_envs::bandits::{BanditConfig, FAMILIES};
use plastic_envs::rollout::{run_episodes, Estimate};
use plastic_envs::{registry, Environment, Policy, PolicyError, VecEnv};

/// Reference regret per episode at T = 100 (`docs/bandits.md`): random, UCB1, Thompson,
/// Bayes-optimal.
const REFERENCE: [(&str, [f64; 4]); 5] = [
    ("bandit-independent", [16.67, 5.58, 2.78, 1.748]),
    ("bandit-dependent-uniform", [25.0, 6.00, 2.79, 1.221]),
    ("bandit-dependent-easy", [40.0, 6.30, 2.12, 0.625]),
    ("bandit-dependent-medium", [25.0, 7.03, 3.00, 1.000]),
    ("bandit-dependent-hard", [10.0, 6.00, 4.09, 2.312]),
];

/// Episodes per Monte Carlo estimate. Unoptimised builds (`cargo test` without `--release`)
/// run fewer, so their 3-standard-error band is wider; it tests the same hypothesis.
const EPISODES: usize = if cfg!(debug_assertions) {
    2_000
} else {
    20_000
};
const BATCH: usize = 200;

fn config(id: &str) -> BanditConfig {
    BanditConfig::from_id(id).unwrap().expect("a bandit id")
}

fn make_policy(
    name: &str,
    config: &BanditConfig,
    num_envs: usize,
    seed: u64,
) -> Result<Box<dyn Policy>, PolicyError> {
    config.policy(name, num_envs, seed)
}

fn regret_of(policy: &str, id: &str, episodes: usize, seed: u64) -> Estimate {
    let mut env = registry::make(id, BATCH).unwrap();
    let mut policy = make_policy(policy, &config(id), BATCH, seed).unwrap();
    run_episodes(&mut *env, &mut *policy, episodes, seed)
        .unwrap()
        .regret
        .unwrap()
}

/// Checks one column of [`REFERENCE`] by Monte Carlo: within 3 standard errors, plus 0.005
/// for the table's rounding.
fn assert_matches_reference(policy: &str, column: usize) {
    let mut misses = Vec::new();
    for (seed, (id, row)) in REFERENCE.iter().enumerate() {
        let want = row[column];
        let got = regret_of(policy, id, EPISODES, 100 + seed as u64);
        eprintln!(
            "{policy:>8} {id:<26} {:7.3} ± {:.3} (reference {want})",
            got.mean,
            got.std_err.unwrap()
        );
        if (got.mean - want).abs() > 3.0 * got.std_err.unwrap() + 0.005 {
            misses.push(format!(
                "{id}: {:.3} ± {:.3}, reference {want}",
                got.mean,
                got.std_err.unwrap()
            ));
        }
    }
    assert!(
        misses.is_empty(),
        "{policy} misses the reference: {misses:#?}"
    );
}

#[test]
fn random_regret_matches_the_reference() {
    assert_matches_reference("random", 0);
}

#[test]
fn ucb1_regret_matches_the_reference() {
    assert_matches_reference("ucb1", 1);
}

#[test]
fn thompson_regret_matches_the_reference() {
    assert_matches_reference("thompson", 2);
}

#[test]
fn bayes_policy_regret_matches_the_reference() {
    assert_matches_reference("bayes", 3);
}

#[test]
fn exact_bayes_regret_matches_the_reference() {
    for (id, row) in REFERENCE {
        let exact = config(id).bayes_optimal_regret().unwrap();
        eprintln!("exact bayes {id:<26} {exact:.4} (reference {})", row[3]);
        assert!(
            (exact - row[3]).abs() < 0.001,
            "{id}: {exact} vs {}",
            row[3]
        );
    }
}

#[test]
fn gittins_is_close_to_bayes_optimal_on_two_independent_arms() {
    let id = "bandit-independent";
    let gittins = regret_of("gittins", id, EPISODES, 7);
    eprintln!(
        "gittins {id}: {:.3} ± {:.3}",
        gittins.mean,
        gittins.std_err.unwrap()
    );
    let bayes = config(id).bayes_optimal_regret().unwrap();
    // Nothing beats the Bayes-optimal policy in expectation; Thompson's reference is 2.78.
    assert!(
        gittins.mean > bayes - 3.0 * gittins.std_err.unwrap(),
        "{gittins:?} below {bayes}"
    );
    assert!(
        gittins.mean + 3.0 * gittins.std_err.unwrap() < 2.78,
        "{gittins:?}"
    );
}

#[test]
fn spec_and_first_observation_of_every_family() {
    for family in FAMILIES {
        let id = family.name;
        let config = config(id);
        let mut env = registry::make(id, 3).unwrap();
        let spec = env.spec().clone();
        assert_eq!(spec.id, config.id());
        assert_eq!(spec.num_actions, config.num_arms());
        assert_eq!(spec.obs_dim, config.num_arms() + 2);
        assert_eq!(spec.episode_len, Some(config.horizon()));
        assert_eq!(
            registry::make(&spec.id, 1).unwrap().spec(),
            &spec,
            "canonical id round-trips"
        );
        let obs = env.reset(0).unwrap();
        assert_eq!(obs.len(), 3 * spec.obs_dim);
        assert!(
            obs.iter().all(|&x| x == 0.0),
            "{id}: first observation {obs:?}"
        );
    }
}

#[test]
fn observation_shows_previous_action_reward_and_time() {
    let mut env = registry::make("bandit-independent:arms=3,len=4", 2).unwrap();
    env.reset(5).unwrap();
    for (t, actions) in [[2u32, 0], [1, 1], [1, 2]].iter().enumerate() {
        let s = env.step(actions).unwrap();
        for (row, &a) in actions.iter().enumerate() {
            let obs = s.obs_row(row);
            let r = s.rewards[row];
            assert!(r == 0.0 || r == 1.0, "Bernoulli reward {r}");
            let mut want = [0.0; 5];
            want[a as usize] = 1.0;
            want[3] = r;
            want[4] = (t + 1) as f32 / 4.0;
            assert_eq!(obs, &want[..], "step {t}, row {row}");
        }
        assert!(!s.truncated.iter().chain(s.terminated).any(|&x| x));
    }
}

#[test]
fn episodes_terminate_at_the_horizon_and_restart() {
    let mut env = registry::make("bandit-dependent-uniform:len=3", 4).unwrap();
    env.reset(9).unwrap();
    for _ in 0..2 {
        assert!(!env
            .step(&[0, 1, 0, 1])
            .unwrap()
            .terminated
            .iter()
            .any(|&x| x));
    }
    let s = env.step(&[1, 0, 1, 1]).unwrap();
    assert!(s.terminated.iter().all(|&x| x) && !s.truncated.iter().any(|&x| x));
    for (row, a) in [1usize, 0, 1, 1].into_iter().enumerate() {
        let last = s.final_obs_row(row);
        assert_eq!(
            (last[a], last[1 - a], last[2], last[3]),
            (1.0, 0.0, s.rewards[row], 1.0)
        );
        assert!(
            s.obs_row(row).iter().all(|&x| x == 0.0),
            "row {row} restarts"
        );
    }
    let s = env.step(&[0; 4]).unwrap();
    assert!(s
        .obs
        .chunks(4)
        .all(|o| o[0] == 1.0 && o[1] == 0.0 && o[3] == 1.0 / 3.0));
}

#[test]
fn every_episode_draws_new_arms() {
    // Arm 1's regret max(p, 1 − p) − p is constant within an episode, new in the next.
    let mut env = registry::make("bandit-dependent-uniform:len=5", 1).unwrap();
    env.reset(11).unwrap();
    let mut per_episode = Vec::new();
    for _ in 0..20 {
        let regrets: Vec<f32> = (0..5)
            .map(|_| env.step(&[0]).unwrap().regret.unwrap()[0])
            .collect();
        assert!(regrets.iter().all(|&r| r == regrets[0]), "{regrets:?}");
        per_episode.push(regrets[0]);
    }
    per_episode.sort_by(f32::total_cmp);
    per_episode.dedup();
    // p1 is uniform, so arm 1 is the better one about half of the time, with regret 0.
    assert!(per_episode.len() >= 5, "{per_episode:?}");
}

#[test]
fn regret_is_the_gap_to_the_best_arm_and_rewards_follow_the_arms() {
    // Twins with one seed draw the same arms and uniforms; one pulls arm 1, one arm 2.
    let (b, steps) = (64, 200);
    let id = "bandit-dependent-easy:len=20";
    let (mut first, mut second) = (
        registry::make(id, b).unwrap(),
        registry::make(id, b).unwrap(),
    );
    first.reset(8).unwrap();
    second.reset(8).unwrap();
    // Reward totals and counts on the better and the worse arm.
    let (mut better, mut worse) = ([0.0f64; 2], [0.0f64; 2]);
    for _ in 0..steps {
        let s1 = first.step(&[0; 64]).unwrap();
        let (r1, g1) = (s1.rewards.to_vec(), s1.regret.unwrap().to_vec());
        let s2 = second.step(&[1; 64]).unwrap();
        for row in 0..b {
            let g2 = s2.regret.unwrap()[row];
            let mut gaps = [g1[row], g2];
            gaps.sort_by(f32::total_cmp);
            // p2 = 1 − p1 with p1 ∈ {0.1, 0.9}: one arm is best, the other 0.8 worse.
            assert_eq!(gaps[0], 0.0);
            assert!((gaps[1] - 0.8).abs() < 1e-6, "{gaps:?}");
            for (reward, gap) in [(r1[row], g1[row]), (s2.rewards[row], g2)] {
                let tally = if gap == 0.0 { &mut better } else { &mut worse };
                tally[0] += f64::from(reward);
                tally[1] += 1.0;
            }
        }
    }
    let (hit_better, hit_worse) = (better[0] / better[1], worse[0] / worse[1]);
    // 12 800 pulls on each side: standard error 0.003.
    assert!(
        (hit_better - 0.9).abs() < 0.015 && (hit_worse - 0.1).abs() < 0.015,
        "{hit_better} {hit_worse}"
    );
}

#[test]
fn restless_arms_drift_inside_the_unit_interval() {
    let mut env = registry::make("bandit-restless:len=50,volatility=0.5", 16).unwrap();
    env.reset(4).unwrap();
    let mut first_regrets = Vec::new();
    for _ in 0..200 {
        let s = env.step(&[0; 16]).unwrap();
        // The regret of arm 1 is max(p1, 1 − p1) − p1 = max(0, 1 − 2 p1) ∈ [0, 1].
        assert!(s.regret.unwrap().iter().all(|g| (0.0..=1.0).contains(g)));
        first_regrets.push(s.regret.unwrap()[0]);
    }
    first_regrets.dedup();
    assert!(
        first_regrets.len() > 50,
        "arm 1 moves within an episode: {first_regrets:?}"
    );
}

/// Pulls arm 11 first, then the arm whose index its payoff reveals.
struct Reveal;

impl Policy for Reveal {
    fn act(&mut self, obs: &[f32], actions: &mut [u32]) {
        for (action, obs) in actions.iter_mut().zip(obs.chunks(13)) {
            *action = match obs[..11].iter().position(|&x| x == 1.0) {
                None => 10,
                Some(10) => (obs[11] * 10.0).round() as u32 - 1,
                Some(arm) => arm as u32,
            };
        }
    }
}

/// Ignores arm 11: tries the first ten arms in a row-specific random order until one pays 5.
struct Search {
    order: Vec<[u32; 10]>,
    tried: Vec<usize>,
}

impl Policy for Search {
    fn act(&mut self, obs: &[f32], actions: &mut [u32]) {
        for (row, (action, obs)) in actions.iter_mut().zip(obs.chunks(13)).enumerate() {
            let prev = obs[..11].iter().position(|&x| x == 1.0);
            *action = match prev {
                Some(arm) if obs[11] == 5.0 => arm as u32,
                None => {
                    self.tried[row] = 1;
                    self.order[row][0]
                }
                Some(_) => {
                    self.tried[row] += 1;
                    self.order[row][self.tried[row] - 1]
                }
            };
        }
    }
}

#[test]
fn informative_arm_reveals_the_target() {
    let mut env = registry::make("bandit-informative-11", 10).unwrap();
    env.reset(1).unwrap();
    let s = env.step(&[10; 10]).unwrap();
    let mut targets = Vec::new();
    for row in 0..10 {
        let hint = s.rewards[row];
        let target = (hint * 10.0).round() as usize - 1;
        assert!(
            (hint - 0.1 * (target + 1) as f32).abs() < 1e-6 && target < 10,
            "{hint}"
        );
        assert_eq!(s.regret.unwrap()[row], 5.0 - hint);
        let mut want = [0.0; 13];
        (want[10], want[11], want[12]) = (1.0, hint, 0.2);
        assert_eq!(s.obs_row(row), &want[..]);
        targets.push(target);
    }
    let actions: Vec<u32> = targets.iter().map(|&t| t as u32).collect();
    let s = env.step(&actions).unwrap();
    assert!(s.rewards.iter().all(|&r| r == 5.0) && s.regret.unwrap().iter().all(|&g| g == 0.0));
    let others: Vec<u32> = targets.iter().map(|&t| ((t + 1) % 10) as u32).collect();
    let s = env.step(&others).unwrap();
    assert!(s.rewards.iter().all(|&r| r == 1.0) && s.regret.unwrap().iter().all(|&g| g == 4.0));
}

#[test]
fn informative_returns_with_and_without_the_hint() {
    let (b, episodes) = (100, 20_000);
    let mut env = registry::make("bandit-informative-11", b).unwrap();
    let reveal = run_episodes(&mut *env, &mut Reveal, episodes, 2).unwrap();
    // 20 + 0.1 (target + 1), target uniform over 0..10: mean 20.55, sd 0.287.
    let r = reveal.episode_return;
    assert!(
        (r.mean - 20.55).abs() < 3.0 * r.std_err.unwrap() + 1e-9,
        "{r:?}"
    );
    assert!(r.std_err.unwrap() > 0.0);
    let mut rng = plastic_envs::rng::stream(77, 0);
    let order = (0..b)
        .map(|_| {
            let mut arms: [u32; 10] = std::array::from_fn(|a| a as u32);
            for i in (1..10).rev() {
                arms.swap(i, rand::Rng::random_range(&mut rng, 0..=i));
            }
            arms
        })
        .collect();
    let mut search = Search {
        order,
        tried: vec![0; b],
    };
    let blind = run_episodes(&mut *env, &mut search, episodes, 3)
        .unwrap()
        .episode_return;
    eprintln!("informative-11 returns: reveal {r:?}, search {blind:?}");
    assert!(
        (blind.mean - 11.0).abs() < 3.0 * blind.std_err.unwrap(),
        "{blind:?}"
    );
}

#[test]
fn policy_names_and_refusals_are_explained() {
    let independent = config("bandit-independent");
    let err = make_policy("oracle", &independent, 1, 0).err().unwrap();
    assert!(matches!(err, PolicyError::Unknown { .. }));
    let msg = err.to_string();
    assert!(
        config("bandit-independent")
            .policy_names()
            .iter()
            .all(|name| msg.contains(name)),
        "{msg}"
    );
    for id in [
        "bandit-restless",
        "bandit-independent:arms=3",
        "bandit-informative-11",
    ] {
        let msg = make_policy("bayes", &config(id), 1, 0)
            .err()
            .expect(id)
            .to_string();
        assert!(msg.contains("bayes") && msg.contains("two-armed"), "{msg}");
    }
    let too_long = make_policy("bayes", &config("bandit-independent:len=201"), 1, 0);
    let msg = too_long.err().unwrap().to_string();
    assert!(msg.contains("len <= 200"), "{msg}");
    for name in config("bandit-independent").policy_names() {
        let msg = make_policy(name, &config("bandit-informative-11"), 1, 0)
            .err()
            .unwrap()
            .to_string();
        assert!(
            msg.contains(&format!("`{name}`")) && msg.contains("not Bernoulli"),
            "{msg}"
        );
    }
}

#[test]
fn every_policy_plays_every_family_it_accepts() {
    let mut played = 0;
    for family in FAMILIES {
        let id = format!("{}:len=6", family.name);
        let config = config(&id);
        for name in std::iter::once(&"random").chain(config.policy_names()) {
            let Ok(mut policy) = make_policy(name, &config, 4, 1) else {
                continue;
            };
            let mut env = registry::make(&id, 4).unwrap();
            let stats = run_episodes(&mut *env, &mut *policy, 8, 1).unwrap();
            assert_eq!(
                stats.episode_len.mean,
                config.horizon() as f64,
                "{name} on {id}"
            );
            played += 1;
        }
    }
    // random everywhere; greedy, thompson, ucb1, gittins, win-stay on all seven Bernoulli
    // families; bayes on the five two-armed stationary ones.
    assert_eq!(played, 8 + 5 * 7 + 5);
}

#[test]
fn policies_start_afresh_each_episode() {
    // Greedy on posterior means: after five wins on arm 2 it stays there, but after a new
    // episode's single loss on arm 2 it must prefer the untried arm 1.
    let mut policy = make_policy("greedy", &config("bandit-independent"), 1, 0).unwrap();
    let mut action = [0];
    policy.act(&[0.0, 0.0, 0.0, 0.0], &mut action);
    for t in 1..=5 {
        policy.act(&[0.0, 1.0, 1.0, t as f32 / 100.0], &mut action);
        assert_eq!(action, [1]);
    }
    policy.act(&[0.0, 0.0, 0.0, 0.0], &mut action);
    policy.act(&[0.0, 1.0, 0.0, 0.01], &mut action);
    assert_eq!(action, [0]);
}

#[test]
fn same_seed_for_policy_and_env_is_safe() {
    // Policies salt their seed: a random policy seeded like the env does not mirror its draws.
    let id = "bandit-dependent-hard";
    let shared = regret_of("random", id, 4_000, 5);
    assert!(
        (shared.mean - 10.0).abs() < 3.0 * shared.std_err.unwrap(),
        "{shared:?}"
    );
}

#[test]
fn on_switching_arms_win_stay_beats_random_and_the_oracle_beats_both() {
    let id = "bandit-switching";
    let (episodes, seed) = (2_000, 11);
    let mean_return = |policy: &str| {
        let mut env = registry::make(id, BATCH).unwrap();
        let mut policy = make_policy(policy, &config(id), BATCH, seed).unwrap();
        run_episodes(env.as_mut(), policy.as_mut(), episodes, seed)
            .unwrap()
            .episode_return
            .mean
    };
    let (random, win_stay) = (mean_return("random"), mean_return("win-stay"));
    let oracle = config(id).oracle_returns(episodes, seed).unwrap();
    let oracle = oracle.iter().sum::<f64>() / episodes as f64;
    // With p1 ~ U[0, 1]: random earns 50 of 100 pulls; win-stay, on each arm for 1 / (1 − p_a)
    // pulls on average, earns p1² + (1 − p1)² per pull, 2/3 in the mean (67); the oracle
    // max(p1, 1 − p1), 3/4 (75). Standard errors are below 0.5 at 2,000 episodes.
    assert!((random - 50.0).abs() < 2.0, "random {random}");
    assert!(
        win_stay > random + 10.0,
        "win-stay {win_stay}, random {random}"
    );
    assert!(
        oracle > win_stay + 4.0,
        "oracle {oracle}, win-stay {win_stay}"
    );
}
