//! The Gymnasium bridge against the real gymnasium from scripts/setup.sh.
#![cfg(feature = "gym")]

use plastic_envs::registry::make;
use plastic_envs::{EnvError, VecEnv};
use pyo3::prelude::*;

fn env(id: &str, num_envs: usize) -> Box<dyn VecEnv> {
    make(id, num_envs).unwrap_or_else(|e| panic!("{id}: {e}"))
}

fn error(id: &str) -> String {
    match make(id, 2) {
        Ok(_) => panic!("`{id}` should not build"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn cartpole_steps_resets_and_keeps_termination_apart_from_truncation() {
    let mut e = env("gym:CartPole-v1", 3);
    let spec = e.spec().clone();
    assert_eq!(
        (spec.obs_dim, spec.num_actions, spec.episode_len),
        (4, 2, None)
    );
    assert_eq!(spec.id, "gym:CartPole-v1");
    let first = e.reset(7).unwrap().to_vec();
    assert_eq!(e.reset(7).unwrap(), &first[..], "same seed, same start");
    assert_ne!(
        e.reset(8).unwrap(),
        &first[..],
        "another seed, another start"
    );
    e.reset(7).unwrap();
    // Pushing left all the time topples the pole within a few dozen steps: a termination.
    let mut ended_at = None;
    for t in 1..=100 {
        let step = e.step(&[0, 0, 0]).unwrap();
        assert_eq!(step.rewards, [1.0; 3]);
        assert!(!step.truncated.contains(&true));
        if step.terminated[0] {
            // The row was reset within the step: a fresh start, and the end in final_obs.
            assert!(
                step.obs_row(0).iter().all(|x| x.abs() <= 0.05),
                "{:?}",
                step.obs_row(0)
            );
            assert!(
                step.final_obs_row(0)[2].abs() > 0.2,
                "{:?}",
                step.final_obs_row(0)
            );
            ended_at = Some(t);
            break;
        }
    }
    assert!(ended_at.is_some_and(|t| t < 100), "{ended_at:?}");
}

#[test]
fn truncation_hands_over_the_observation_the_episode_was_cut_on() {
    let mut short = env("gym:CartPole-v1?max_episode_steps=5", 2);
    let mut long = env("gym:CartPole-v1", 2);
    short.reset(3).unwrap();
    long.reset(3).unwrap();
    let actions = [[0, 1], [1, 0], [0, 1], [1, 0], [0, 1]];
    for (t, a) in actions.iter().enumerate() {
        let expected = long.step(a).unwrap().obs.to_vec();
        let step = short.step(a).unwrap();
        if t < 4 {
            assert_eq!(step.obs, &expected[..]);
            assert!(!step.done(0) && !step.done(1));
        } else {
            assert_eq!(step.truncated, [true, true]);
            assert_eq!(step.terminated, [false, false]);
            assert_eq!(step.final_obs, &expected[..]);
            assert_ne!(step.obs, &expected[..], "rows were reset");
        }
    }
}

#[test]
fn discrete_observations_are_one_hot_and_keyword_arguments_reach_the_env() {
    let mut e = env("gym:FrozenLake-v1?is_slippery=false", 2);
    assert_eq!((e.spec().obs_dim, e.spec().num_actions), (16, 4));
    let obs = e.reset(0).unwrap();
    assert_eq!(obs[0], 1.0);
    assert_eq!(obs.iter().sum::<f32>(), 2.0);
    // Not slippery: moving right (action 2) always lands on cell 1.
    let step = e.step(&[2, 2]).unwrap();
    assert_eq!(step.obs_row(0)[1], 1.0);
    assert_eq!(step.obs_row(1)[1], 1.0);
    let big = env("gym:FrozenLake-v1?map_name=8x8", 1);
    assert_eq!(big.spec().obs_dim, 64);
}

#[test]
fn actions_are_checked_before_python_sees_them() {
    let mut e = env("gym:CartPole-v1", 2);
    assert!(matches!(e.step(&[0, 0]), Err(EnvError::NotReset)));
    e.reset(0).unwrap();
    assert!(matches!(
        e.step(&[0, 2]),
        Err(EnvError::InvalidAction { .. })
    ));
    assert!(matches!(e.step(&[0]), Err(EnvError::ActionCount { .. })));
    e.step(&[1, 0]).unwrap();
}

#[test]
fn bad_ids_and_unsupported_spaces_are_clear_errors() {
    let msg = error("gym:CartPol-v1");
    assert!(
        msg.contains("gym:CartPol-v1") && msg.contains("CartPole"),
        "{msg}"
    );
    let msg = error("gym:Pendulum-v1");
    assert!(msg.contains("continuous action space"), "{msg}");
    let msg = error("gym:Blackjack-v1");
    assert!(
        msg.contains("observation space") && msg.contains("Discrete"),
        "{msg}"
    );
    let msg = error("gym:CartPole-v1?colour=red");
    assert!(msg.contains("colour"), "{msg}");
    // No time limit: an evaluation could wait for ever. The message says how to set one.
    let msg = error("gym:CliffWalking-v1?is_slippery=false");
    assert!(
        msg.contains("no time limit")
            && msg.contains("'gym:CliffWalking-v1?is_slippery=false&max_episode_steps=N'"),
        "{msg}"
    );
    let limited = env(
        "gym:CliffWalking-v1?is_slippery=false&max_episode_steps=50",
        1,
    );
    assert_eq!(limited.spec().num_actions, 4);
}

#[test]
fn an_exception_inside_step_is_an_error_with_its_traceback() {
    Python::attach(|py| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
        py.import("sys")
            .and_then(|sys| sys.getattr("path"))
            .and_then(|path| path.call_method1("insert", (0, dir)))
            .unwrap();
    });
    let mut e = env("gym:plastic_test_envs:plastic_test/Raising-v0", 2);
    e.reset(0).unwrap();
    e.step(&[0, 0]).unwrap();
    let msg = e.step(&[0, 1]).err().unwrap().to_string();
    assert!(
        msg.contains("step()")
            && msg.contains("RuntimeError: the reactor overheated")
            && msg.contains("plastic_test_envs.py"),
        "{msg}"
    );
    assert!(matches!(e.step(&[0, 0]), Err(EnvError::NotReset)));
}

#[test]
fn gymnasium_environments_pass_the_checker() {
    for id in ["gym:CartPole-v1", "gym:FrozenLake-v1?is_slippery=true"] {
        plastic_envs::testing::check_vec_env(id).unwrap();
    }
}
