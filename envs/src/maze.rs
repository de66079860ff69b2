//! The meta-learning grid maze with a hidden reward (Miconi et al. 2018 §4.5; Backpropamine §4.2).
//!
//! Within an episode the reward sits in one invisible cell. Entering it pays `reward` and
//! teleports the agent to a random free cell, so a good agent finds the cell once and then keeps
//! walking back to it: it has to learn within the episode. Exact rules: `docs/maze.md`.
use crate::family::at_least_one;
use crate::rng::{self, Rng};
use crate::saved::{self, check_len};
use crate::{
    EnvError, EnvSpec, EnvState, Environment, Family, GridEnv, Params, Step, StepBuffers, VecEnv,
};
use rand::Rng as _;
use std::collections::VecDeque;

/// Observation length: 3×3 neighbourhood, bias, time, previous reward, previous action one-hot.
pub const OBS_DIM: usize = 16;
/// Up, down, left, right.
pub const NUM_ACTIONS: usize = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct MazeConfig {
    /// Side length, odd, at least 5.
    pub size: usize,
    /// Episode length `T`: the episode is truncated after this many steps.
    pub len: usize,
    /// Paid on entering the reward cell.
    pub reward: f32,
    /// Subtracted when the agent walks into a wall.
    pub wall_penalty: f32,
}

impl Default for MazeConfig {
    fn default() -> Self {
        Self {
            size: 13,
            len: 200,
            reward: 10.0,
            wall_penalty: 0.0,
        }
    }
}

pub const FAMILIES: &[Family] = &[Family {
    name: "maze",
    summary: "grid maze with a hidden reward cell (Miconi et al. 2018/2019)",
    params: "size=13, len=200, reward=10, wall_penalty=0",
    parse: |params| Ok(Box::new(MazeConfig::from_params(params)?)),
}];

impl MazeConfig {
    pub fn from_params(params: &mut Params) -> Result<Self, EnvError> {
        let d = Self::default();
        let config = Self {
            size: params.get("size", d.size)?,
            len: params.get("len", d.len)?,
            reward: params.get("reward", d.reward)?,
            wall_penalty: params.get("wall_penalty", d.wall_penalty)?,
        };
        if !(5..=1001).contains(&config.size) || config.size.is_multiple_of(2) {
            return Err(params.invalid("size", &config.size, "must be odd, from 5 to 1001"));
        }
        if config.len == 0 {
            return Err(params.invalid("len", &config.len, "must be at least 1"));
        }
        for (key, value) in [
            ("reward", config.reward),
            ("wall_penalty", config.wall_penalty),
        ] {
            if !value.is_finite() {
                return Err(params.invalid(key, &value, "must be a finite number"));
            }
        }
        // The oracle's figure, and "% of the oracle", only mean something for a positive reward.
        if config.reward <= 0.0 {
            return Err(params.invalid("reward", &config.reward, "must be positive"));
        }
        if config.wall_penalty < 0.0 {
            return Err(params.invalid(
                "wall_penalty",
                &config.wall_penalty,
                "must be 0 (none) or positive (subtracted on a bump)",
            ));
        }
        Ok(config)
    }
}

impl Environment for MazeConfig {
    fn id(&self) -> String {
        format!(
            "maze:size={},len={},reward={},wall_penalty={}",
            self.size, self.len, self.reward, self.wall_penalty
        )
    }

    fn build(&self, num_envs: usize) -> Result<Box<dyn VecEnv>, EnvError> {
        Ok(Box::new(Maze::new(self.clone(), at_least_one(num_envs)?)))
    }

    /// 1,000: an H 100 plastic agent takes about 20 s on 9×9, 100-step episodes and 45 s on
    /// the default 13×13, 200-step ones on one CPU core (10,000 took over 5 minutes).
    fn default_eval_episodes(&self) -> usize {
        1_000
    }

