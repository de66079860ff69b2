//! [`check_vec_env`]: the invariants every environment of `plastic` keeps, checked on any id,
//! as Gymnasium's environment checker does for its own. Each family's tests run it; the
//! family-specific rules (what an observation holds, how rewards are paid) stay in them.
use crate::{registry, EnvError, Environment, Step, VecEnv};

/// Batch sizes compared for batch-size independence; row `ROWS - 1` exists in both.
const SMALL: usize = 3;
const LARGE: usize = 5;

/// Checks environment `id` and returns the first invariant it breaks, named:
/// - the canonical id parses back to the same environment;
/// - stepping before `reset`, a wrong number of actions and an action out of range are errors
///   that change nothing (the batch then continues as one that never saw them);
/// - observations, rewards and final observations are finite;
/// - the same seed gives the same episodes, and row `i`'s episodes do not depend on the batch
///   size;
/// - an episode that ends resets within the same step: it lasts at most the spec's
///   `episode_len`, its row then shows the next episode's first observation, and the one it
///   ended on is in `final_obs` (the two differ at some of the episode ends);
/// - where the environment saves its state, a restored batch continues exactly, and a state
///   that does not fit is refused and changes nothing.
pub fn check_vec_env(id: &str) -> Result<(), String> {
    let env = registry::parse(id).map_err(|e| format!("`{id}` does not parse: {e}"))?;
    let fail = |what: &str| format!("`{id}`: {what}");
    let canonical = env.id();
    let again = registry::parse(&canonical).map_err(|e| {
        fail(&format!(
            "its canonical id `{canonical}` does not parse: {e}"
        ))
    })?;
    if again.id() != canonical {
        return Err(fail(&format!(
            "its canonical id `{canonical}` parses to `{}`",
            again.id()
        )));
    }
    let build = |n: usize| env.build(n).map_err(|e| fail(&format!("build({n}): {e}")));
    let spec = build(1)?.spec().clone();
    if spec.id != canonical {
        return Err(fail(&format!(
            "its spec's id `{}` is not its canonical id `{canonical}`",
            spec.id
        )));
    }
    let steps = spec.episode_len.map_or(200, |len| (2 * len + 3).min(500));

    check_actions(env.as_ref(), &build)?;
    let seed = 7;
    let alone = trajectory(build(SMALL)?.as_mut(), seed, steps).map_err(|e| fail(&e))?;
    let twin = trajectory(build(SMALL)?.as_mut(), seed, steps).map_err(|e| fail(&e))?;
    if alone != twin {
        return Err(fail("two batches reset with the same seed differ"));
    }
    let larger = trajectory(build(LARGE)?.as_mut(), seed, steps).map_err(|e| fail(&e))?;
    for row in 0..SMALL {
        if alone.rows[row] != larger.rows[row] {
            return Err(fail(&format!(
                "row {row} differs between batches of {SMALL} and {LARGE}: an environment's \
                 episodes must not depend on the batch size"
            )));
        }
    }
    if let Some(len) = spec.episode_len {
        if let Some(longest) = alone.longest_episode.filter(|&l| l > len) {
            return Err(fail(&format!(
                "an episode lasted {longest} steps, past the spec's episode_len {len}"
            )));
        }
        if alone.ended == 0 {
            return Err(fail(&format!("no episode ended in {steps} steps")));
        }
    }
    if let Some(reason) = &alone.bad_reset {
        return Err(fail(reason));
    }
    check_bounds(env.as_ref(), build(SMALL)?.as_mut(), steps).map_err(|e| fail(&e))?;
    check_saved_state(&build, steps).map_err(|e| fail(&e))
}

