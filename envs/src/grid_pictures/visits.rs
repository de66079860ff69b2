//! Where agents walk relative to the goal: every episode shifted so its goal is the centre,
//! so episodes with the goal in different places add up instead of blurring.
use super::GridEpisode;
use crate::draw::{
    caption_width, colour_bar, colour_bar_width, sequential, Canvas, Font, INK, WHITE,
};

/// Offsets that are never a floor cell.
const NEVER_FLOOR: [u8; 3] = [200, 200, 200];

/// Visits per episode at each offset from the goal, drawn with a colour bar. `episodes`
/// share one board size.
pub fn visits_picture(episodes: &[GridEpisode], title: &str) -> Canvas {
    let side = episodes.first().map_or(1, |e| e.side);
    let span = 2 * side - 1;
    let Aligned { visits, floor } = aligned(episodes, side);
    let steps = episodes.iter().map(|e| e.moves.len()).max().unwrap_or(0);
    // Per episode, not per episode where the offset is floor: offsets far from the centre
    // are floor in few episodes, and would show the noise of those few at full strength.
    let rate: Vec<f64> = visits
        .iter()
        .map(|&v| v / episodes.len().max(1) as f64)
        .collect();
    let most = rate.iter().copied().fold(0.0, f64::max).max(1e-9);
    // Only the offsets that are ever a floor cell.
    let used: Vec<usize> = (0..span)
        .filter(|&r| (0..span).any(|c| floor[r * span + c] > 0))
        .collect();
    let (first, last) = (
        used.first().copied().unwrap_or(0),
        used.last().copied().unwrap_or(0),
    );
    let n = last - first + 1;
    let cell = (300 / n).clamp(6, 24) as i32;
    let line = Font::Label.line_height();
    let lines = [
        title.to_string(),
        format!(
            "{} episodes of {steps} steps, each shifted so that its hidden reward is the centre",
            episodes.len()
        ),
        "(white square): colour = visits per episode; grey: never a floor cell".to_string(),
    ];
    let header = lines.len() as i32 * line + 8;
    let map = n as i32 * cell;
    let width = (4 + map + 8 + colour_bar_width(0.0, most) + 4).max(caption_width(&lines));
    let mut canvas = Canvas::new(width as usize, (header + map + 6) as usize, WHITE);
    canvas.caption(&lines, INK);
    for r in 0..n {
        for c in 0..n {
            let i = (first + r) * span + first + c;
            let colour = if floor[i] == 0 {
                NEVER_FLOOR
            } else {
                sequential(rate[i] / most)
            };
            let (x, y) = (4 + c as i32 * cell, header + r as i32 * cell);
            canvas.fill_rect(x, y, cell as u32, cell as u32, colour);
        }
    }
    let centre = (side - 1 - first) as i32;
    let (x, y) = (4 + centre * cell, header + centre * cell);
    canvas.outline_rect(x - 1, y - 1, cell as u32 + 2, cell as u32 + 2, 2, WHITE);
    colour_bar(
        &mut canvas,
        (4 + map + 8, header),
        map,
        sequential,
        false,
        (0.0, most),
    );
    canvas
}

/// Counts per offset from the goal, `(2·side − 1)²` of them, row-major, the goal in the centre.
struct Aligned {
    /// Cells entered.
    visits: Vec<f64>,
    /// Episodes in which the offset is a floor cell.
    floor: Vec<u32>,
}

fn aligned(episodes: &[GridEpisode], side: usize) -> Aligned {
    let span = 2 * side - 1;
    let mut visits = vec![0.0f64; span * span];
    let mut floor = vec![0u32; span * span];
    let at = |(r, c): (usize, usize), goal: (usize, usize)| {
        (r + side - 1 - goal.0) * span + (c + side - 1 - goal.1)
    };
    for e in episodes {
        for r in 0..side {
            for c in 0..side {
                if !e.is_wall((r, c)) {
                    floor[at((r, c), e.goal)] += 1;
                }
            }
        }
        for m in &e.moves {
            visits[at(m.entered, e.goal)] += 1.0;
        }
    }
    Aligned { visits, floor }
}

#[cfg(test)]
mod tests {
    use super::super::record;
    use super::*;

    #[test]
    fn every_arrival_on_a_goal_lands_in_the_centre() {
        let mut m = crate::maze::Maze::new(
            crate::maze::MazeConfig {
                size: 7,
                len: 150,
                ..Default::default()
            },
            8,
        );
        let mut random = crate::RandomPolicy::new(4, 8, 2);
        let eps = record(&mut m, &mut random, 5).unwrap();
        let goals: std::collections::HashSet<_> = eps.iter().map(|e| e.goal).collect();
        assert!(goals.len() > 1, "the episodes' goals differ");
        let a = aligned(&eps, 7);
        let centre = 6 * 13 + 6;
        let arrivals = eps
            .iter()
            .flat_map(|e| &e.moves)
            .filter(|m| m.reward > 0.0)
            .count();
        assert!(arrivals > 0);
        assert_eq!(a.visits[centre], arrivals as f64);
        assert_eq!(
            a.floor[centre], 8,
            "the goal is a floor cell in every episode"
        );
        assert_eq!(a.visits.iter().sum::<f64>(), (8 * 150) as f64);
        let pic = visits_picture(&eps, "maze/visits");
        assert!(pic.width() > 100 && pic.height() > 100);
    }
}