    fn policy_names(&self) -> &'static [&'static str] {
        &["oracle"]
    }

    fn policy(
        &self,
        name: &str,
        _num_envs: usize,
        _seed: u64,
    ) -> Result<Box<dyn crate::Policy>, crate::PolicyError> {
        Err(match name {
            "oracle" => crate::PolicyError::Unavailable {
                policy: name.into(),
                env: self.id(),
                reason: "the oracle knows where the reward is, which no observation shows; \
                         its returns come from the maze itself (`plastic rollout maze --policy \
                         oracle`)"
                    .into(),
            },
            _ => crate::PolicyError::unknown(name, self.id(), self.policy_names()),
        })
    }

    fn oracle_returns(&self, episodes: usize, seed: u64) -> Option<Vec<f64>> {
        Some(oracle_returns(self, episodes, seed))
    }

    /// Walls, bias, time and the previous action in [0, 1]; the previous reward from the wall
    /// penalty to the reward.
    fn obs_bounds(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        let mut low = vec![0.0; OBS_DIM];
        let mut high = vec![1.0; OBS_DIM];
        (low[11], high[11]) = (-self.wall_penalty, self.reward);
        Some((low, high))
    }

    fn build_grid(&self, num_envs: usize) -> Option<Result<Box<dyn GridEnv>, EnvError>> {
        Some(at_least_one(num_envs).map(|n| Box::new(Maze::new(self.clone(), n)) as _))
    }
}

/// The fixed walls of a maze of a given size. Cells are numbered `row * size + col`.
#[derive(Debug, Clone)]
pub struct Layout {
    size: usize,
    wall: Vec<bool>,
    free: Vec<u32>,
}

impl Layout {
    pub fn new(size: usize) -> Self {
        let centre = size / 2;
        let is_wall = |r: usize, c: usize| {
            let border = r == 0 || c == 0 || r == size - 1 || c == size - 1;
            let pillar =
                r.is_multiple_of(2) && c.is_multiple_of(2) && !(r == centre && c == centre);
            border || pillar
        };
        let wall: Vec<bool> = (0..size * size)
            .map(|i| is_wall(i / size, i % size))
            .collect();
        let free = (0..size * size)
            .filter(|&i| !wall[i])
            .map(|i| i as u32)
            .collect();
        Self { size, wall, free }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn is_wall(&self, row: usize, col: usize) -> bool {
        self.wall[row * self.size + col]
    }

    /// Free cells as `(row, col)`, in row-major order.
    pub fn free_cells(&self) -> Vec<(usize, usize)> {
        self.free.iter().map(|&i| self.coords(i)).collect()
    }

    pub fn centre(&self) -> (usize, usize) {
        (self.size / 2, self.size / 2)
    }

    fn coords(&self, cell: u32) -> (usize, usize) {
        (cell as usize / self.size, cell as usize % self.size)
    }

    /// Cell index change of each action.
    fn offsets(&self) -> [isize; NUM_ACTIONS] {
        let n = self.size as isize;
        [-n, n, -1, 1]
    }

    /// Shortest-path length from every cell to `target` (`u32::MAX` for walls).
    pub fn distances_to(&self, target: (usize, usize)) -> Vec<u32> {
        let mut dist = vec![u32::MAX; self.wall.len()];
        let start = target.0 * self.size + target.1;
        dist[start] = 0;
        let mut queue = VecDeque::from([start]);
        while let Some(cell) = queue.pop_front() {
            for off in self.offsets() {
                let next = cell.wrapping_add_signed(off);
                if !self.wall[next] && dist[next] == u32::MAX {
                    dist[next] = dist[cell] + 1;
                    queue.push_back(next);
                }
            }
        }
        dist
    }
}

/// `B` mazes stepped together. All share episode boundaries (fixed length `T`).
pub struct Maze {
    config: MazeConfig,
    spec: EnvSpec,
    layout: Layout,
    /// The 3×3 wall neighbourhood of every cell, precomputed (it is most of the observation).
    neighbourhood: Vec<[f32; 9]>,
    centre: u32,
    /// Index into `layout.free` of the centre, which the reward cell may not be.
    centre_free_idx: usize,
    t: usize,
    agent: Vec<u32>,
    /// The cell each row's last move led to, before a teleport or a new episode (for pictures).
    entered: Vec<u32>,
    /// Index into `layout.free`, so teleports can skip it without a search.
    reward_idx: Vec<u32>,
    rngs: Vec<Rng>,
    buf: StepBuffers,
}

impl Maze {
    pub fn new(config: MazeConfig, num_envs: usize) -> Self {
        let layout = Layout::new(config.size);
        let n = config.size;
        let neighbourhood = (0..n * n)
            .map(|cell| {
                let mut block = [1.0f32; 9];
                let (r, c) = (cell / n, cell % n);
                if r > 0 && c > 0 && r < n - 1 && c < n - 1 {
                    for (k, v) in block.iter_mut().enumerate() {
                        *v = f32::from(u8::from(layout.is_wall(r + k / 3 - 1, c + k % 3 - 1)));
                    }
                }
                block
            })
            .collect();
        let centre = ((n / 2) * n + n / 2) as u32;
        let centre_free_idx = layout
            .free
            .iter()
            .position(|&c| c == centre)
            .expect("centre is free");
        let spec = EnvSpec {
            id: config.id(),
            obs_dim: OBS_DIM,
            num_actions: NUM_ACTIONS,
            action_start: 0,
            action_box: None,
            image: None,
            episode_len: Some(config.len),
        };
        Self {
            spec,
            neighbourhood,
            centre,
            centre_free_idx,
            t: 0,
            agent: Vec::new(),
            entered: Vec::new(),
            reward_idx: Vec::new(),
            rngs: Vec::new(),
            buf: StepBuffers::new(num_envs, OBS_DIM, false),
            layout,
            config,
        }
    }

