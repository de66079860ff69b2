//! What a kind of environment offers: the catalogue entry that names it, and, once its id is
//! parsed, the batches it builds and the optional hooks the front ends use (reference
//! policies, an oracle, pictures, animation). A new environment is one [`Family`] in
//! [`crate::registry::FAMILIES`] and one type implementing [`Environment`]; the front ends
//! iterate the table and call the hooks, and never name an environment.
use crate::{EnvError, Params, Policy, PolicyError, VecEnv};
use std::any::Any;

/// One native environment family of the catalogue.
pub struct Family {
    /// The id's name before any `:`: `maze`, `bandit-dependent-easy`.
    pub name: &'static str,
    pub summary: &'static str,
    /// `key=default` for every parameter.
    pub params: &'static str,
    /// Reads this family's parameters; the registry rejects any left over.
    pub parse: fn(&mut Params) -> Result<Box<dyn Environment>, EnvError>,
}

/// An environment with every parameter resolved: what an id names.
///
/// Everything but [`id`](Environment::id) and [`build`](Environment::build) is optional; the
/// defaults say "this environment has none".
pub trait Environment: std::fmt::Debug + Send + Sync + Any {
    /// Canonical id, every parameter spelt out; parsing it gives the same environment.
    fn id(&self) -> String;

    /// `num_envs` copies stepped together.
    fn build(&self, num_envs: usize) -> Result<Box<dyn VecEnv>, EnvError>;

    /// What `plastic rollout --policy` takes besides `random`: the policies
    /// [`policy`](Environment::policy) builds, and `oracle` where
    /// [`oracle_returns`](Environment::oracle_returns) gives returns.
    fn policy_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// The policies `plastic eval` reports next to an agent, besides `random`; those that do
    /// not run on this instance (an [`PolicyError::Unavailable`]) are left out.
    fn reference_policies(&self) -> &'static [&'static str] {
        &[]
    }

    /// Reference policy `name` for `num_envs` rows, acting from observations alone.
    fn policy(
        &self,
        name: &str,
        _num_envs: usize,
        _seed: u64,
    ) -> Result<Box<dyn Policy>, PolicyError> {
        Err(PolicyError::unknown(name, self.id(), self.policy_names()))
    }

    /// Returns of `episodes` episodes of an agent that knows what a learner must find out
    /// (the maze's reward cell): the ceiling a learning agent is measured against.
    fn oracle_returns(&self, _episodes: usize, _seed: u64) -> Option<Vec<f64>> {
        None
    }

    /// The exact expected regret of the Bayes-optimal policy, where it can be computed.
    fn bayes_optimal_regret(&self) -> Option<f64> {
        None
    }

    /// The least and greatest value each observation entry can take, where the environment
    /// knows them (Gymnasium's `Box` bounds); `None`: unbounded.
    fn obs_bounds(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        None
    }

    /// Episodes `plastic eval` and `plastic rollout` run when not told: enough for a tight
    /// interval, in seconds to a minute. 10,000 bandit episodes of 100 pulls take an LSTM of
    /// 48 and the four reference policies about 20 s on one core.
    fn default_eval_episodes(&self) -> usize {
        10_000
    }

    /// `num_envs` copies as grid worlds, for pictures of where agents walk; `None` for
    /// environments that are not grids.
    fn build_grid(&self, _num_envs: usize) -> Option<Result<Box<dyn GridEnv>, EnvError>> {
        None
    }

    /// `num_envs` copies as bandits, for pictures of the arms an agent pulls; `None` for
    /// environments that are not bandits.
    fn build_bandit(&self, _num_envs: usize) -> Option<Result<Box<dyn BanditEnv>, EnvError>> {
        None
    }

    /// One environment that draws itself, for animations.
    fn build_drawn(&self) -> Option<Result<Box<dyn DrawnEnv>, EnvError>> {
        None
    }

    /// Folders outside the Python installation that this environment's modules were
    /// imported from (the current folder, `PYTHONPATH`), for a run to record so that it can
    /// be built again without them; empty for native environments.
    fn python_path(&self) -> Result<Vec<std::path::PathBuf>, EnvError> {
        Ok(Vec::new())
    }

    /// Seconds a plain Python loop takes for `calls` vector steps of `num_envs` copies, the
    /// figure the Gymnasium bridge's cost is judged against; `None` for native environments.
    fn python_loop_seconds(&self, _num_envs: usize, _calls: u64) -> Option<Result<f64, EnvError>> {
        None
    }
}

impl dyn Environment {
    /// The concrete type behind an environment, for code that knows it (its own tests).
    pub fn downcast_ref<T: Environment>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref()
    }
}

/// A batch of grid worlds: square, walled, one agent and one goal cell per row.
pub trait GridEnv: VecEnv {
    /// Cells per side.
    fn side(&self) -> usize;
    fn is_wall(&self, row: usize, col: usize) -> bool;
    /// Where environment `env`'s agent stands now.
    fn agent_cell(&self, env: usize) -> (usize, usize);
    /// Where environment `env`'s goal is in the current episode.
    fn goal_cell(&self, env: usize) -> (usize, usize);
    /// Where environment `env`'s last move led, before anything the step did next: the goal
    /// when it was reached (before the maze sends the agent on), the end of an episode before
    /// the next one starts. Where the agent stands after `reset`.
    fn entered_cell(&self, env: usize) -> (usize, usize);
}

/// A batch of bandits: arms whose expected rewards the agent does not see.
pub trait BanditEnv: VecEnv {
    /// Environment `env`'s expected reward of every arm, for its next pull.
    fn arm_means(&self, env: usize) -> &[f32];
}

/// One rendered frame, RGB rows top to bottom.
#[derive(Debug, Clone)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// One environment (a batch of one) that draws what it shows now.
pub trait DrawnEnv: VecEnv {
    /// What it shows after `reset` or the last step; after a step that ended an episode, that
    /// episode's last state (not the next one's start).
    fn frame(&self) -> Result<Frame, EnvError>;
    /// The frame rate an animation of it should play at.
    fn fps(&self) -> f64;
}

/// `num_envs`, refused when 0: a batch needs at least one environment.
pub(crate) fn at_least_one(num_envs: usize) -> Result<usize, EnvError> {
    match num_envs {
        0 => Err(EnvError::NoEnvs),
        n => Ok(n),
    }
}
