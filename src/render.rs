//! `plastic eval --render` and the periodic animations of training: one episode of the agent as
//! an animated GIF (the maze, Gymnasium environments) or a still PNG (a panel per trip of the
//! maze, the pulls of a bandit episode).
use crate::pictures;
use plastic_agents::acting::{ActionMode, AgentPolicy};
use plastic_agents::ActorCritic;
use plastic_envs::grid_pictures::ANIMATION_FPS;
use plastic_envs::{Actions, Environment, Frame};
use std::path::Path;

/// Longer episodes are cut: a GIF of thousands of full-size frames helps nobody.
const MAX_FRAMES: usize = 2000;

/// The last frame stays this long before the animation loops, so its final state can be seen.
const HOLD_LAST_SECONDS: f64 = 2.0;

/// What was drawn.
pub struct Rendered {
    /// Frames of an animation; 1 for a still picture.
    pub frames: usize,
    pub reward: f64,
    /// The episode went on past the frame limit (2000).
    pub cut: bool,
}

/// What a file name asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gif,
    Png,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Gif => "gif",
            Self::Png => "png",
        }
    }
}

/// The format `env` is drawn in best: animations where it has them, else a still picture.
pub fn best_format(env: &dyn Environment) -> Option<Format> {
    if env.build_grid(1).is_some() || env.build_drawn().is_some() {
        Some(Format::Gif)
    } else if env.build_bandit(1).is_some() {
        Some(Format::Png)
    } else {
        None
    }
}

/// Checks `path` (its extension and folder) before any work, and says which format it asks for.
pub fn check_path(path: &Path) -> anyhow::Result<Format> {
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("gif") => Format::Gif,
        Some(e) if e.eq_ignore_ascii_case("png") => Format::Png,
        _ => anyhow::bail!(
            "--render writes an animated GIF (FILE.gif: the maze, Gymnasium environments) or a \
             still picture (FILE.png: the maze's trips, a bandit episode's pulls); got `{}`",
            path.display()
        ),
    };
    let dir = crate::durable::folder_of(path);
    anyhow::ensure!(
        dir.is_dir(),
        "--render: the folder `{}` does not exist",
        dir.display()
    );
    Ok(format)
}

/// One episode of `ac` on `env`, drawn into `path` (checked by [`check_path`]); `title` heads
/// still pictures.
pub fn episode(
    ac: &ActorCritic,
    env: &dyn Environment,
    path: &Path,
    mode: ActionMode,
    seed: u64,
    title: &str,
) -> anyhow::Result<Rendered> {
    let format = check_path(path)?;
    if let Some(episodes) = pictures::grid_episodes(ac, env, 1, mode, seed)? {
        let e = &episodes[0];
        let reward = e.total_reward();
        let frames = match format {
            Format::Gif => {
                let frames = e.frames();
                write_gif(path, &frames, ANIMATION_FPS)?;
                frames.len()
            }
            Format::Png => {
                write_png(path, &e.trips_picture(title).into_frame())?;
                1
            }
        };
        return Ok(Rendered {
            frames,
            reward,
            cut: false,
        });
    }
    if format == Format::Png {
        let Some(e) = pictures::bandit_episode(ac, env, mode, seed)? else {
            anyhow::bail!(
                "--render FILE.png draws the maze's trips and bandit episodes; `{}` is drawn as \
                 an animation: give FILE.gif",
                env.id()
            );
        };
        write_png(path, &e.picture(title).into_frame())?;
        return Ok(Rendered {
            frames: 1,
            reward: e.rewards.iter().map(|&r| f64::from(r)).sum(),
            cut: false,
        });
    }
    let Some(drawn) = env.build_drawn() else {
        anyhow::bail!(
            "`{}` has no animation: --render FILE.png draws a picture of one of its episodes \
             (bandits), FILE.gif animates the maze and Gymnasium environments",
            env.id()
        );
    };
    let mut e = drawn?;
    let mut policy = AgentPolicy::new(ac, 1, mode, seed);
    let mut obs = e.reset(seed)?.to_vec();
    let mut frames = vec![e.frame()?];
    let mut reward = 0.0;
    let mut actions = Actions::for_env(&*e);
    let cut = loop {
        if frames.len() == MAX_FRAMES {
            break true;
        }
        let step = actions.step(&mut *e, &mut policy, &obs)?;
        reward += f64::from(step.rewards[0]);
        let done = step.done(0);
        obs.copy_from_slice(step.obs);
        // After the last step the frame is still the episode's end (DrawnEnv::frame).
        frames.push(e.frame()?);
        if done {
            break false;
        }
    };
    write_gif(path, &frames, e.fps())?;
    Ok(Rendered {
        frames: frames.len(),
        reward,
        cut,
    })
}