/// Every observation and final observation lies within the environment's declared bounds.
fn check_bounds(env: &dyn Environment, e: &mut dyn VecEnv, steps: usize) -> Result<(), String> {
    let Some((low, high)) = env.obs_bounds() else {
        return Ok(());
    };
    let d = e.spec().obs_dim;
    if low.len() != d || high.len() != d {
        return Err(format!(
            "its observation bounds have {} and {} entries for observations of {d}",
            low.len(),
            high.len()
        ));
    }
    let outside = |obs: &[f32], what: &str| {
        obs.iter().enumerate().find_map(|(i, &v)| {
            let j = i % d;
            (!(low[j]..=high[j]).contains(&v)).then(|| {
                format!(
                    "{what} entry {j} is {v}, outside its bounds [{}, {}]",
                    low[j], high[j]
                )
            })
        })
    };
    if let Some(why) = outside(
        e.reset(3).map_err(|e| e.to_string())?,
        "a first observation's",
    ) {
        return Err(why);
    }
    let (a, b) = (e.spec().num_actions as u32, e.num_envs());
    for t in 0..steps {
        let actions: Vec<u32> = (0..b).map(|r| (r as u32 + t as u32) % a).collect();
        let step = e.step(&actions).map_err(|e| e.to_string())?;
        if let Some(why) = outside(step.obs, "an observation's") {
            return Err(why);
        }
        for row in (0..b).filter(|&r| step.done(r)) {
            if let Some(why) = outside(step.final_obs_row(row), "a final observation's") {
                return Err(why);
            }
        }
    }
    Ok(())
}

/// Invalid steps are refused and leave the batch as it was.
fn check_actions(
    env: &dyn Environment,
    build: &dyn Fn(usize) -> Result<Box<dyn VecEnv>, String>,
) -> Result<(), String> {
    let fail = |what: String| format!("`{}`: {what}", env.id());
    let mut e = build(2)?;
    let n = e.spec().num_actions as u32;
    if !matches!(e.step(&[0, 0]), Err(EnvError::NotReset)) {
        return Err(fail(
            "stepping before reset is not the NotReset error".into(),
        ));
    }
    e.reset(3).map_err(|err| fail(format!("reset: {err}")))?;
    let mut twin = build(2)?;
    twin.reset(3).map_err(|err| fail(format!("reset: {err}")))?;
    match e.step(&[0, n]) {
        Err(EnvError::InvalidAction {
            row: 1, action: a, ..
        }) if a == n => {}
        other => {
            return Err(fail(format!(
                "action {n} (out of range) in row 1 gave {:?}, not the InvalidAction error",
                other.map(|_| ())
            )))
        }
    }
    if !matches!(
        e.step(&[0]),
        Err(EnvError::ActionCount {
            expected: 2,
            got: 1
        })
    ) {
        return Err(fail(
            "one action for two environments is not the ActionCount error".into(),
        ));
    }
    for t in 0..20u32 {
        let actions = [t % n, (t + 1) % n];
        let a = record(&e.step(&actions).map_err(|err| fail(err.to_string()))?);
        let b = record(&twin.step(&actions).map_err(|err| fail(err.to_string()))?);
        if a != b {
            return Err(fail(
                "after refused steps the batch no longer follows a twin that never saw them".into(),
            ));
        }
    }
    Ok(())
}

/// Where a state is saved, a restored batch continues exactly, and one that does not fit is
/// refused with nothing changed.
fn check_saved_state(
    build: &dyn Fn(usize) -> Result<Box<dyn VecEnv>, String>,
    steps: usize,
) -> Result<(), String> {
    let mut saved = build(SMALL)?;
    saved.reset(11).map_err(|e| e.to_string())?;
    run(saved.as_mut(), 0, steps / 3)?;
    let Some(state) = saved.save_state() else {
        return Ok(());
    };
    let expected = run(saved.as_mut(), 1000, steps)?;
    let mut restored = build(SMALL)?;
    restored.reset(99).map_err(|e| e.to_string())?;
    run(restored.as_mut(), 0, 1)?;
    restored
        .load_state(&state)
        .map_err(|e| format!("load_state of its own state: {e}"))?;
    if run(restored.as_mut(), 1000, steps)? != expected {
        return Err("a batch restored from save_state does not continue exactly".into());
    }
    let mut other = build(SMALL + 1)?;
    other.reset(5).map_err(|e| e.to_string())?;
    let before = other.save_state();
    if other.load_state(&state).is_ok() {
        return Err(format!(
            "a state saved from {SMALL} environments loads into {}",
            SMALL + 1
        ));
    }
    if other.load_state(&serde_json::json!({ "t": 0 })).is_ok() {
        return Err("a damaged state loads".into());
    }
    if other.save_state() != before {
        return Err("a refused load_state changed the batch".into());
    }
    Ok(())
}

