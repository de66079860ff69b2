//! Grid-world episodes (the maze's) recorded cell by cell, and the pictures drawn from them:
//! the board, an animation of one episode, one panel per trip to the goal, and where agents
//! walk relative to the goal.
mod animation;
mod board;
mod trips;
mod visits;

pub use animation::ANIMATION_FPS;
pub use board::grid_frame;
pub use visits::visits_picture;

use crate::{EnvError, GridEnv, Policy};

/// `(row, col)`.
pub type Cell = (usize, usize);

/// One step of a recorded episode.
#[derive(Debug, Clone, PartialEq)]
pub struct GridMove {
    /// Where the move took the agent (the goal when it paid, where it stood when it bumped).
    pub entered: Cell,
    /// Where it stands after the step: elsewhere when the goal sent it on (the maze's teleport).
    pub stands: Cell,
    pub reward: f32,
}

/// One whole episode of one row of a [`GridEnv`], as it looked.
#[derive(Debug, Clone, PartialEq)]
pub struct GridEpisode {
    pub side: usize,
    /// Row-major, `side × side`.
    pub walls: Vec<bool>,
    pub start: Cell,
    pub goal: Cell,
    pub moves: Vec<GridMove>,
}

/// Episodes that have not ended by then are kept as they stand.
const MAX_STEPS: usize = 100_000;

/// Runs one episode in each row of `grid` with `policy` from `reset(seed)`, recording every move.
pub fn record(
    grid: &mut dyn GridEnv,
    policy: &mut dyn Policy,
    seed: u64,
) -> Result<Vec<GridEpisode>, EnvError> {
    let rows = grid.num_envs();
    let mut obs = grid.reset(seed)?.to_vec();
    let side = grid.side();
    let walls: Vec<bool> = (0..side * side)
        .map(|i| grid.is_wall(i / side, i % side))
        .collect();
    let mut episodes: Vec<GridEpisode> = (0..rows)
        .map(|row| GridEpisode {
            side,
            walls: walls.clone(),
            start: grid.agent_cell(row),
            goal: grid.goal_cell(row),
            moves: Vec::new(),
        })
        .collect();
    let mut open = vec![true; rows];
    let mut actions = vec![0u32; rows];
    for _ in 0..MAX_STEPS {
        if !open.contains(&true) {
            break;
        }
        policy.act(&obs, &mut actions);
        let step = grid.step(&actions)?;
        let done: Vec<bool> = (0..rows).map(|r| step.done(r)).collect();
        let rewards = step.rewards.to_vec();
        obs.copy_from_slice(step.obs);
        for row in 0..rows {
            if !open[row] {
                continue;
            }
            let entered = grid.entered_cell(row);
            // A row that ended is in its next episode already: its last move is where it ended.
            let stands = if done[row] {
                entered
            } else {
                grid.agent_cell(row)
            };
            episodes[row].moves.push(GridMove {
                entered,
                stands,
                reward: rewards[row],
            });
            open[row] &= !done[row];
        }
        policy.episodes_ended(&done);
    }
    Ok(episodes)
}

/// A stretch of an episode from where the agent stood to the goal, or to the episode's end.
#[derive(Debug, Clone, PartialEq)]
pub struct Trip {
    /// The cells walked, the first where it began.
    pub path: Vec<Cell>,
    pub reached_goal: bool,
}

impl GridEpisode {
    pub fn is_wall(&self, (r, c): Cell) -> bool {
        self.walls[r * self.side + c]
    }

    pub fn total_reward(&self) -> f64 {
        self.moves.iter().map(|m| f64::from(m.reward)).sum()
    }

    /// The episode cut at every arrival on the goal.
    pub fn trips(&self) -> Vec<Trip> {
        let mut trips = Vec::new();
        let mut path = vec![self.start];
        for m in &self.moves {
            path.push(m.entered);
            if m.entered == self.goal {
                trips.push(Trip {
                    path: std::mem::replace(&mut path, vec![m.stands]),
                    reached_goal: true,
                });
            }
        }
        if path.len() > 1 {
            trips.push(Trip {
                path,
                reached_goal: false,
            });
        }
        trips
    }

