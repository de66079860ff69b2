//! Pictures of an agent at work, for TensorBoard, `plastic eval --render` and the periodic
//! animations of training: maze episodes (a panel per trip to the hidden reward, where agents
//! walk relative to it), a bandit episode's pulls, and the Hebbian trace with the modulator
//! (or STPN's fast weights).
mod hebb;

use plastic_agents::acting::{ActionMode, AgentPolicy};
use plastic_agents::ActorCritic;
use plastic_envs::bandits::{self, BanditEpisode};
use plastic_envs::draw::Canvas;
use plastic_envs::grid_pictures::{self, GridEpisode};
use plastic_envs::{EnvError, Environment};

pub use hebb::{plastic_picture, PlasticMatrix};

/// One episode in each of `episodes` grid worlds, `None` for environments that are not grids.
pub fn grid_episodes(
    ac: &ActorCritic,
    env: &dyn Environment,
    episodes: usize,
    mode: ActionMode,
    seed: u64,
) -> Result<Option<Vec<GridEpisode>>, EnvError> {
    let Some(grid) = env.build_grid(episodes) else {
        return Ok(None);
    };
    let mut policy = AgentPolicy::new(ac, episodes, mode, seed);
    grid_pictures::record(grid?.as_mut(), &mut policy, seed).map(Some)
}

/// One bandit episode, `None` for environments that are not bandits.
pub fn bandit_episode(
    ac: &ActorCritic,
    env: &dyn Environment,
    mode: ActionMode,
    seed: u64,
) -> Result<Option<BanditEpisode>, EnvError> {
    let Some(bandit) = env.build_bandit(1) else {
        return Ok(None);
    };
    let mut policy = AgentPolicy::new(ac, 1, mode, seed);
    bandits::record(bandit?.as_mut(), &mut policy, seed).map(Some)
}

/// Every tag [`tensorboard_pictures`] may log under.
pub const TENSORBOARD_TAGS: [&str; 5] = {
    use plastic_agents::metrics::tags;
    [
        tags::maze::VISITS,
        tags::maze::PATH,
        tags::bandit::PULLS,
        tags::plasticity::HEBB,
        tags::plasticity::FAST,
    ]
};

/// The pictures TensorBoard shows for `env`, by tag, from episodes seeded with `seed`.
pub fn tensorboard_pictures(
    ac: &ActorCritic,
    env: &dyn Environment,
    seed: u64,
) -> Result<Vec<(&'static str, Canvas)>, EnvError> {
    use plastic_agents::metrics::tags;
    let mut pictures = Vec::new();
    let mode = ActionMode::Sample;
    if let Some(episodes) = grid_episodes(ac, env, 16, mode, seed)? {
        pictures.push((
            tags::maze::VISITS,
            grid_pictures::visits_picture(&episodes, tags::maze::VISITS),
        ));
        pictures.push((
            tags::maze::PATH,
            episodes[0].trips_picture(tags::maze::PATH),
        ));
    }
    if let Some(episode) = bandit_episode(ac, env, mode, seed)? {
        pictures.push((tags::bandit::PULLS, episode.picture(tags::bandit::PULLS)));
    }
    for (tag, matrix) in [
        (tags::plasticity::HEBB, PlasticMatrix::Hebb),
        (tags::plasticity::FAST, PlasticMatrix::Fast),
    ] {
        if let Some(picture) = plastic_picture(ac, env, seed, matrix, tag)? {
            pictures.push((tag, picture));
        }
    }
    Ok(pictures)
}
