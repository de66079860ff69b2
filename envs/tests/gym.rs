//! The Gymnasium bridge against the real gymnasium from scripts/setup.sh.
#![cfg(feature = "gym")]

use plastic_envs::registry::make;
use plastic_envs::{EnvError, VecEnv};

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

/// Puts the test environments of tests/python on the embedded interpreter's path.
fn add_test_envs() {
    // The bridge's own insertion, which starts the interpreter first: a test that begins here
    // passes when it runs alone too.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
    plastic_envs::gym::use_python_path(&[dir.into()]).unwrap();
}

#[test]
fn box_actions_are_clipped_per_component_and_reach_the_env_in_its_shape() {
    add_test_envs();
    let mut e = env("gym:plastic_test_envs:plastic_test/Echo-v0", 2);
    let space = e.spec().action_box.clone().expect("a Box action space");
    assert_eq!(space.shape, [2, 2]);
    assert_eq!(
        (space.low, space.high),
        (vec![-1.0, 0.0, -2.0, 0.0], vec![1.0, 1.0, 2.0, 3.0])
    );
    assert_eq!(e.spec().num_actions, 4);
    e.reset(0).unwrap();
    assert!(matches!(e.step(&[0, 0]), Err(EnvError::ActionKind { .. })));
    let step = e
        .step_continuous(&[5.0, -5.0, 0.5, 2.0, -0.5, 0.25, -9.0, 9.0])
        .unwrap();
    assert_eq!(step.obs, [1.0, 0.0, 0.5, 2.0, -0.5, 0.25, -2.0, 3.0]);
    assert_eq!(step.rewards, [3.5, 0.75]);
    assert!(matches!(
        e.step_continuous(&[0.0; 4]),
        Err(EnvError::ActionCount {
            expected: 8,
            got: 4
        })
    ));
    let nan = e.step_continuous(&[0.0, 0.0, 0.0, 0.0, 0.0, f32::NAN, 0.0, 0.0]);
    assert!(
        matches!(nan, Err(EnvError::NanAction { row: 1 })),
        "{:?}",
        nan.err()
    );
    // Pendulum's torque: one component in [-2, 2].
    let pendulum = env("gym:Pendulum-v1", 1);
    assert_eq!(pendulum.spec().action_box.as_ref().unwrap().high, [2.0]);
    // Discrete environments refuse continuous actions.
    let mut cartpole = env("gym:CartPole-v1", 1);
    cartpole.reset(0).unwrap();
    assert!(matches!(
        cartpole.step_continuous(&[0.0]),
        Err(EnvError::ActionKind { .. })
    ));
}

#[test]
fn unflat_observations_and_unbounded_actions_name_the_fix() {
    add_test_envs();
    let msg = error("gym:plastic_test_envs:plastic_test/Unbounded-v0");
    assert!(
        msg.contains("unbounded") && msg.contains("RescaleAction"),
        "{msg}"
    );
    let msg = error("gym:plastic_test_envs:plastic_test/Film-v0");
    assert!(
        msg.contains("rank 4")
            && msg.contains("image of rank 3")
            && msg.contains("'wrappers=FlattenObservation'"),
        "{msg}"
    );
    let msg = error("gym:plastic_test_envs:plastic_test/Dictionary-v0");
    assert!(
        msg.contains("dictionary with an image")
            && msg.contains("'wrappers=minigrid.wrappers.ImgObsWrapper'"),
        "{msg}"
    );
    let msg = error("gym:CartPole-v1?wrappers=NoSuchWrapper");
    assert!(msg.contains("'NoSuchWrapper'"), "{msg}");
}

#[test]
fn image_observations_come_with_their_layout() {
    add_test_envs();
    let mut e = env("gym:plastic_test_envs:plastic_test/Pictures-v0", 2);
    let image = e.spec().image.expect("an image");
    assert_eq!(
        (
            image.height,
            image.width,
            image.channels,
            image.channels_first,
            image.uint8
        ),
        (4, 4, 3, false, true)
    );
    assert_eq!(e.spec().obs_dim, 48);
    e.reset(0).unwrap();
    assert_eq!(e.step(&[0, 1]).unwrap().obs.len(), 2 * 48);
    // Flattened, the same values are a vector again.
    let flat = env(
        "gym:plastic_test_envs:plastic_test/Pictures-v0?wrappers=FlattenObservation",
        1,
    );
    assert_eq!(flat.spec().image, None);
}

