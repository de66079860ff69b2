//! One episode as panels, one per trip to the goal: how the agent's search for the hidden
//! reward turns into walking straight back to it.
use super::animation::draw_trail;
use super::board::{Board, GOAL};
use super::GridEpisode;
use crate::draw::{caption_width, time, Align, Canvas, Font, INK, WHITE};

/// Panels per row, and at most this many rows.
const COLUMNS: usize = 5;
const ROWS: usize = 4;

impl GridEpisode {
    /// The episode's trips side by side, each on its own board from its start (a ring) to the
    /// goal, coloured blue (early) to red (late), captioned with its length and the shortest.
    pub fn trips_picture(&self, title: &str) -> Canvas {
        let trips = self.trips();
        let shown = trips.len().min(COLUMNS * ROWS);
        let cell = (130 / self.side).clamp(6, 18) as i32;
        let line = Font::Label.line_height();
        let panel_w = (self.side as i32 * cell).max(Font::Label.width("trip 20: 100 steps")) + 10;
        let panel_h = self.side as i32 * cell + 2 * line + 6;
        let columns = shown.clamp(1, COLUMNS);
        let rows = shown.div_ceil(COLUMNS).max(1);
        let reached = trips.iter().filter(|t| t.reached_goal).count();
        let mut lines = vec![
            title.to_string(),
            format!(
                "{} steps, reward {}: the hidden reward (green) reached {reached} times",
                self.moves.len(),
                self.total_reward()
            ),
            "one panel per trip, from the ring (start, or where the reward sent the agent)"
                .to_string(),
            "to the reward; the line runs blue (early) to red (late)".to_string(),
        ];
        if shown < trips.len() {
            lines.push(format!("the first {shown} of {} trips", trips.len()));
        }
        let header = lines.len() as i32 * line + 6;
        let width = (columns as i32 * panel_w + 8).max(caption_width(&lines));
        let height = header + rows as i32 * panel_h + 4;
        let mut canvas = Canvas::new(width as usize, height as usize, WHITE);
        canvas.caption(&lines, INK);
        for (i, trip) in trips.iter().take(shown).enumerate() {
            let x = 4 + (i % COLUMNS) as i32 * panel_w;
            let y = header + (i / COLUMNS) as i32 * panel_h;
            let board = Board {
                side: self.side,
                cell,
                origin: (x, y),
            };
            board.draw(&mut canvas, |c| self.is_wall(c), Some((self.goal, GOAL)));
            draw_trail(&mut canvas, &board, &trip.path);
            canvas.ring(board.centre(trip.path[0]), (cell as u32 * 3) / 4, 2, INK);
            if !trip.reached_goal {
                canvas.disc(
                    board.centre(*trip.path.last().expect("a start")),
                    (cell / 2) as u32,
                    time(1.0),
                );
            }
            let steps = trip.path.len() - 1;
            let steps = if steps == 1 {
                "1 step".to_string()
            } else {
                format!("{steps} steps")
            };
            let caption = if trip.reached_goal {
                format!("trip {}: {steps}", i + 1)
            } else {
                format!("end: {steps}")
            };
            let best = self
                .shortest_to_goal(trip.path[0])
                .map_or("no way to the goal".into(), |d| format!("(shortest {d})"));
            let cy = y + board.pixels() + 2;
            canvas.text(x, cy, &caption, Font::Label, Align::Left, INK);
            canvas.text(x, cy + line, &best, Font::Label, Align::Left, INK);
        }
        canvas
    }
}
