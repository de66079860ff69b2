use crate::EnvError;

/// The outputs of one batched step, borrowed from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// `[B × obs_dim]`: current observations (first of the next episode for rows that ended).
    pub obs: &'a [f32],
    /// `[B × obs_dim]`: for rows that ended this step, the observation they ended on (what a
    /// critic bootstraps from on truncation). Other rows hold stale values.
    pub final_obs: &'a [f32],
    pub rewards: &'a [f32],
    /// The episode reached a terminal state (no bootstrapping).
    pub terminated: &'a [bool],
    /// The episode was cut by a time limit (bootstrap from `final_obs`).
    pub truncated: &'a [bool],
    /// Per-step pseudo-regret of the action just taken, for environments that know it (bandits).
    pub regret: Option<&'a [f32]>,
}

impl Step<'_> {
    pub fn done(&self, row: usize) -> bool {
        self.terminated[row] || self.truncated[row]
    }

    pub fn obs_row(&self, row: usize) -> &[f32] {
        let d = self.obs.len() / self.rewards.len();
        &self.obs[row * d..(row + 1) * d]
    }

    pub fn final_obs_row(&self, row: usize) -> &[f32] {
        let d = self.final_obs.len() / self.rewards.len();
        &self.final_obs[row * d..(row + 1) * d]
    }
}

/// The buffers every environment fills, in one place so each env only writes its own logic.
#[derive(Debug, Clone)]
pub struct StepBuffers {
    pub num_envs: usize,
    pub obs_dim: usize,
    pub obs: Vec<f32>,
    pub final_obs: Vec<f32>,
    pub rewards: Vec<f32>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
    pub regret: Option<Vec<f32>>,
}

impl StepBuffers {
    pub fn new(num_envs: usize, obs_dim: usize, with_regret: bool) -> Self {
        Self {
            num_envs,
            obs_dim,
            obs: vec![0.0; num_envs * obs_dim],
            final_obs: vec![0.0; num_envs * obs_dim],
            rewards: vec![0.0; num_envs],
            terminated: vec![false; num_envs],
            truncated: vec![false; num_envs],
            regret: with_regret.then(|| vec![0.0; num_envs]),
        }
    }

    pub fn obs_row_mut(&mut self, row: usize) -> &mut [f32] {
        &mut self.obs[row * self.obs_dim..(row + 1) * self.obs_dim]
    }

    /// Copies row `row`'s current observation to `final_obs` before the row is reset.
    pub fn save_final_obs(&mut self, row: usize) {
        let range = row * self.obs_dim..(row + 1) * self.obs_dim;
        self.final_obs[range.clone()].copy_from_slice(&self.obs[range]);
    }

    pub fn view(&self) -> Step<'_> {
        Step {
            obs: &self.obs,
            final_obs: &self.final_obs,
            rewards: &self.rewards,
            terminated: &self.terminated,
            truncated: &self.truncated,
            regret: self.regret.as_deref(),
        }
    }

    /// Rejects a wrong number of actions or an action out of range before anything moves.
    pub fn check_actions(&self, actions: &[u32], num_actions: usize) -> Result<(), EnvError> {
        if actions.len() != self.num_envs {
            return Err(EnvError::ActionCount {
                expected: self.num_envs,
                got: actions.len(),
            });
        }
        if let Some((row, &action)) = actions
            .iter()
            .enumerate()
            .find(|(_, &a)| a as usize >= num_actions)
        {
            return Err(EnvError::InvalidAction {
                row,
                action,
                num_actions,
            });
        }
        Ok(())
    }
}
