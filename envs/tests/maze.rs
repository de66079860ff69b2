//! The maze against docs/maze.md, through the public API; the invariants every environment
//! keeps are in `families.rs`.
use plastic_envs::maze::{oracle_returns, Layout, Maze, MazeConfig, NUM_ACTIONS, OBS_DIM};
use plastic_envs::rollout::{run_episodes, Estimate};
use plastic_envs::{GridEnv, RandomPolicy, VecEnv};
use proptest::prelude::*;

const UP: u32 = 0;
const DOWN: u32 = 1;
const LEFT: u32 = 2;
const RIGHT: u32 = 3;

fn maze(config: MazeConfig, b: usize, seed: u64) -> Maze {
    let mut m = Maze::new(config, b);
    m.reset(seed).unwrap();
    m
}

fn moved(cell: (usize, usize), action: u32) -> (usize, usize) {
    match action {
        UP => (cell.0 - 1, cell.1),
        DOWN => (cell.0 + 1, cell.1),
        LEFT => (cell.0, cell.1 - 1),
        RIGHT => (cell.0, cell.1 + 1),
        _ => unreachable!("the maze has four actions"),
    }
}

/// The first action of a shortest path from the agent to its reward cell.
fn towards_reward(m: &Maze, row: usize) -> u32 {
    let dist = m.layout().distances_to(m.goal_cell(row));
    let n = m.layout().size();
    let here = m.agent_cell(row);
    (0..NUM_ACTIONS as u32)
        .min_by_key(|&a| {
            let (r, c) = moved(here, a);
            dist[r * n + c]
        })
        .unwrap()
}

#[test]
fn layout_of_size_13_has_24_pillars_and_97_free_cells() {
    let layout = Layout::new(13);
    assert_eq!(layout.free_cells().len(), 97);
    let pillars = (1..12)
        .flat_map(|r| (1..12).map(move |c| (r, c)))
        .filter(|&(r, c)| layout.is_wall(r, c))
        .count();
    assert_eq!(pillars, 24);
    assert!(!layout.is_wall(6, 6), "the centre is always free");
    assert!(layout.is_wall(2, 2) && layout.is_wall(4, 6) && !layout.is_wall(1, 2));
    for i in 0..13 {
        assert!(
            layout.is_wall(0, i)
                && layout.is_wall(12, i)
                && layout.is_wall(i, 0)
                && layout.is_wall(i, 12)
        );
    }
}

#[test]
fn first_observation_matches_the_spec() {
    let m = maze(MazeConfig::default(), 2, 7);
    let mut m2 = Maze::new(MazeConfig::default(), 2);
    let obs = m2.reset(7).unwrap();
    assert_eq!(obs.len(), 2 * OBS_DIM);
    assert_eq!(m.agent_cell(0), (6, 6));
    // Around the centre (6,6): pillars at the four diagonals (5,5),(5,7),(7,5),(7,7) are odd
    // rows/cols, so free; (6,5),(6,7),(5,6),(7,6) are free too. Everything around is free.
    assert_eq!(&obs[..9], &[0.0; 9]);
    assert_eq!(obs[9], 1.0);
    assert_eq!(obs[10], 0.0);
    assert_eq!(obs[11], 0.0);
    assert_eq!(&obs[12..16], &[0.0; 4]);
}

