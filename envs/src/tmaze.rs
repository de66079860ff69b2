//! The T-maze with a moving reward (Soltoggio et al. 2008, "Evolutionary advantages of
//! neuromodulated plasticity in dynamic, reward-based scenarios"), the task neuromodulated
//! plasticity was first shown to help on.
//!
//! An episode is `len` steps of trials. Each trial starts at home, `corridor` forward steps
//! from the junction (home, then `corridor − 1` corridor cells): the agent walks there,
//! turns left or right, and is paid on reaching the end of that arm, 1 at one end and 0.2 at
//! the other; the next step takes it home for the next trial. Turning in the corridor or walking on at
//! the junction is a crash: −0.4, and home. Which arm pays 1 is drawn at the start of each
//! episode and swaps after any trial with probability `switch`, so a good agent keeps
//! returning to the arm that paid 1 until it pays 0.2, then tries the other: it learns
//! within the episode.
//!
//! Observation (5): one-hot of where the agent is (home, corridor, junction, arm end), then
//! the reward of the step just taken. Actions (3): forward, left, right.
use crate::family::at_least_one;
use crate::rng::{self, Rng};
use crate::saved::{self, check_len};
use crate::{
    EnvError, EnvSpec, EnvState, Environment, Family, Params, Policy, PolicyError, Step,
    StepBuffers, VecEnv,
};
use rand::Rng as _;

pub const OBS_DIM: usize = 5;
pub const NUM_ACTIONS: usize = 3;
const FORWARD: u32 = 0;
const LEFT: u32 = 1;
/// Soltoggio et al.'s payoffs.
const HIGH: f32 = 1.0;
const LOW: f32 = 0.2;
const CRASH: f32 = -0.4;

pub const FAMILIES: &[Family] = &[Family {
    name: "tmaze",
    summary: "T-maze whose high-reward arm moves (Soltoggio et al. 2008)",
    params: "corridor=3, len=100, switch=0.05",
    parse: |params| Ok(Box::new(TMazeConfig::from_params(params)?)),
}];

#[derive(Debug, Clone, PartialEq)]
pub struct TMazeConfig {
    /// Forward steps from home to the junction.
    pub corridor: u32,
    /// Episode length in steps; the episode is truncated there.
    pub len: usize,
    /// Probability that the high-reward arm swaps after a trial.
    pub switch: f64,
}

impl TMazeConfig {
    fn from_params(params: &mut Params) -> Result<Self, EnvError> {
        let config = Self {
            corridor: params.get("corridor", 3)?,
            len: params.get("len", 100)?,
            switch: params.get("switch", 0.05)?,
        };
        if !(1..=1000).contains(&config.corridor) {
            return Err(params.invalid("corridor", &config.corridor, "must be 1 to 1000"));
        }
        if config.len == 0 {
            return Err(params.invalid("len", &config.len, "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&config.switch) {
            return Err(params.invalid("switch", &config.switch, "must be in [0, 1]"));
        }
        Ok(config)
    }

    /// Steps of a trial without a crash: the corridor, the turn, the way home.
    fn trial_len(&self) -> usize {
        self.corridor as usize + 2
    }
}

impl Environment for TMazeConfig {
    fn id(&self) -> String {
        format!(
            "tmaze:corridor={},len={},switch={}",
            self.corridor, self.len, self.switch
        )
    }

    fn build(&self, num_envs: usize) -> Result<Box<dyn VecEnv>, EnvError> {
        Ok(Box::new(TMaze::new(self.clone(), at_least_one(num_envs)?)))
    }

    /// 1,000, as the maze: 100-step episodes cost a plastic agent about as much.
    fn default_eval_episodes(&self) -> usize {
        1_000
    }

    fn policy_names(&self) -> &'static [&'static str] {
        &["win-stay", "oracle"]
    }

    fn reference_policies(&self) -> &'static [&'static str] {
        &["win-stay"]
    }

    fn policy(&self, name: &str, num_envs: usize, _: u64) -> Result<Box<dyn Policy>, PolicyError> {
        match name {
            "win-stay" => Ok(Box::new(WinStay::new(num_envs))),
            "oracle" => Err(PolicyError::Unavailable {
                policy: name.into(),
                env: self.id(),
                reason: "the oracle knows which arm pays, which no observation shows; its \
                         returns come from the T-maze itself (`plastic rollout tmaze --policy \
                         oracle`)"
                    .into(),
            }),
            _ => Err(PolicyError::unknown(name, self.id(), self.policy_names())),
        }
    }

