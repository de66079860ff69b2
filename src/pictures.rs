//! Pictures people would rather look at than read: where a maze agent goes, and what its
//! Hebbian trace holds at the end of an episode.
use plastic_agents::acting::{ActionMode, AgentPolicy};
use plastic_agents::metrics::RgbImage;
use plastic_agents::ActorCritic;
use plastic_envs::{EnvError, Environment, GridEnv, Policy};
use tch::Tensor;

/// Pixels per maze cell and per trace entry.
const CELL: usize = 16;
const TRACE_PIXEL: usize = 3;

const WALL: [u8; 3] = [60, 60, 60];
const REWARD: [u8; 3] = [40, 200, 80];

/// What one batch of grid-world episodes (the maze's) looked like.
pub struct GridPictures {
    /// Visits per cell over all episodes, black (never) to yellow (most).
    pub heat_map: RgbImage,
    /// Episode 0: the reward cell in green, the path from blue (start) to red (end).
    pub path: RgbImage,
    /// Episode 0's Hebbian trace at its last step (plastic cores).
    pub hebb: Option<RgbImage>,
}

/// Runs one episode in each row of `env` (a fresh batch of grid worlds) with `ac` and draws
/// them.
pub fn grid(
    ac: &ActorCritic,
    mut env: Box<dyn GridEnv>,
    seed: u64,
) -> Result<GridPictures, EnvError> {
    let episodes = env.num_envs();
    let mut policy = AgentPolicy::new(ac, episodes, ActionMode::Sample, seed);
    let n = env.side();
    let mut visits = vec![0u32; n * n];
    let mut obs = env.reset(seed)?.to_vec();
    let mut path = vec![env_cell(env.as_ref(), 0, n)];
    let reward_cell = env.goal_cell(0);
    let mut actions = vec![0u32; episodes];
    let mut ended = vec![false; episodes];
    for _ in 0..MAX_TRACE_STEPS {
        policy.act(&obs, &mut actions);
        let step = env.step(&actions)?;
        for (row, e) in ended.iter_mut().enumerate() {
            *e |= step.done(row);
        }
        obs.copy_from_slice(step.obs);
        // A row that ended has started its next episode: its positions are not this one's.
        if ended[0] {
            break;
        }
        for row in (0..episodes).filter(|&r| !ended[r]) {
            visits[env_cell(env.as_ref(), row, n)] += 1;
        }
        path.push(env_cell(env.as_ref(), 0, n));
    }
    let hebb = policy.state().hebb().map(|h| trace(&h.get(0)));

    let most = visits.iter().copied().max().unwrap_or(0).max(1);
    let mut heat = RgbImage::new(n, n);
    let mut trail = RgbImage::new(n, n);
    for r in 0..n {
        for c in 0..n {
            if env.is_wall(r, c) {
                heat.put(c, r, WALL);
                trail.put(c, r, WALL);
            } else {
                heat.put(
                    c,
                    r,
                    heat_colour(f64::from(visits[r * n + c]) / f64::from(most)),
                );
                trail.put(c, r, [255, 255, 255]);
            }
        }
    }
    trail.put(reward_cell.1, reward_cell.0, REWARD);
    for (i, &cell) in path.iter().enumerate() {
        let f = i as f64 / (path.len().max(2) - 1) as f64;
        let colour = [(255.0 * f) as u8, 40, (255.0 * (1.0 - f)) as u8];
        if (cell / n, cell % n) != reward_cell {
            trail.put(cell % n, cell / n, colour);
        }
    }
    Ok(GridPictures {
        heat_map: heat.scaled(CELL),
        path: trail.scaled(CELL),
        hebb,
    })
}

fn env_cell(env: &dyn GridEnv, row: usize, n: usize) -> usize {
    let (r, c) = env.agent_cell(row);
    r * n + c
}

/// Black → red → yellow → white.
fn heat_colour(f: f64) -> [u8; 3] {
    let f = f.clamp(0.0, 1.0) * 3.0;
    let ch = |x: f64| (x.clamp(0.0, 1.0) * 255.0) as u8;
    [ch(f), ch(f - 1.0), ch(f - 2.0)]
}

/// A `[H × H]` trace, blue (negative) – white (0) – red (positive), scaled to its largest |value|.
pub fn trace(hebb: &Tensor) -> RgbImage {
    let h = hebb.size()[0] as usize;
    let values =
        Vec::<f32>::try_from(hebb.to_kind(tch::Kind::Float).flatten(0, -1)).expect("a float trace");
    let scale = values.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    let mut img = RgbImage::new(h, h);
    for (i, v) in values.iter().enumerate() {
        let f = v / scale;
        let fade = |x: f32| (255.0 * (1.0 - x.abs())) as u8;
        let colour = if f >= 0.0 {
            [255, fade(f), fade(f)]
        } else {
            [fade(f), fade(f), 255]
        };
        img.put(i % h, i / h, colour);
    }
    img.scaled(TRACE_PIXEL)
}

/// Episodes that have not ended by then are drawn as they stand.
const MAX_TRACE_STEPS: usize = 10_000;

/// The Hebbian trace at the end of one episode, for plastic cores.
pub fn episode_trace(
    ac: &ActorCritic,
    env: &dyn Environment,
    seed: u64,
) -> Result<Option<RgbImage>, EnvError> {
    let mut policy = AgentPolicy::new(ac, 1, ActionMode::Sample, seed);
    // Checked before the environment is built: a Gymnasium one costs a Python env.
    if policy.state().hebb().is_none() {
        return Ok(None);
    }
    let mut env = env.build(1)?;
    let mut obs = env.reset(seed)?.to_vec();
    let mut action = [0u32];
    for _ in 0..MAX_TRACE_STEPS {
        policy.act(&obs, &mut action);
        let step = env.step(&action)?;
        // The policy has not been told of the end, so its traces are still the episode's.
        if step.done(0) {
            break;
        }
        obs.copy_from_slice(step.obs);
    }
    Ok(policy.state().hebb().map(|h| trace(&h.get(0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_map_sign_to_colour() {
        let t = Tensor::from_slice(&[1.0f32, -0.5, 0.0, -1.0]).view([2, 2]);
        let img = trace(&t);
        assert_eq!((img.width, img.height), (2 * TRACE_PIXEL, 2 * TRACE_PIXEL));
        assert_eq!(img.get(0, 0), [255, 0, 0]);
        assert_eq!(img.get(TRACE_PIXEL, 0), [127, 127, 255]);
        assert_eq!(img.get(0, TRACE_PIXEL), [255, 255, 255]);
        assert_eq!(img.get(TRACE_PIXEL, TRACE_PIXEL), [0, 0, 255]);
    }

    #[test]
    fn heat_runs_from_black_to_white() {
        assert_eq!(heat_colour(0.0), [0, 0, 0]);
        assert_eq!(heat_colour(1.0), [255, 255, 255]);
    }
}