fn write_gif(path: &Path, frames: &[Frame], fps: f64) -> anyhow::Result<()> {
    let (w, h) = (frames[0].width, frames[0].height);
    let size = |v: usize| {
        u16::try_from(v).map_err(|_| anyhow::anyhow!("frames of {w}×{h} are too large for a GIF"))
    };
    let (gw, gh) = (size(w)?, size(h)?);
    for f in frames {
        anyhow::ensure!(
            (f.width, f.height) == (w, h),
            "the environment changed its frame size mid-episode"
        );
    }
    // GIF delays are in hundredths of a second.
    let delay = (100.0 / fps).round().clamp(1.0, 6000.0) as u16;
    let hold = (100.0 * HOLD_LAST_SECONDS) as u16;
    let palette = exact_palette(frames);
    // Each colour's index in the palette, for every frame.
    let index: Option<std::collections::HashMap<[u8; 3], u8>> = palette.as_ref().map(|colours| {
        colours
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u8))
            .collect()
    });
    let mut bytes = Vec::new();
    {
        let global = palette.as_ref().map_or(Vec::new(), |p| p.concat());
        let mut encoder = gif::Encoder::new(&mut bytes, gw, gh, &global)?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        for (i, f) in frames.iter().enumerate() {
            let mut frame = match &index {
                // Drawn pictures: their own colours, exactly, in one table for all frames.
                // Only the part that changed is stored; the rest stays from the frame before.
                Some(index) => {
                    let (x0, y0, x1, y1) = match i {
                        0 => (0, 0, w, h),
                        _ => changed(&frames[i - 1], f).unwrap_or((0, 0, 1, 1)),
                    };
                    let pixels: Vec<u8> = (y0..y1)
                        .flat_map(|y| (x0..x1).map(move |x| (y * w + x) * 3))
                        .map(|at| index[&[f.rgb[at], f.rgb[at + 1], f.rgb[at + 2]]])
                        .collect();
                    let mut part = gif::Frame::from_indexed_pixels(
                        (x1 - x0) as u16,
                        (y1 - y0) as u16,
                        pixels,
                        None,
                    );
                    (part.left, part.top) = (x0 as u16, y0 as u16);
                    part.dispose = gif::DisposalMethod::Keep;
                    part
                }
                // Rendered scenes: 256 colours chosen per frame.
                None => gif::Frame::from_rgb_speed(gw, gh, &f.rgb, 10),
            };
            frame.delay = if i + 1 == frames.len() {
                delay.max(hold)
            } else {
                delay
            };
            encoder.write_frame(&frame)?;
        }
    }
    crate::durable::write_atomic(path, &bytes)
}

/// The smallest rectangle `(x0, y0, x1, y1)` (ends excluded) holding every pixel that differs
/// between two frames of one size; `None` when none does.
fn changed(before: &Frame, after: &Frame) -> Option<(usize, usize, usize, usize)> {
    let w = after.width;
    let mut bounds: Option<(usize, usize, usize, usize)> = None;
    for (i, (a, b)) in before.rgb.chunks(3).zip(after.rgb.chunks(3)).enumerate() {
        if a != b {
            let (x, y) = (i % w, i / w);
            bounds = Some(match bounds {
                None => (x, y, x + 1, y + 1),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1)),
            });
        }
    }
    bounds
}

/// Every colour of `frames`, when there are at most 256 (a GIF's palette).
fn exact_palette(frames: &[Frame]) -> Option<Vec<[u8; 3]>> {
    let mut seen = std::collections::BTreeSet::new();
    for f in frames {
        for p in f.rgb.chunks(3) {
            seen.insert([p[0], p[1], p[2]]);
            if seen.len() > 256 {
                return None;
            }
        }
    }
    Some(seen.into_iter().collect())
}

/// `frame` as a PNG file.
pub fn write_png(path: &Path, frame: &Frame) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, frame.width as u32, frame.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&frame.rgb)?;
    }
    crate::durable::write_atomic(path, &bytes)
}