/// Row `row`'s action at step `step` of a fixed pseudo-random schedule, the same in any batch.
fn scheduled_action(row: usize, step: usize, num_actions: usize, salt: u64) -> u32 {
    let x = (row as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (step as u64 + salt).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    ((x >> 33) % num_actions as u64) as u32
}

/// What one row showed at one step: observation, reward, flags, regret and, when the episode
/// ended, the observation it ended on.
type Record = Vec<f32>;

fn row_record(s: &Step<'_>, row: usize) -> Record {
    let mut r = s.obs_row(row).to_vec();
    r.extend([
        s.rewards[row],
        f32::from(u8::from(s.terminated[row])),
        f32::from(u8::from(s.truncated[row])),
        s.regret.map_or(0.0, |g| g[row]),
    ]);
    if s.done(row) {
        r.extend_from_slice(s.final_obs_row(row));
    }
    r
}

fn record(s: &Step<'_>) -> Vec<Record> {
    (0..s.rewards.len()).map(|row| row_record(s, row)).collect()
}

/// `steps` scheduled steps of `env`, from wherever it is; every record, flattened.
fn run(env: &mut dyn VecEnv, salt: u64, steps: usize) -> Result<Vec<f32>, String> {
    let (b, n) = (env.num_envs(), env.spec().num_actions);
    let mut out = Vec::new();
    for t in 0..steps {
        let actions: Vec<u32> = (0..b).map(|r| scheduled_action(r, t, n, salt)).collect();
        let s = env.step(&actions).map_err(|e| e.to_string())?;
        out.extend(record(&s).into_iter().flatten());
    }
    Ok(out)
}

/// Every row's records over `steps` steps from `reset(seed)`, and what the episode
/// boundaries looked like.
#[derive(Debug, PartialEq)]
struct Trajectory {
    rows: Vec<Vec<Record>>,
    ended: usize,
    longest_episode: Option<usize>,
    bad_reset: Option<String>,
}

fn trajectory(env: &mut dyn VecEnv, seed: u64, steps: usize) -> Result<Trajectory, String> {
    let (b, n, dim) = (env.num_envs(), env.spec().num_actions, env.spec().obs_dim);
    let first = env.reset(seed).map_err(|e| format!("reset: {e}"))?;
    if first.len() != b * dim || first.iter().any(|x| !x.is_finite()) {
        return Err(format!(
            "reset gave {} numbers (expected {b} × {dim}), or some not finite",
            first.len()
        ));
    }
    let mut rows: Vec<Vec<Record>> = (0..b)
        .map(|r| vec![first[r * dim..(r + 1) * dim].to_vec()])
        .collect();
    let (mut ended, mut longest, mut shown_apart) = (0, None::<usize>, 0);
    let mut lengths = vec![0usize; b];
    for t in 0..steps {
        let actions: Vec<u32> = (0..b).map(|r| scheduled_action(r, t, n, 0)).collect();
        let s = env.step(&actions).map_err(|e| format!("step {t}: {e}"))?;
        for (row, len) in lengths.iter_mut().enumerate() {
            let r = row_record(&s, row);
            if r.iter().any(|x| !x.is_finite()) {
                return Err(format!(
                    "row {row} at step {t} shows a number that is not finite"
                ));
            }
            *len += 1;
            if s.done(row) {
                ended += 1;
                longest = longest.max(Some(*len));
                *len = 0;
                if s.obs_row(row) != s.final_obs_row(row) {
                    shown_apart += 1;
                }
            }
            rows[row].push(r);
        }
    }
    longest = longest.max(lengths.iter().copied().max().filter(|&l| l > 0));
    // An episode may end on what the next one starts with, but not every one of them.
    let bad_reset = (ended > 0 && shown_apart == 0).then(|| {
        format!(
            "each of its {ended} episode ends shows the observation the episode ended on: it \
             does not reset within the step, or final_obs is not the observation it ended on"
        )
    });
    Ok(Trajectory {
        rows,
        ended,
        longest_episode: longest,
        bad_reset,
    })
}