    /// Where the agent is (one-hot), then the reward of the last step: a crash to the high arm.
    fn obs_bounds(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        Some((
            vec![0.0, 0.0, 0.0, 0.0, CRASH],
            vec![1.0, 1.0, 1.0, 1.0, HIGH],
        ))
    }

    /// Always the high arm, without a crash: 1 per trial completed in `len` steps.
    fn oracle_returns(&self, episodes: usize, _seed: u64) -> Option<Vec<f64>> {
        // The reward comes on the trial's second-to-last step.
        let paid = (self.len + 1) / self.trial_len();
        Some(vec![f64::from(HIGH) * paid as f64; episodes])
    }
}

/// The state of a batch: everything `step` reads besides the config.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Saved {
    t: usize,
    /// Per row, where in its trial the agent is: `0` home, `1..corridor` the corridor,
    /// `corridor` the junction, `corridor + 1` an arm's end.
    place: Vec<u32>,
    high_left: Vec<bool>,
    rngs: Vec<Rng>,
    obs: Vec<f32>,
}

/// `B` T-mazes stepped together. All share episode boundaries (fixed length).
pub struct TMaze {
    config: TMazeConfig,
    spec: EnvSpec,
    s: Saved,
    buf: StepBuffers,
}

impl TMaze {
    pub fn new(config: TMazeConfig, num_envs: usize) -> Self {
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
            config,
            spec,
            s: Saved {
                t: 0,
                place: Vec::new(),
                high_left: Vec::new(),
                rngs: Vec::new(),
                obs: Vec::new(),
            },
            buf: StepBuffers::new(num_envs, OBS_DIM, false),
        }
    }

    fn write_obs(&mut self, row: usize, reward: f32) {
        let place = self.s.place[row];
        let slot = match place {
            0 => 0,
            p if p < self.config.corridor => 1,
            p if p == self.config.corridor => 2,
            _ => 3,
        };
        let obs = self.buf.obs_row_mut(row);
        obs.fill(0.0);
        obs[slot] = 1.0;
        obs[4] = reward;
    }

    /// Takes row `row` home for a new trial; the high arm may swap.
    fn home(&mut self, row: usize) {
        self.s.place[row] = 0;
        if self.s.rngs[row].random_bool(self.config.switch) {
            self.s.high_left[row] = !self.s.high_left[row];
        }
    }

    fn start_episode(&mut self, row: usize) {
        self.s.place[row] = 0;
        self.s.high_left[row] = self.s.rngs[row].random_bool(0.5);
        self.write_obs(row, 0.0);
    }
}

impl VecEnv for TMaze {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn num_envs(&self) -> usize {
        self.buf.num_envs
    }

    fn reset(&mut self, seed: u64) -> Result<&[f32], EnvError> {
        let b = self.num_envs();
        self.s.rngs = rng::streams(seed, b);
        (self.s.place, self.s.high_left, self.s.t) = (vec![0; b], vec![false; b], 0);
        for row in 0..b {
            self.start_episode(row);
        }
        Ok(&self.buf.obs)
    }

    fn step(&mut self, actions: &[u32]) -> Result<Step<'_>, EnvError> {
        if self.s.rngs.is_empty() {
            return Err(EnvError::NotReset);
        }
        self.buf.check_actions(actions, NUM_ACTIONS)?;
        self.s.t += 1;
        let ended = self.s.t == self.config.len;
        let junction = self.config.corridor;
        for (row, &action) in actions.iter().enumerate() {
            let place = self.s.place[row];
            let reward = if place > junction {
                self.home(row);
                0.0
            } else if (place < junction) == (action == FORWARD) {
                self.s.place[row] += 1;
                if place < junction {
                    0.0
                } else if (action == LEFT) == self.s.high_left[row] {
                    HIGH
                } else {
                    LOW
                }
            } else {
                self.home(row);
                CRASH
            };
            self.buf.rewards[row] = reward;
            self.buf.truncated[row] = ended;
            self.write_obs(row, reward);
            if ended {
                self.buf.save_final_obs(row);
                self.start_episode(row);
            }
        }
        if ended {
            self.s.t = 0;
        }
        Ok(self.buf.view())
    }

    fn save_state(&self) -> Option<EnvState> {
        let s = Saved {
            obs: self.buf.obs.clone(),
            ..self.s.clone()
        };
        Some(saved::encode(&s))
    }

    fn load_state(&mut self, state: &EnvState) -> Result<(), EnvError> {
        let id = &self.spec.id;
        let s: Saved = saved::decode(id, state)?;
        let b = self.num_envs();
        check_len(id, "rngs", s.rngs.len(), b)?;
        check_len(id, "place", s.place.len(), b)?;
        check_len(id, "high_left", s.high_left.len(), b)?;
        check_len(id, "obs", s.obs.len(), b * OBS_DIM)?;
        if s.t >= self.config.len || s.place.iter().any(|&p| p > self.config.corridor + 1) {
            return Err(saved::bad(id, "its step or places are out of range".into()));
        }
        self.buf.obs.clone_from(&s.obs);
        self.s = s;
        Ok(())
    }
}