    /// Fewest moves from `from` to the goal (walls block), `None` if it cannot be reached.
    pub fn shortest_to_goal(&self, from: Cell) -> Option<usize> {
        let n = self.side;
        let mut dist = vec![usize::MAX; n * n];
        let goal = self.goal.0 * n + self.goal.1;
        dist[goal] = 0;
        let mut queue = std::collections::VecDeque::from([goal]);
        while let Some(cell) = queue.pop_front() {
            let (r, c) = (cell / n, cell % n);
            let next = [
                (r > 0).then(|| cell - n),
                (r + 1 < n).then(|| cell + n),
                (c > 0).then(|| cell - 1),
                (c + 1 < n).then(|| cell + 1),
            ];
            for x in next.into_iter().flatten() {
                if !self.walls[x] && dist[x] == usize::MAX {
                    dist[x] = dist[cell] + 1;
                    queue.push_back(x);
                }
            }
        }
        Some(dist[from.0 * n + from.1]).filter(|&d| d != usize::MAX)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::maze::{Maze, MazeConfig};

    /// The same actions, again and again, in every row.
    pub struct Scripted(pub Vec<u32>, pub usize);

    impl Policy for Scripted {
        fn act(&mut self, _obs: &[f32], actions: &mut [u32]) {
            actions.fill(self.0[self.1 % self.0.len()]);
            self.1 += 1;
        }
    }

    pub fn maze(size: usize, len: usize) -> Maze {
        Maze::new(
            MazeConfig {
                size,
                len,
                ..MazeConfig::default()
            },
            1,
        )
    }

    #[test]
    fn an_episode_records_each_move_and_ends_where_the_last_move_led() {
        // Right, down, down from the centre of a 9×9 maze: (4,4) → (4,5) → (5,5) → (6,5).
        let mut m = maze(9, 3);
        let e = record(&mut m, &mut Scripted(vec![3, 1, 1], 0), 7).unwrap();
        let e = &e[0];
        assert_eq!(e.start, (4, 4));
        assert_eq!(e.moves.len(), 3);
        let goal = e.goal;
        let expected = [(4, 5), (5, 5), (6, 5)];
        for (m, want) in e.moves.iter().zip(expected) {
            if m.entered == goal {
                break;
            }
            assert_eq!(m.entered, want);
        }
        let last = e.moves.last().unwrap();
        assert_eq!(
            last.stands, last.entered,
            "the final move shows the end, not a reset"
        );
        // The maze has started its next episode: another goal (seed 7), the agent at the centre.
        assert_eq!(m.agent_cell(0), (4, 4));
    }

    #[test]
    fn trips_end_on_the_goal_and_begin_where_the_agent_was_sent() {
        let mut m = maze(7, 300);
        let mut random = crate::RandomPolicy::new(4, 1, 3);
        let e = &record(&mut m, &mut random, 1).unwrap()[0];
        let trips = e.trips();
        let paid = e.moves.iter().filter(|m| m.reward > 0.0).count();
        assert!(
            paid >= 2,
            "a random walk of 300 steps finds a 7×7 maze's goal"
        );
        assert_eq!(trips.iter().filter(|t| t.reached_goal).count(), paid);
        assert_eq!(trips[0].path[0], e.start);
        let moves: usize = trips.iter().map(|t| t.path.len() - 1).sum();
        assert_eq!(moves, e.moves.len());
        for t in trips.iter().filter(|t| t.reached_goal) {
            assert_eq!(*t.path.last().unwrap(), e.goal);
            let shortest = e.shortest_to_goal(t.path[0]).unwrap();
            assert!(t.path.len() > shortest);
        }
        assert_eq!(e.shortest_to_goal(e.goal), Some(0));
        assert_eq!(e.shortest_to_goal((0, 0)), None);
    }
}
