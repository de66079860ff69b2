//! `plastic eval --render`: one episode of the agent in a Gymnasium environment, drawn from the
//! environment's own rgb_array frames into an animated GIF.
use plastic_agents::acting::ActionMode;
use plastic_agents::acting::AgentPolicy;
use plastic_agents::ActorCritic;
use plastic_envs::{Environment, Policy};
use std::path::Path;

/// Longer episodes are cut: a GIF of thousands of full-size frames helps nobody.
const MAX_FRAMES: usize = 2000;

/// What was drawn.
pub struct Rendered {
    pub frames: usize,
    pub reward: f64,
    /// The episode went on past the frame limit (2000).
    pub cut: bool,
}

pub fn episode_gif(
    ac: &ActorCritic,
    env: &dyn Environment,
    path: &Path,
    mode: ActionMode,
    seed: u64,
) -> anyhow::Result<Rendered> {
    check_path(path)?;
    let Some(e) = env.build_drawn() else {
        anyhow::bail!(
            "--render draws environments that draw themselves (Gymnasium's, gym:<id>); `{}` \
             does not. The native environments' pictures (the maze's visits and path, Hebbian \
             traces) are in TensorBoard",
            env.id()
        );
    };
    let mut e = e?;
    let mut policy = AgentPolicy::new(ac, 1, mode, seed);
    let mut obs = e.reset(seed)?.to_vec();
    let mut frames = vec![e.frame()?];
    let (mut reward, mut action) = (0.0, [0u32]);
    let cut = loop {
        if frames.len() == MAX_FRAMES {
            break true;
        }
        policy.act(&obs, &mut action);
        let step = e.step(&action)?;
        reward += f64::from(step.rewards[0]);
        // The env has already started the next episode: the end state has no frame.
        if step.done(0) {
            break false;
        }
        obs.copy_from_slice(step.obs);
        frames.push(e.frame()?);
    };
    write_gif(path, &frames, e.fps())?;
    Ok(Rendered {
        frames: frames.len(),
        reward,
        cut,
    })
}

fn check_path(path: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gif")),
        "--render writes animated GIFs: give a file name ending in .gif (got `{}`)",
        path.display()
    );
    let dir = crate::durable::folder_of(path);
    anyhow::ensure!(
        dir.is_dir(),
        "--render: the folder `{}` does not exist",
        dir.display()
    );
    Ok(())
}

fn write_gif(path: &Path, frames: &[plastic_envs::Frame], fps: f64) -> anyhow::Result<()> {
    let (w, h) = (frames[0].width, frames[0].height);
    let size = |v: usize| {
        u16::try_from(v).map_err(|_| anyhow::anyhow!("frames of {w}×{h} are too large for a GIF"))
    };
    let (gw, gh) = (size(w)?, size(h)?);
    // GIF delays are in hundredths of a second.
    let delay = (100.0 / fps).round().clamp(1.0, 6000.0) as u16;
    let mut bytes = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut bytes, gw, gh, &[])?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        for f in frames {
            anyhow::ensure!(
                (f.width, f.height) == (w, h),
                "the environment changed its frame size mid-episode"
            );
            let mut frame = gif::Frame::from_rgb_speed(gw, gh, &f.rgb, 10);
            frame.delay = delay;
            encoder.write_frame(&frame)?;
        }
    }
    crate::durable::write_atomic(path, &bytes)
}