#[test]
fn moves_walls_and_penalty() {
    let config = MazeConfig {
        wall_penalty: 0.5,
        ..MazeConfig::default()
    };
    let path = [UP, LEFT, UP];
    // A seed whose reward cell is off the scripted path, so only walls and moves matter here.
    let seed = (0..)
        .find(|&s| ![(5, 6), (5, 5), (4, 5)].contains(&maze(config.clone(), 1, s).goal_cell(0)))
        .unwrap();
    let mut m = maze(config, 1, seed);
    let mut cell = m.agent_cell(0);
    for (i, &a) in path.iter().enumerate() {
        let step = m.step(&[a]).unwrap();
        let expected = moved(cell, a);
        // (6,6) up -> (5,6) free; left -> (5,5) free; up -> (4,5) free.
        assert_eq!(step.rewards[0], 0.0);
        let obs = step.obs.to_vec();
        cell = expected;
        assert_eq!(m.agent_cell(0), cell);
        assert_eq!(obs[10], (i + 1) as f32 / 200.0);
        let mut one_hot = [0.0; 4];
        one_hot[a as usize] = 1.0;
        assert_eq!(&obs[12..16], &one_hot);
    }
    // From (4,5): left is the pillar (4,4).
    assert_eq!(cell, (4, 5));
    let step = m.step(&[LEFT]).unwrap();
    assert_eq!(step.rewards[0], -0.5);
    assert_eq!(step.obs[11], -0.5);
    assert_eq!(m.agent_cell(0), (4, 5));
    // The neighbourhood of (4,5): row 3 cols 4..6 = free,free,free; row 4 = wall,.,wall; row 5 free.
    let obs = m.step(&[LEFT]).unwrap().obs.to_vec();
    assert_eq!(&obs[..9], &[0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
}

#[test]
fn reward_pays_and_teleports_never_onto_the_reward() {
    let mut m = maze(MazeConfig::default(), 1, 11);
    let mut found = 0;
    for _ in 0..199 {
        let reward = m.goal_cell(0);
        let a = towards_reward(&m, 0);
        let entering = moved(m.agent_cell(0), a) == reward;
        let step = m.step(&[a]).unwrap();
        let r = step.rewards[0];
        if entering {
            found += 1;
            assert_eq!(r, 10.0);
            assert_eq!(step.obs[11], 10.0);
            assert_ne!(m.agent_cell(0), reward, "teleported onto the reward cell");
            assert!(!m.layout().is_wall(m.agent_cell(0).0, m.agent_cell(0).1));
            assert_eq!(
                m.goal_cell(0),
                reward,
                "the reward stays put within an episode"
            );
        } else {
            assert_eq!(r, 0.0);
        }
    }
    assert!(
        found >= 10,
        "an agent walking shortest paths found the reward only {found} times"
    );
}

#[test]
fn reward_cell_is_uniform_over_free_cells_but_the_centre() {
    let b = 20_000;
    let m = maze(MazeConfig::default(), b, 5);
    let free = m.layout().free_cells();
    let mut counts = std::collections::HashMap::new();
    for row in 0..b {
        let cell = m.goal_cell(row);
        assert_ne!(cell, (6, 6));
        *counts.entry(cell).or_insert(0usize) += 1;
    }
    assert_eq!(
        counts.len(),
        free.len() - 1,
        "every free cell but the centre gets drawn"
    );
    let expected = b as f64 / 96.0;
    let chi2: f64 = counts
        .values()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    // 95 degrees of freedom: the 99.9% quantile is about 143.
    assert!(chi2 < 143.0, "chi-square {chi2}");
}

#[test]
fn episode_truncates_after_len_and_auto_resets() {
    let config = MazeConfig {
        len: 5,
        ..MazeConfig::default()
    };
    let mut m = maze(config, 3, 1);
    let first_rewards: Vec<_> = (0..3).map(|r| m.goal_cell(r)).collect();
    for t in 1..=5 {
        let step = m.step(&[DOWN, DOWN, DOWN]).unwrap();
        assert!(
            step.terminated.iter().all(|&d| !d),
            "the maze never terminates"
        );
        assert_eq!(step.truncated.iter().all(|&d| d), t == 5);
        if t == 5 {
            for row in 0..3 {
                assert_eq!(
                    step.final_obs_row(row)[10],
                    1.0,
                    "final observation has t/T = 1"
                );
                assert_eq!(step.final_obs_row(row)[12 + DOWN as usize], 1.0);
                let obs = step.obs_row(row);
                assert_eq!((obs[10], obs[11]), (0.0, 0.0));
                assert_eq!(&obs[12..16], &[0.0; 4]);
            }
        }
    }
    assert!(
        (0..3).all(|r| m.agent_cell(r) == (6, 6)),
        "new episodes start at the centre"
    );
    let new_rewards: Vec<_> = (0..3).map(|r| m.goal_cell(r)).collect();
    assert_ne!(
        first_rewards, new_rewards,
        "a new episode draws new reward cells"
    );
}

#[test]
fn random_policy_scores_about_5_4() {
    // docs/maze.md: about 5.4 per episode. 2,000 episodes give a standard error near 0.1.
    let mut env = Maze::new(MazeConfig::default(), 200);
    let mut policy = RandomPolicy::new(NUM_ACTIONS, 200, 99);
    let stats = run_episodes(&mut env, &mut policy, 2000, 1).unwrap();
    let r = stats.episode_return;
    assert!(
        (r.mean - 5.4).abs() < 0.3 + 3.0 * r.std_err.unwrap(),
        "random policy: {r:?}"
    );
}

#[test]
fn oracle_scores_about_269() {
    let r = Estimate::of(&oracle_returns(&MazeConfig::default(), 500, 2));
    assert!(
        (r.mean - 269.0).abs() < 3.0 + 3.0 * r.std_err.unwrap(),
        "oracle: {r:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn invariants_hold_for_any_actions(
        seed in any::<u64>(),
        size in prop::sample::select(vec![5usize, 7, 9, 13]),
        actions in prop::collection::vec((0u32..4, 0u32..4), 1..300),
    ) {
        let config = MazeConfig { size, len: 50, reward: 10.0, wall_penalty: 1.0 };
        let mut m = maze(config, 2, seed);
        let layout = m.layout().clone();
        for (i, &(a0, a1)) in actions.iter().enumerate() {
            let before: Vec<_> = (0..2).map(|r| (m.agent_cell(r), m.goal_cell(r))).collect();
            let step = m.step(&[a0, a1]).unwrap();
            let (rewards, obs) = (step.rewards.to_vec(), step.obs.to_vec());
            let ended = step.truncated[0];
            prop_assert_eq!(ended, (i + 1) % 50 == 0);
            for (row, &a) in [a0, a1].iter().enumerate() {
                let (agent, reward_cell) = before[row];
                let target = moved(agent, a);
                let now = m.agent_cell(row);
                prop_assert!(!layout.is_wall(now.0, now.1));
                prop_assert!(m.goal_cell(row) != layout.centre());
                let expected = if layout.is_wall(target.0, target.1) {
                    -1.0
                } else if target == reward_cell {
                    10.0
                } else {
                    0.0
                };
                prop_assert_eq!(rewards[row], expected);
                if !ended {
                    prop_assert!(now != m.goal_cell(row), "agent stands on the reward");
                    match expected {
                        -1.0 => prop_assert_eq!(now, agent),
                        0.0 => prop_assert_eq!(now, target),
                        _ => prop_assert!(now != target),
                    }
                    let o = &obs[row * OBS_DIM..(row + 1) * OBS_DIM];
                    for (k, &seen) in o[..9].iter().enumerate() {
                        let wall = layout.is_wall(now.0 + k / 3 - 1, now.1 + k % 3 - 1);
                        prop_assert_eq!(seen, if wall { 1.0 } else { 0.0 });
                    }
                    prop_assert_eq!(o[9], 1.0);
                    prop_assert_eq!(o[11], expected);
                    prop_assert_eq!(o[12..16].iter().sum::<f32>(), 1.0);
                    prop_assert_eq!(o[12 + a as usize], 1.0);
                }
            }
        }
    }
}
