//! One bandit episode as a picture: a row per arm, a column per step, each cell shaded by the
//! arm's expected reward and the arm pulled marked with what it paid.
use crate::draw::{
    caption_width, colour_bar, colour_bar_width, sequential, tick, Align, Canvas, Font, INK, WHITE,
};
use crate::{BanditEnv, EnvError, Policy};

/// One episode of row 0: per step, the arms' expected rewards, the arm pulled and its reward.
#[derive(Debug, Clone, PartialEq)]
pub struct BanditEpisode {
    pub means: Vec<Vec<f32>>,
    pub pulls: Vec<u32>,
    pub rewards: Vec<f32>,
}

/// Steps past which an episode is cut (bandit episodes are a few hundred steps at most).
const MAX_STEPS: usize = 100_000;

/// Runs one episode of `env`'s first row with `policy` from `reset(seed)`.
pub fn record(
    env: &mut dyn BanditEnv,
    policy: &mut dyn Policy,
    seed: u64,
) -> Result<BanditEpisode, EnvError> {
    let rows = env.num_envs();
    let mut obs = env.reset(seed)?.to_vec();
    let mut actions = vec![0u32; rows];
    let mut episode = BanditEpisode {
        means: Vec::new(),
        pulls: Vec::new(),
        rewards: Vec::new(),
    };
    for _ in 0..MAX_STEPS {
        // The arms as they are for this pull (the last step of an episode draws new ones).
        episode.means.push(env.arm_means(0).to_vec());
        policy.act(&obs, &mut actions);
        let step = env.step(&actions)?;
        episode.pulls.push(actions[0]);
        episode.rewards.push(step.rewards[0]);
        let done: Vec<bool> = (0..rows).map(|r| step.done(r)).collect();
        obs.copy_from_slice(step.obs);
        policy.episodes_ended(&done);
        if done[0] {
            break;
        }
    }
    Ok(episode)
}

impl BanditEpisode {
    /// The picture, headed by `title`.
    pub fn picture(&self, title: &str) -> Canvas {
        let steps = self.pulls.len();
        let arms = self.means.first().map_or(0, Vec::len);
        let best = self
            .means
            .iter()
            .flatten()
            .copied()
            .fold(0.0f32, f32::max)
            .max(1e-6);
        let col = (720 / steps.max(1)).clamp(3, 24) as i32;
        let row = 18;
        let line = Font::Label.line_height();
        let total: f64 = self.rewards.iter().map(|&r| f64::from(r)).sum();
        let expected: f64 = self
            .means
            .iter()
            .zip(&self.pulls)
            .map(|(m, &a)| f64::from(m[a as usize]))
            .sum();
        let best_total: f64 = self
            .means
            .iter()
            .map(|m| f64::from(m.iter().copied().fold(f32::MIN, f32::max)))
            .sum();
        let lines = [
            title.to_string(),
            format!(
                "{steps} pulls, reward {}; the best arm's expected total {}, the pulls' {}",
                tick(total),
                tick(best_total),
                tick(expected)
            ),
            "one row per arm, one column per step; shade: the arm's expected reward".to_string(),
            "(unseen by the agent); black dot: the pull paid, hollow ring: it paid 0".to_string(),
        ];
        let header = lines.len() as i32 * line + 8;
        let label_w = Font::Label.width("arm 10") + 6;
        let grid_w = steps as i32 * col;
        let grid_h = arms as i32 * row;
        let width = (label_w + grid_w + 10 + colour_bar_width(0.0, f64::from(best)) + 4)
            .max(caption_width(&lines));
        let height = header + grid_h.max(60) + 2 * line + 6;
        let mut canvas = Canvas::new(width as usize, height as usize, WHITE);
        canvas.caption(&lines, INK);
        let x0 = label_w;
        for arm in 0..arms {
            let y = header + arm as i32 * row;
            let label = format!("arm {arm}");
            canvas.text(
                x0 - 4,
                y + (row - line) / 2 + 1,
                &label,
                Font::Label,
                Align::Right,
                INK,
            );
            for (t, means) in self.means.iter().enumerate() {
                let shade = sequential(f64::from(means[arm] / best));
                canvas.fill_rect(x0 + t as i32 * col, y, col as u32, row as u32 - 1, shade);
            }
        }
        let mark = (col.min(row) - 2).max(3) as u32;
        for (t, (&arm, &reward)) in self.pulls.iter().zip(&self.rewards).enumerate() {
            let centre = (
                x0 + t as i32 * col + col / 2,
                header + arm as i32 * row + row / 2,
            );
            canvas.disc(centre, mark + 2, WHITE);
            if reward > 0.0 {
                canvas.disc(centre, mark, INK);
            } else {
                canvas.ring(centre, mark, 1, INK);
            }
        }
        let axis = header + grid_h + 3;
        canvas.text(x0, axis, "step 1", Font::Label, Align::Left, INK);
        canvas.text(
            x0 + grid_w,
            axis,
            &format!("{steps}"),
            Font::Label,
            Align::Right,
            INK,
        );
        colour_bar(
            &mut canvas,
            (x0 + grid_w + 10, header),
            grid_h.max(60),
            sequential,
            false,
            (0.0, f64::from(best)),
        );
        canvas
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_episode_records_every_pull_with_the_arms_it_was_made_on() {
        let env = crate::registry::parse("bandit-independent:arms=3,len=20").unwrap();
        let mut bandit = env.build_bandit(2).unwrap().unwrap();
        let mut random = crate::RandomPolicy::new(3, 2, 4);
        let e = record(bandit.as_mut(), &mut random, 9).unwrap();
        assert_eq!(
            (e.pulls.len(), e.rewards.len(), e.means.len()),
            (20, 20, 20)
        );
        // Independent arms stay put within an episode, and pay 0 or 1.
        assert!(e.means.iter().all(|m| m == &e.means[0] && m.len() == 3));
        assert!(e.rewards.iter().all(|&r| r == 0.0 || r == 1.0));
        assert!(e.pulls.iter().any(|&a| a != e.pulls[0]));
        let pic = e.picture("bandit");
        assert!(pic.width() >= 20 * 24 && pic.height() > 3 * 18);
    }
}
