//! Trained agents: a checkpoint's actor-critic acting on numpy observations, with its
//! recurrent state and plastic traces as an object Python can keep, pass back and inspect.
use crate::env::PyEnvironment;
use crate::{agent_error, check_finite, device_name, to_json, Shared};
use numpy::{
    PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use plastic_agents::acting::{
    self, act, ActionMode,
    ActionsMut::{Continuous, Discrete},
    AgentPolicy,
};
use plastic_agents::parameters::named_variables;
use plastic_agents::{checkpoint, Agent, State};
use plastic_envs::memory::{self, MemoryNeed};
use plastic_envs::rng::{self, Rng};
use plastic_envs::{ActionBox, EnvSpec, ImageSpace};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use tch::{Device, Kind, Tensor};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAgent>()?;
    m.add_class::<PyState>()?;
    Ok(())
}

/// Each loaded agent's states carry its number, so a state is never handed to another network.
static AGENTS: AtomicU64 = AtomicU64::new(1);

fn mode(deterministic: bool) -> ActionMode {
    if deterministic {
        ActionMode::Greedy
    } else {
        ActionMode::Sample
    }
}

/// The actor-critic of a checkpoint, with one sampling stream per batch row.
#[pyclass(module = "plastic._native", name = "Agent")]
pub struct PyAgent {
    agent: Shared<Agent>,
    checkpoint: String,
    config: String,
    seed: u64,
    rngs: Vec<Rng>,
    id: u64,
}

impl PyAgent {
    /// An error unless this agent can act in an environment of `spec`'s sizes.
    pub(crate) fn check_fits(&self, spec: &EnvSpec) -> PyResult<()> {
        self.agent
            .check_fits(spec)
            .map_err(|e| crate::EnvError::new_err(e.to_string()))
    }

    /// Refuses a state of `rows` rows (and what a step computes from it) beyond the memory
    /// this machine has free.
    fn ensure_state_fits(&self, rows: usize) -> PyResult<()> {
        let core = &self.agent.model().core;
        let input_dim = core.input_dim() as usize;
        let core = core.config();
        crate::ensure_fits(
            &[MemoryNeed {
                what: format!(
                    "recurrent state and traces ({rows} rows × hidden {}²)",
                    core.hidden
                ),
                bytes: rows as f64 * core.state_bytes_per_row(input_dim),
            }],
            "the batch (rows of observations, initial_state's batch)",
        )
    }

    /// The library's policy for `batch` rows, as `plastic eval` runs it.
    pub(crate) fn policy(&self, batch: usize, deterministic: bool, seed: u64) -> AgentPolicy<'_> {
        AgentPolicy::new(self.agent.model(), batch, mode(deterministic), seed)
    }
}

