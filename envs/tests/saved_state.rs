//! `save_state` / `load_state`: a batch restored mid-episode continues exactly as the one it
//! was saved from, for the maze and every bandit family; a state that does not fit is refused.
use plastic_envs::registry::make;
use plastic_envs::rng;
use plastic_envs::VecEnv;
use rand::Rng as _;

const IDS: [&str; 8] = [
    "maze:size=7,len=9",
    "bandit-independent:arms=3,len=7",
    "bandit-dependent-uniform:len=7",
    "bandit-dependent-easy:len=7",
    "bandit-dependent-medium:len=7",
    "bandit-dependent-hard:len=7",
    "bandit-restless:len=7",
    "bandit-informative-11",
];

/// Everything `n` steps with random actions (drawn from `seed`) show the agent.
fn trace(env: &mut dyn VecEnv, n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rng::stream(seed, 0);
    let mut out = Vec::new();
    for _ in 0..n {
        let actions: Vec<u32> = (0..env.num_envs())
            .map(|_| rng.random_range(0..env.spec().num_actions as u32))
            .collect();
        let s = env.step(&actions).unwrap();
        out.extend(s.obs);
        out.extend(s.rewards);
        out.extend(
            s.terminated
                .iter()
                .chain(s.truncated)
                .map(|&d| f32::from(u8::from(d))),
        );
        out.extend(s.regret.unwrap_or_default());
        for row in (0..s.rewards.len()).filter(|&r| s.done(r)) {
            out.extend(s.final_obs_row(row));
        }
    }
    out
}

#[test]
fn a_restored_batch_continues_exactly() {
    for id in IDS {
        let mut saved = make(id, 3).unwrap();
        saved.reset(11).unwrap();
        trace(saved.as_mut(), 3, 1);
        let state = saved
            .save_state()
            .expect("native environments save their state");
        let expected = trace(saved.as_mut(), 20, 2);

        // Another seed, another point in its episode: loading must overwrite all of it.
        let mut restored = make(id, 3).unwrap();
        restored.reset(99).unwrap();
        trace(restored.as_mut(), 1, 3);
        restored.load_state(&state).unwrap();
        assert_eq!(trace(restored.as_mut(), 20, 2), expected, "{id}");

        // Never reset: loading is all it needs.
        let mut fresh = make(id, 3).unwrap();
        fresh.load_state(&state).unwrap();
        assert_eq!(trace(fresh.as_mut(), 20, 2), expected, "{id}");
    }
}

#[test]
fn a_state_that_does_not_fit_is_refused_and_changes_nothing() {
    for id in IDS {
        let mut small = make(id, 2).unwrap();
        small.reset(5).unwrap();
        let state = small.save_state().unwrap();

        let mut env = make(id, 3).unwrap();
        env.reset(7).unwrap();
        let before = env.save_state().unwrap();
        let err = env.load_state(&state).unwrap_err().to_string();
        assert!(err.contains("needs 3"), "{id}: {err}");
        let damaged = serde_json::json!({ "t": 0 });
        let err = env.load_state(&damaged).unwrap_err().to_string();
        assert!(
            err.contains("does not fit") && err.contains("missing field"),
            "{id}: {err}"
        );
        assert_eq!(env.save_state().unwrap(), before, "{id}");
    }
}