    pub fn config(&self) -> &MazeConfig {
        &self.config
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Steps taken in the current episode.
    pub fn t(&self) -> usize {
        self.t
    }

    fn start_episode(&mut self, row: usize) {
        let free = self.layout.free.len();
        // Uniform over free cells other than the centre.
        let mut idx = self.rngs[row].random_range(0..free - 1);
        if idx >= self.centre_free_idx {
            idx += 1;
        }
        self.reward_idx[row] = idx as u32;
        self.agent[row] = self.centre;
    }

    fn write_obs(&mut self, row: usize, reward: f32, action: Option<u32>) {
        let t_frac = self.t as f32 / self.config.len as f32;
        let block = self.neighbourhood[self.agent[row] as usize];
        let obs = self.buf.obs_row_mut(row);
        obs[..9].copy_from_slice(&block);
        obs[9] = 1.0;
        obs[10] = t_frac;
        obs[11] = reward;
        obs[12..16].fill(0.0);
        if let Some(a) = action {
            obs[12 + a as usize] = 1.0;
        }
    }
}

impl GridEnv for Maze {
    fn side(&self) -> usize {
        self.config.size
    }

    fn is_wall(&self, row: usize, col: usize) -> bool {
        self.layout.is_wall(row, col)
    }

    fn agent_cell(&self, env: usize) -> (usize, usize) {
        self.layout.coords(self.agent[env])
    }

    fn entered_cell(&self, env: usize) -> (usize, usize) {
        self.layout.coords(self.entered[env])
    }

    /// The hidden reward cell.
    fn goal_cell(&self, env: usize) -> (usize, usize) {
        self.layout
            .coords(self.layout.free[self.reward_idx[env] as usize])
    }
}

/// What `save_state` keeps: everything `step` reads besides the config and layout.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    t: usize,
    agent: Vec<u32>,
    reward_idx: Vec<u32>,
    rngs: Vec<Rng>,
    obs: Vec<f32>,
}

impl VecEnv for Maze {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn num_envs(&self) -> usize {
        self.buf.num_envs
    }

    fn reset(&mut self, seed: u64) -> Result<&[f32], EnvError> {
        let b = self.num_envs();
        self.rngs = rng::streams(seed, b);
        self.agent = vec![self.centre; b];
        self.entered = vec![self.centre; b];
        self.reward_idx = vec![0; b];
        self.t = 0;
        for row in 0..b {
            self.start_episode(row);
            self.write_obs(row, 0.0, None);
        }
        Ok(&self.buf.obs)
    }

