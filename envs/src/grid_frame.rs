//! A grid world drawn as an RGB frame (what Gymnasium's `render_mode="rgb_array"` returns):
//! walls, floor, the goal cell and the agent, for one environment of a batch.
use crate::{Frame, GridEnv};

const WALL: [u8; 3] = [60, 60, 60];
const FLOOR: [u8; 3] = [235, 235, 235];
const GRID: [u8; 3] = [205, 205, 205];
const GOAL: [u8; 3] = [40, 200, 80];
const AGENT: [u8; 3] = [215, 40, 40];

/// Environment `env` of the batch, `cell` pixels per cell (at least 3): each cell a square
/// with a one-pixel border of grid line, the goal filled green, the agent a red disc.
pub fn grid_frame(grid: &dyn GridEnv, env: usize, cell: usize) -> Frame {
    let cell = cell.max(3);
    let n = grid.side();
    let side = n * cell;
    let mut rgb = vec![0u8; side * side * 3];
    let agent = grid.agent_cell(env);
    let goal = grid.goal_cell(env);
    let centre = (cell as f64 - 1.0) / 2.0;
    let radius = cell as f64 * 0.36;
    for r in 0..n {
        for c in 0..n {
            let base = if grid.is_wall(r, c) {
                WALL
            } else if (r, c) == goal {
                GOAL
            } else {
                FLOOR
            };
            for y in 0..cell {
                for x in 0..cell {
                    let border = x == 0 || y == 0;
                    let dx = x as f64 - centre;
                    let dy = y as f64 - centre;
                    let colour = if (r, c) == agent && dx * dx + dy * dy <= radius * radius {
                        AGENT
                    } else if border && base != WALL {
                        GRID
                    } else {
                        base
                    };
                    let at = ((r * cell + y) * side + c * cell + x) * 3;
                    rgb[at..at + 3].copy_from_slice(&colour);
                }
            }
        }
    }
    Frame {
        width: side,
        height: side,
        rgb,
    }
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