#[test]
fn wrappers_named_in_the_id_apply_in_order() {
    add_test_envs();
    let mut e = env(
        "gym:plastic_test_envs:plastic_test/Pictures-v0?wrappers=FlattenObservation",
        2,
    );
    assert_eq!(e.spec().obs_dim, 48);
    e.reset(0).unwrap();
    e.step(&[0, 0]).unwrap();
    // A dotted name imports its module; the first named is innermost (Gymnasium's own
    // TransformObservation would fail on the image were it applied after flattening).
    let e = env(
        "gym:plastic_test_envs:plastic_test/Dictionary-v0?wrappers=plastic_test_envs.ImageOnly,FlattenObservation",
        1,
    );
    assert_eq!(e.spec().obs_dim, 12);
}

#[test]
fn multi_discrete_and_multi_binary_actions_name_joint_discrete_which_steps_them() {
    add_test_envs();
    for (id, size) in [("Dial-v0", 6), ("Switches-v0", 8)] {
        let msg = error(&format!("gym:plastic_test_envs:plastic_test/{id}"));
        assert!(
            msg.contains("is not supported") && msg.contains("'wrappers=JointDiscrete'"),
            "{msg}"
        );
        let joint = format!("gym:plastic_test_envs:plastic_test/{id}?wrappers=JointDiscrete");
        let mut e = env(&joint, 2);
        assert_eq!(e.spec().num_actions, size, "{id}");
        assert!(e.spec().action_box.is_none(), "{id}");
        e.reset(0).unwrap();
        // The environments show the action they received; row-major, the last component
        // fastest, Dial's first component counted from 1.
        let step = e.step(&[0, 5]).unwrap();
        let (first, second) = match id {
            "Dial-v0" => (vec![1.0, 0.0], vec![3.0, 1.0]),
            _ => (vec![0.0, 0.0, 0.0], vec![1.0, 0.0, 1.0]),
        };
        assert_eq!(
            (step.obs_row(0), step.obs_row(1)),
            (&first[..], &second[..])
        );
        assert!(
            e.step(&[0, size as u32]).is_err(),
            "{id}: beyond the joint actions"
        );
    }
    let msg = error("gym:CartPole-v1?wrappers=JointDiscrete");
    assert!(msg.contains("not Discrete(2)"), "{msg}");
}

#[test]
fn a_discrete_space_with_a_start_is_stepped_with_its_own_values() {
    add_test_envs();
    let mut e = env("gym:plastic_test_envs:plastic_test/Knob-v0", 3);
    assert_eq!((e.spec().num_actions, e.spec().action_start), (3, -1));
    assert_eq!(e.spec().env_action(2), 1);
    e.reset(0).unwrap();
    // Knob shows the action it received: the agent's indices 0, 1, 2 are -1, 0, 1 there.
    let step = e.step(&[0, 1, 2]).unwrap();
    let shown: Vec<f32> = (0..3).flat_map(|row| step.obs_row(row).to_vec()).collect();
    assert_eq!(shown, [-1.0, 0.0, 1.0]);
    assert!(e.step(&[0, 3, 0]).is_err(), "beyond the space");
}

#[test]
fn mask_velocity_zeroes_cartpoles_velocities_and_refuses_unknown_environments() {
    let mut masked = env("gym:CartPole-v1?wrappers=MaskVelocity", 2);
    let mut plain = env("gym:CartPole-v1", 2);
    assert_eq!(masked.spec().obs_dim, 4);
    masked.reset(3).unwrap();
    plain.reset(3).unwrap();
    for _ in 0..5 {
        let seen = masked.step(&[1, 0]).unwrap().obs_row(0).to_vec();
        let full = plain.step(&[1, 0]).unwrap().obs_row(0).to_vec();
        // Position and angle as they are; the cart's and the pole's velocities hidden.
        assert_eq!([seen[0], seen[2]], [full[0], full[2]]);
        assert_eq!([seen[1], seen[3]], [0.0, 0.0], "{full:?}");
        assert!(full[1] != 0.0 && full[3] != 0.0, "{full:?}");
    }
    add_test_envs();
    let msg = error("gym:plastic_test_envs:plastic_test/Pictures-v0?wrappers=MaskVelocity");
    assert!(
        msg.contains("'MaskVelocity'")
            && msg.contains("CartPole-v1")
            && msg.contains("Pictures-v0"),
        "{msg}"
    );
}

#[test]
fn an_exception_inside_step_is_an_error_with_its_traceback() {
    add_test_envs();
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