fn state_error(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

/// What Python says of a Gymnasium environment's spaces: observation size, policy outputs,
/// a Discrete action space's `start`, a continuous action space's `(shape, low, high)`, and
/// an image observation's `(shape, is uint8)`.
type Spaces = (
    usize,
    usize,
    i64,
    Option<(Vec<usize>, Vec<f32>, Vec<f32>)>,
    Option<(Vec<usize>, bool)>,
);

#[pymethods]
impl PyAgent {
    /// Loads a run folder's newest good checkpoint, or a checkpoint folder, onto `device`.
    /// `spaces` (`(obs_dim, num_actions, action_start, action_box, image)`, the box as
    /// `(shape, low, high)`, the image as `(shape, is uint8)`) stand
    /// in for the environment, which is then not built: for an agent whose `gym:` id cannot
    /// be built again here (an environment object handed to `Trainer`).
    #[staticmethod]
    #[pyo3(signature = (path, device = "cpu", seed = 0, spaces = None))]
    fn load(path: PathBuf, device: &str, seed: u64, spaces: Option<Spaces>) -> PyResult<Self> {
        let device = crate::device(device)?;
        let loaded = checkpoint::load(&path).map_err(|e| agent_error(e.into()))?;
        let env_id = loaded.agent.env.id.env().id();
        let agent = match spaces {
            None => Agent::from_checkpoint(&loaded, device),
            Some((obs_dim, num_actions, action_start, action_box, image)) => {
                let spec = EnvSpec {
                    id: env_id,
                    obs_dim,
                    num_actions,
                    action_start,
                    action_box: action_box.map(|(shape, low, high)| ActionBox { shape, low, high }),
                    image: image.and_then(|(shape, uint8)| ImageSpace::from_shape(&shape, uint8)),
                    episode_len: None,
                };
                Agent::from_checkpoint_in(&loaded, spec, device)
            }
        }
        .map_err(agent_error)?;
        Ok(Self {
            agent: Shared(agent),
            checkpoint: loaded.path.display().to_string(),
            config: loaded.config.clone(),
            seed,
            rngs: Vec::new(),
            id: AGENTS.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The checkpoint folder it was read from.
    #[getter]
    fn checkpoint(&self) -> &str {
        &self.checkpoint
    }

    /// The run's config (`config.toml`) as saved with the checkpoint.
    #[getter]
    fn config(&self) -> &str {
        &self.config
    }

    /// The canonical id of the environment it was trained on.
    #[getter]
    fn env_id(&self) -> String {
        self.agent.env().id()
    }

    /// The environment it was trained on.
    #[getter]
    fn env(&self) -> PyResult<PyEnvironment> {
        PyEnvironment::new(&self.agent.env().id())
    }

    #[getter]
    fn obs_dim(&self) -> usize {
        self.agent.spec().obs_dim
    }

    #[getter]
    fn num_actions(&self) -> usize {
        self.agent.spec().num_actions
    }

    /// What the environment calls discrete action 0 (a Gymnasium `Discrete`'s `start`).
    #[getter]
    fn action_start(&self) -> i64 {
        self.agent.spec().action_start
    }

    /// A continuous action space's `(shape, low, high)` (bounds flattened), or `None` for
    /// discrete actions.
    #[getter]
    fn action_box(&self) -> Option<(Vec<usize>, Vec<f32>, Vec<f32>)> {
        let space = self.agent.spec().action_box.clone()?;
        Some((space.shape, space.low, space.high))
    }

    /// An image observation's `(shape as the environment gives it, channels first, is uint8)`,
    /// or `None` for flat observations.
    #[getter]
    fn image(&self) -> Option<(Vec<usize>, bool, bool)> {
        let image = self.agent.spec().image?;
        Some((image.shape().to_vec(), image.channels_first, image.uint8))
    }

    #[getter]
    fn hidden(&self) -> i64 {
        self.agent.model().core.hidden()
    }

    #[getter]
    fn device(&self) -> String {
        device_name(self.agent.device())
    }

    /// libtorch's CPU threads the agent acts with: its run's `run.threads`.
    #[getter]
    fn threads(&self) -> i32 {
        tch::get_num_threads()
    }

    #[getter]
    fn env_steps(&self) -> u64 {
        self.agent.env_steps()
    }

    /// The network's parameters by name (`ac.core.w`, `ac.policy.weight`, ...), as numpy.
    fn parameters<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Vec<(String, Bound<'py, PyArrayDyn<f32>>)>> {
        named_variables(self.agent.var_store())
            .into_iter()
            .map(|(name, t)| Ok((name, to_numpy(py, &t)?)))
            .collect()
    }

    /// Restarts the sampling streams: row `i` draws from the stream of `(seed, i)`.
    fn seed(&mut self, seed: u64) {
        self.seed = seed;
        self.rngs.clear();
    }

    /// Zero state (hidden state, traces) for `batch` fresh episodes.
    fn initial_state(&self, batch: usize) -> PyResult<PyState> {
        if batch == 0 {
            return Err(PyValueError::new_err("a state needs at least one row"));
        }
        self.ensure_state_fits(batch)?;
        let state = crate::allocating(|| Ok(self.agent.model().initial_state(batch as i64)))?;
        Ok(PyState {
            state: Shared(state),
            owner: self.id,
        })
    }

    /// One step for `obs` `[B × obs_dim]` (float32): the rows of `episode_start` that are true
    /// start afresh first; returns the actions (`[B]` int64, the action space's own values as
    /// the environment takes them, or for a continuous action space `[B, *shape]` float32,
    /// clipped to its bounds) and the state after them.
    #[pyo3(signature = (obs, state = None, episode_start = None, deterministic = false))]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        obs: PyReadonlyArray2<'py, f32>,
        state: Option<PyRef<'py, PyState>>,
        episode_start: Option<PyReadonlyArray1<'py, bool>>,
        deterministic: bool,
    ) -> PyResult<(Bound<'py, PyAny>, PyState)> {
        crate::allocating(move || {
            let [b, d] = [obs.shape()[0], obs.shape()[1]];
            let obs_dim = self.agent.spec().obs_dim;
            if d != obs_dim || b == 0 {
                return Err(PyValueError::new_err(format!(
                    "observations of shape ({b}, {d}); this agent takes ({obs_dim},) or \
                     (batch, {obs_dim}), batch at least 1"
                )));
            }
            let obs = obs.as_slice()?;
            check_finite(obs, obs_dim)?;
            self.ensure_state_fits(b)?;
            let mut current = match &state {
                None => self.agent.model().initial_state(b as i64),
                Some(s) => {
                    if s.owner != self.id {
                        return Err(state_error(
                            "this state was made by another policy (a state belongs to the \
                             network that made it)"
                                .into(),
                        ));
                    }
                    if s.state.batch_size() != b as i64 {
                        return Err(state_error(format!(
                            "the state holds {} rows and the observations {b}",
                            s.state.batch_size()
                        )));
                    }
                    s.state.0.clone()
                }
            };
            if let Some(starts) = episode_start {
                let starts = starts.as_slice()?;
                if starts.len() != b {
                    return Err(state_error(format!(
                        "episode_start has {} entries for {b} observations",
                        starts.len()
                    )));
                }
                if starts.contains(&true) {
                    current = current.reset_rows_bool(starts);
                }
            }
            while self.rngs.len() < b {
                let row = self.rngs.len();
                self.rngs.push(rng::policy_stream(self.seed, row));
            }
            let model = self.agent.model();
            let rngs = &mut self.rngs[..b];
            let mode = mode(deterministic);
            let spec = self.agent.spec();
            let (actions, next) = match &spec.action_box {
                None => {
                    let mut actions = vec![0u32; b];
                    let next = act(model, obs, &current, mode, rngs, Discrete(&mut actions));
                    let actions = actions.into_iter().map(|a| spec.env_action(a)).collect();
                    (PyArray1::from_vec(py, actions).into_any(), next)
                }
                Some(space) => {
                    let mut drawn = vec![0.0f32; b * space.dim()];
                    let next = act(model, obs, &current, mode, rngs, Continuous(&mut drawn));
                    // Clipped as sb3's predict clips, and as the environments clip in training.
                    let mut actions = Vec::new();
                    space
                        .clip_into(&drawn, &mut actions)
                        .map_err(|e| crate::EnvError::new_err(e.to_string()))?;
                    let shape: Vec<usize> = std::iter::once(b).chain(space.shape.clone()).collect();
                    let actions = PyArray1::from_vec(py, actions).reshape(shape)?;
                    (actions.into_any(), next)
                }
            };
            Ok((
                actions,
                PyState {
                    state: Shared(next),
                    owner: self.id,
                },
            ))
        })
    }

    /// `plastic eval`'s agent row: `episodes` episodes of `env` (default: its own) seeded with
    /// `seed`, as RolloutStats JSON.
    #[pyo3(signature = (episodes, seed = 0, deterministic = false, env = None))]
    fn evaluate(
        &self,
        py: Python<'_>,
        episodes: usize,
        seed: u64,
        deterministic: bool,
        env: Option<&PyEnvironment>,
    ) -> PyResult<String> {
        crate::allocating(move || {
            if episodes == 0 {
                return Err(PyValueError::new_err("episodes must be at least 1"));
            }
            crate::ensure_fits(&[memory::episode_records(episodes, "episodes")], "episodes")?;
            let own;
            let env = match env {
                Some(env) => {
                    self.check_fits(&env.spec)?;
                    env
                }
                None => {
                    own = self.env()?;
                    &own
                }
            };
            let failed = std::cell::RefCell::new(None);
            let mut stop = |_| match py.check_signals() {
                Ok(()) => false,
                Err(e) => {
                    *failed.borrow_mut() = Some(e);
                    true
                }
            };
            let stats = acting::evaluate(
                self.agent.model(),
                env.env.as_ref(),
                episodes,
                seed,
                mode(deterministic),
                &mut stop,
            )
            .map_err(crate::env_error)?;
            match stats {
                Some(stats) => to_json(&stats),
                None => Err(failed
                    .into_inner()
                    .unwrap_or_else(|| PyValueError::new_err("interrupted"))),
            }
        })
    }
}

/// A tensor on the host as a numpy array of its shape (float32).
fn to_numpy<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let t = t
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let shape: Vec<usize> = t.size().iter().map(|&s| s as usize).collect();
    let values =
        Vec::<f32>::try_from(t.flatten(0, -1)).map_err(|e| PyValueError::new_err(e.to_string()))?;
    PyArray1::from_vec(py, values).reshape(shape)
}

/// What a policy carries from one step to the next, one row per episode: hidden state, LSTM
/// cell, Hebbian and eligibility traces, last modulator output. Immutable: a step returns a
/// new state, so an old one can be kept and looked at.
#[pyclass(module = "plastic._native", name = "State", frozen)]
pub struct PyState {
    state: Shared<State>,
    owner: u64,
}

#[pymethods]
impl PyState {
    #[getter]
    fn batch_size(&self) -> i64 {
        self.state.batch_size()
    }

    #[getter]
    fn device(&self) -> String {
        device_name(self.state.h().device())
    }

    /// Hidden activations `h`, `[B × H]`.
    #[getter]
    fn hidden<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        to_numpy(py, self.state.h())
    }

    /// LSTM cell `c`, `[B × H]` (LSTM cores; None otherwise).
    #[getter]
    fn cell<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArrayDyn<f32>>>> {
        self.state.c().map(|t| to_numpy(py, t)).transpose()
    }

    /// Hebbian trace, `[B × H × H]` (rows post-synaptic, columns pre-synaptic; plastic cores).
    #[getter]
    fn hebb<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArrayDyn<f32>>>> {
        self.state.hebb().map(|t| to_numpy(py, t)).transpose()
    }

    /// Eligibility trace `E`, `[B × H × H]` (retroactive neuromodulation).
    #[getter]
    fn elig<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArrayDyn<f32>>>> {
        self.state.elig().map(|t| to_numpy(py, t)).transpose()
    }

    /// STPN's fast weights `F`, `[B × H × (in + H)]` (rows post-synaptic, columns the inputs
    /// then the hidden neurons; `kind = "stpn"`, None otherwise).
    #[getter]
    fn fast<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArrayDyn<f32>>>> {
        self.state.fast().map(|t| to_numpy(py, t)).transpose()
    }

    /// Modulator output of the step that made this state, `[B × 1]` or `[B × H]`
    /// (neuromodulated cores; None before the first step).
    #[getter]
    fn modulator<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArrayDyn<f32>>>> {
        self.state.modulator().map(|t| to_numpy(py, t)).transpose()
    }

    fn __repr__(&self) -> String {
        let shape = |t: &Tensor| format!("{:?}", t.size());
        let mut parts = vec![format!("hidden={}", shape(self.state.h()))];
        for (name, t) in [
            ("cell", self.state.c()),
            ("hebb", self.state.hebb()),
            ("elig", self.state.elig()),
            ("fast", self.state.fast()),
            ("modulator", self.state.modulator()),
        ] {
            if let Some(t) = t {
                parts.push(format!("{name}={}", shape(t)));
            }
        }
        format!("State({}, device={})", parts.join(", "), self.device())
    }

    /// The same state with the rows where `rows` is true zeroed (fresh episodes).
    fn reset_rows(&self, rows: PyReadonlyArray1<'_, bool>) -> PyResult<PyState> {
        let rows = rows.as_slice()?;
        if rows.len() as i64 != self.state.batch_size() {
            return Err(state_error(format!(
                "{} flags for a state of {} rows",
                rows.len(),
                self.state.batch_size()
            )));
        }
        Ok(PyState {
            state: Shared(self.state.reset_rows_bool(rows)),
            owner: self.owner,
        })
    }
}