/// Win-stay, lose-shift: forward along the corridor; at the junction, the arm taken last if
/// it paid 1, the other one if it paid less (left in a new episode). What an agent that
/// learns within the episode should at least match.
struct WinStay {
    /// Per row: the arm to take at the junction.
    left: Vec<bool>,
    /// Per row: the arm taken at the last junction, until its payoff is seen.
    turned: Vec<Option<bool>>,
}

impl WinStay {
    fn new(num_envs: usize) -> Self {
        Self {
            left: vec![true; num_envs],
            turned: vec![None; num_envs],
        }
    }
}

impl Policy for WinStay {
    fn act(&mut self, obs: &[f32], actions: &mut [u32]) {
        for (row, (a, o)) in actions.iter_mut().zip(obs.chunks(OBS_DIM)).enumerate() {
            if let Some(left) = self.turned[row].take() {
                // This observation shows the arm's end and its payoff.
                self.left[row] = if o[4] >= HIGH { left } else { !left };
            }
            *a = if o[2] == 1.0 {
                self.turned[row] = Some(self.left[row]);
                if self.left[row] {
                    LEFT
                } else {
                    LEFT + 1
                }
            } else {
                FORWARD
            };
        }
    }

    fn episodes_ended(&mut self, done: &[bool]) {
        for (row, _) in done.iter().enumerate().filter(|(_, &d)| d) {
            (self.left[row], self.turned[row]) = (true, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::run_episodes;
    use crate::{registry, RandomPolicy};

    fn returns(id: &str, policy: &str, episodes: usize) -> f64 {
        let env = registry::parse(id).unwrap();
        let mut batch = env.build(8).unwrap();
        let mut p: Box<dyn Policy> = match policy {
            "random" => Box::new(RandomPolicy::new(NUM_ACTIONS, 8, 1)),
            name => env.policy(name, 8, 1).unwrap(),
        };
        let stats = run_episodes(batch.as_mut(), p.as_mut(), episodes, 3).unwrap();
        stats.episode_return.mean
    }

    #[test]
    fn win_stay_loses_at_most_one_trial_when_the_arm_stays() {
        let id = "tmaze:corridor=2,len=40,switch=0";
        let oracle = registry::parse(id).unwrap().oracle_returns(1, 0).unwrap()[0];
        // 40 steps of 4-step trials: 10 paid.
        assert_eq!(oracle, 10.0);
        let mean = returns(id, "win-stay", 400);
        // Half the episodes start on the low arm and lose 0.8 once.
        assert!((mean - (oracle - 0.4)).abs() < 0.1, "{mean}");
        assert!(returns(id, "random", 400) < 0.0, "random mostly crashes");
    }

    #[test]
    fn a_moving_arm_costs_win_stay_a_trial_per_swap() {
        let (steady, moving) = (
            returns("tmaze:switch=0", "win-stay", 400),
            returns("tmaze:switch=0.3", "win-stay", 400),
        );
        assert!(moving < steady - 1.0, "{steady} {moving}");
    }

    #[test]
    fn crashes_cost_and_send_the_agent_home() {
        let mut env = TMaze::new(
            TMazeConfig {
                corridor: 2,
                len: 10,
                switch: 0.0,
            },
            1,
        );
        assert_eq!(env.reset(0).unwrap(), &[1.0, 0.0, 0.0, 0.0, 0.0]);
        let s = env.step(&[LEFT]).unwrap();
        assert_eq!(
            (s.obs, s.rewards),
            (&[1.0, 0.0, 0.0, 0.0, CRASH][..], &[CRASH][..])
        );
        env.step(&[FORWARD]).unwrap();
        let s = env.step(&[FORWARD]).unwrap();
        assert_eq!(s.obs, &[0.0, 0.0, 1.0, 0.0, 0.0], "at the junction");
        let s = env.step(&[FORWARD]).unwrap();
        assert_eq!(s.obs, &[1.0, 0.0, 0.0, 0.0, CRASH], "walked into the wall");
    }
}