    fn step(&mut self, actions: &[u32]) -> Result<Step<'_>, EnvError> {
        if self.rngs.is_empty() {
            return Err(EnvError::NotReset);
        }
        self.buf.check_actions(actions, NUM_ACTIONS)?;
        self.t += 1;
        let ended = self.t == self.config.len;
        let offsets = self.layout.offsets();
        let free = self.layout.free.len();
        for (row, &action) in actions.iter().enumerate() {
            let here = self.agent[row] as usize;
            let there = here.wrapping_add_signed(offsets[action as usize]);
            let mut reward = 0.0;
            self.entered[row] = if self.layout.wall[there] { here } else { there } as u32;
            if self.layout.wall[there] {
                reward -= self.config.wall_penalty;
            } else {
                self.agent[row] = there as u32;
                let reward_idx = self.reward_idx[row] as usize;
                if self.layout.free[reward_idx] as usize == there {
                    reward += self.config.reward;
                    // Uniform over free cells other than the reward cell.
                    let mut idx = self.rngs[row].random_range(0..free - 1);
                    if idx >= reward_idx {
                        idx += 1;
                    }
                    self.agent[row] = self.layout.free[idx];
                }
            }
            self.buf.rewards[row] = reward;
            self.buf.truncated[row] = ended;
            self.write_obs(row, reward, Some(action));
            if ended {
                self.buf.save_final_obs(row);
            }
        }
        if ended {
            self.t = 0;
            for row in 0..actions.len() {
                self.start_episode(row);
                self.write_obs(row, 0.0, None);
            }
        }
        Ok(self.buf.view())
    }

    fn save_state(&self) -> Option<EnvState> {
        Some(saved::encode(&Saved {
            t: self.t,
            agent: self.agent.clone(),
            reward_idx: self.reward_idx.clone(),
            rngs: self.rngs.clone(),
            obs: self.buf.obs.clone(),
        }))
    }

    fn load_state(&mut self, state: &EnvState) -> Result<(), EnvError> {
        let id = &self.spec.id;
        let s: Saved = saved::decode(id, state)?;
        let b = self.num_envs();
        check_len(id, "rngs", s.rngs.len(), b)?;
        check_len(id, "agent", s.agent.len(), b)?;
        check_len(id, "reward_idx", s.reward_idx.len(), b)?;
        check_len(id, "obs", s.obs.len(), b * OBS_DIM)?;
        let cells = self.layout.wall.len();
        let free = self.layout.free.len();
        if s.t >= self.config.len
            || s.agent
                .iter()
                .any(|&c| c as usize >= cells || self.layout.wall[c as usize])
            || s.reward_idx.iter().any(|&i| i as usize >= free)
        {
            return Err(saved::bad(
                id,
                "its step, agent cells or reward cells are out of range".into(),
            ));
        }
        self.entered = s.agent.clone();
        (self.t, self.agent, self.reward_idx, self.rngs) = (s.t, s.agent, s.reward_idx, s.rngs);
        self.buf.obs = s.obs;
        Ok(())
    }
}

/// Mean total reward per episode of an agent that knows the reward cell and always walks a
/// shortest path to it: the ceiling a learning agent is measured against.
pub fn oracle_returns(config: &MazeConfig, episodes: usize, seed: u64) -> Vec<f64> {
    let batch = episodes.clamp(1, 256);
    let mut maze = Maze::new(config.clone(), batch);
    maze.reset(seed).expect("a fresh maze resets");
    let layout = maze.layout().clone();
    let mut dist: Vec<Vec<u32>> = (0..batch)
        .map(|r| layout.distances_to(maze.goal_cell(r)))
        .collect();
    let mut returns = Vec::with_capacity(episodes);
    let mut totals = vec![0.0f64; batch];
    let mut actions = vec![0u32; batch];
    let offsets = layout.offsets();
    while returns.len() < episodes {
        for (row, action) in actions.iter_mut().enumerate() {
            let (r, c) = maze.agent_cell(row);
            let here = r * layout.size + c;
            *action = (0..NUM_ACTIONS as u32)
                .min_by_key(|&a| dist[row][here.wrapping_add_signed(offsets[a as usize])])
                .expect("four actions");
        }
        let step = maze.step(&actions).expect("valid actions");
        let ended = step.truncated[0];
        for (total, &r) in totals.iter_mut().zip(step.rewards) {
            *total += f64::from(r);
        }
        if ended {
            returns.extend(totals.iter().take(episodes - returns.len()));
            totals.fill(0.0);
            dist = (0..batch)
                .map(|r| layout.distances_to(maze.goal_cell(r)))
                .collect();
        }
    }
    returns
}
