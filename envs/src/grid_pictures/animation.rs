//! One recorded episode as frames: the board with the hidden goal shown, the agent, the trail
//! of its current trip, and a caption with the step and the reward so far.
use super::board::{Board, AGENT, GOAL, GOAL_REACHED};
use super::{Cell, GridEpisode};
use crate::draw::{time, Align, Canvas, Font, INK, WHITE};
use crate::Frame;

/// Frames per second of a grid animation: a step is easy to follow, 100 steps take 17 s.
pub const ANIMATION_FPS: f64 = 6.0;

impl GridEpisode {
    /// One frame after `reset` and one after each step: `moves.len() + 1` frames, the last
    /// showing where the episode ended.
    pub fn frames(&self) -> Vec<Frame> {
        let cell = cell_size(self.side);
        let line = Font::Label.line_height();
        let board = Board {
            side: self.side,
            cell,
            origin: (4, 4 + 2 * line),
        };
        let legend = "green: the hidden reward (the agent cannot see it)";
        let width = (board.pixels() + 8).max(Font::Label.width(legend) + 8);
        let height = board.origin.1 + board.pixels() + 6 + line;
        let total = self.moves.len();
        let mut frames = Vec::with_capacity(total + 1);
        let mut trail: Vec<Cell> = vec![self.start];
        let mut reward = 0.0;
        let mut found = 0;
        for step in 0..=total {
            let mut canvas = Canvas::new(width as usize, height as usize, WHITE);
            let mut goal_colour = GOAL;
            let mut status = match found {
                0 => "looking for the hidden reward".to_string(),
                1 => "found the reward once: trip 2".to_string(),
                n => format!("found the reward {n} times: trip {}", n + 1),
            };
            let mut at = self.start;
            if step > 0 {
                let m = &self.moves[step - 1];
                reward += f64::from(m.reward);
                trail.push(m.entered);
                at = m.stands;
                if m.entered == self.goal {
                    found += 1;
                    goal_colour = GOAL_REACHED;
                    status = if m.stands == m.entered {
                        "reached the reward".to_string()
                    } else {
                        "reached the reward, sent to a random cell".to_string()
                    };
                }
            }
            if step == total && total > 0 {
                status = "episode over".to_string();
            }
            board.draw(
                &mut canvas,
                |c| self.is_wall(c),
                Some((self.goal, goal_colour)),
            );
            draw_trail(&mut canvas, &board, &trail);
            board.agent(&mut canvas, at);
            canvas.text(
                4,
                2,
                &format!("step {step}/{total}   reward {reward}"),
                Font::Title,
                Align::Left,
                INK,
            );
            canvas.text(4, 2 + line + 2, &status, Font::Label, Align::Left, AGENT);
            canvas.text(
                4,
                board.origin.1 + board.pixels() + 4,
                legend,
                Font::Label,
                Align::Left,
                INK,
            );
            frames.push(canvas.into_frame());
            if step > 0 && self.moves[step - 1].entered == self.goal {
                trail = vec![self.moves[step - 1].stands];
            }
        }
        frames
    }
}

/// Pixels per cell of an animation: about 240 pixels a side, cells of 6 to 24.
fn cell_size(side: usize) -> i32 {
    (240 / side).clamp(6, 24) as i32
}

/// The cells walked, joined centre to centre, blue (first) to red (last).
pub(super) fn draw_trail(canvas: &mut Canvas, board: &Board, path: &[Cell]) {
    let width = (board.cell / 5).max(2) as u32;
    let n = path.len().max(2) - 1;
    for (i, pair) in path.windows(2).enumerate() {
        let colour = time((i + 1) as f64 / n as f64);
        canvas.line(board.centre(pair[0]), board.centre(pair[1]), width, colour);
    }
}

#[cfg(test)]
mod tests {
    use super::super::board::FLOOR;
    use super::super::record;
    use super::super::tests::{maze, Scripted};

    #[test]
    fn an_episode_of_t_steps_has_t_plus_one_frames_and_the_last_shows_its_end() {
        // Right, down, down from the centre of a 9×9 maze; the episode ends after 3 steps.
        let mut m = maze(9, 3);
        let e = &record(&mut m, &mut Scripted(vec![3, 1, 1], 0), 7).unwrap()[0];
        let frames = e.frames();
        assert_eq!(frames.len(), 4);
        let last = frames.last().unwrap();
        let cell = super::cell_size(9) as usize;
        let line = super::Font::Label.line_height() as usize;
        let pixel = |(r, c): (usize, usize)| {
            let (x, y) = (4 + c * cell + cell / 2, 4 + 2 * line + r * cell + cell / 2);
            let at = (y * last.width + x) * 3;
            [last.rgb[at], last.rgb[at + 1], last.rgb[at + 2]]
        };
        let end = e.moves.last().unwrap().stands;
        assert_ne!(e.goal, end, "seed 7 puts the goal off this path");
        assert_eq!(end, (6, 5));
        assert_eq!(pixel(end), super::AGENT);
        assert_eq!(pixel(e.goal), super::GOAL);
        // The centre, where the next episode would start, holds no agent.
        assert_ne!(pixel((4, 4)), super::AGENT);
        assert_ne!(pixel((4, 4)), FLOOR, "the trail passes through the start");
    }
}
