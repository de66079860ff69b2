//! A grid world drawn on a canvas: walls, floor, the goal and the agent. The one place the
//! grid's colours are defined; every grid picture and frame draws its board here.
use super::Cell;
use crate::draw::{Canvas, Rgb};
use crate::{Frame, GridEnv};

pub const WALL: Rgb = [60, 60, 60];
pub const FLOOR: Rgb = [240, 240, 240];
const GRID: Rgb = [210, 210, 210];
pub const GOAL: Rgb = [40, 200, 80];
/// The goal in the frame the agent reaches it.
pub const GOAL_REACHED: Rgb = [250, 215, 40];
pub const AGENT: Rgb = [215, 40, 40];

/// Where a board sits on a canvas: `cell` pixels per cell, top left corner at `origin`.
#[derive(Debug, Clone, Copy)]
pub struct Board {
    pub side: usize,
    pub cell: i32,
    pub origin: (i32, i32),
}

impl Board {
    pub fn pixels(&self) -> i32 {
        self.side as i32 * self.cell
    }

    /// Top left pixel of a cell.
    pub fn corner(&self, (r, c): Cell) -> (i32, i32) {
        (
            self.origin.0 + c as i32 * self.cell,
            self.origin.1 + r as i32 * self.cell,
        )
    }

    pub fn centre(&self, cell: Cell) -> (i32, i32) {
        let (x, y) = self.corner(cell);
        (x + self.cell / 2, y + self.cell / 2)
    }

    /// Walls and floor (with grid lines), and the goal filled with `goal_colour`.
    pub fn draw(
        &self,
        canvas: &mut Canvas,
        is_wall: impl Fn(Cell) -> bool,
        goal: Option<(Cell, Rgb)>,
    ) {
        for r in 0..self.side {
            for c in 0..self.side {
                let (x, y) = self.corner((r, c));
                let size = self.cell as u32;
                if is_wall((r, c)) {
                    canvas.fill_rect(x, y, size, size, WALL);
                } else {
                    canvas.fill_rect(x, y, size, size, GRID);
                    canvas.fill_rect(x + 1, y + 1, size - 1, size - 1, FLOOR);
                }
            }
        }
        if let Some((cell, colour)) = goal {
            let (x, y) = self.corner(cell);
            canvas.fill_rect(
                x + 1,
                y + 1,
                self.cell as u32 - 1,
                self.cell as u32 - 1,
                colour,
            );
        }
    }

    pub fn agent(&self, canvas: &mut Canvas, at: Cell) {
        canvas.disc(self.centre(at), (self.cell as f64 * 0.7) as u32, AGENT);
    }
}

/// Environment `env` of the batch, `cell` pixels per cell (at least 3): each cell a square
/// with a one-pixel border of grid line, the goal filled green, the agent a red disc (what the
/// Python module's `render()` returns).
pub fn grid_frame(grid: &dyn GridEnv, env: usize, cell: usize) -> Frame {
    let board = Board {
        side: grid.side(),
        cell: cell.max(3) as i32,
        origin: (0, 0),
    };
    let side = board.pixels() as usize;
    let mut canvas = Canvas::new(side, side, FLOOR);
    board.draw(
        &mut canvas,
        |(r, c)| grid.is_wall(r, c),
        Some((grid.goal_cell(env), GOAL)),
    );
    board.agent(&mut canvas, grid.agent_cell(env));
    canvas.into_frame()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VecEnv;

    #[test]
    fn the_maze_is_drawn_with_its_walls_goal_and_agent() {
        let env = crate::registry::parse("maze:size=9").unwrap();
        let mut grid = env.build_grid(2).unwrap().unwrap();
        grid.reset(3).unwrap();
        let f = grid_frame(grid.as_ref(), 1, 8);
        assert_eq!((f.width, f.height, f.rgb.len()), (72, 72, 72 * 72 * 3));
        let pixel = |(r, c): (usize, usize), y: usize, x: usize| {
            let at = ((r * 8 + y) * 72 + c * 8 + x) * 3;
            [f.rgb[at], f.rgb[at + 1], f.rgb[at + 2]]
        };
        assert_eq!(pixel((0, 0), 4, 4), WALL);
        assert_eq!(pixel(grid.goal_cell(1), 4, 4), GOAL);
        assert_eq!(pixel(grid.agent_cell(1), 4, 4), AGENT);
        assert_eq!(pixel(grid.agent_cell(1), 1, 1), FLOOR);
    }
}
