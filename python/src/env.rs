//! Environments: ids parsed by the registry, batches stepped in place (numpy views of the
//! environment's own buffers), reference policies and rollouts judged as the CLI judges them.
use crate::{actions_into, check_finite, env_error, to_json};
use numpy::ndarray::{ArrayView1, ArrayView2};
use numpy::{
    PyArray1, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use plastic_envs::memory;
use plastic_envs::rollout::{oracle_stats, reference_policy, run_episodes_unless, Estimate};
use plastic_envs::{registry, EnvSpec, Environment, GridEnv, Policy, VecEnv};
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEnvironment>()?;
    m.add_class::<PyVecEnv>()?;
    m.add_class::<PyReferencePolicy>()?;
    m.add_function(wrap_pyfunction!(families, m)?)?;
    m.add_function(wrap_pyfunction!(estimate, m)?)?;
    m.add_function(wrap_pyfunction!(rollout, m)?)?;
    Ok(())
}

/// Every environment family: `(name, summary, "key=default, ...")`.
#[pyfunction]
fn families() -> Vec<(&'static str, &'static str, &'static str)> {
    registry::families()
        .into_iter()
        .map(|f| (f.name, f.summary, f.params))
        .collect()
}

/// Mean and 95% interval of `values` as the CLI computes them: `(mean, ci95 or None)`.
#[pyfunction]
fn estimate(values: Vec<f64>) -> PyResult<(f64, Option<f64>)> {
    if values.is_empty() {
        return Err(PyValueError::new_err(
            "an estimate needs at least one value",
        ));
    }
    let e = Estimate::of(&values);
    Ok((e.mean, e.ci95()))
}

/// An environment id with every parameter resolved.
#[pyclass(module = "plastic._native", name = "Environment", frozen)]
pub struct PyEnvironment {
    pub(crate) env: Arc<dyn Environment>,
    pub(crate) spec: EnvSpec,
}

impl PyEnvironment {
    pub(crate) fn new(id: &str) -> PyResult<Self> {
        if id.trim_start().starts_with(plastic_envs::gym::ID_PREFIX) {
            return Err(crate::EnvError::new_err(format!(
                "`{id}` names a Gymnasium environment through the CLI's bridge; from Python, \
                 make it with gymnasium itself (gymnasium.make / gymnasium.make_vec)"
            )));
        }
        let env: Arc<dyn Environment> = Arc::from(registry::parse(id).map_err(env_error)?);
        let spec = env.build(1).map_err(env_error)?.spec().clone();
        Ok(Self { env, spec })
    }
}

#[pymethods]
impl PyEnvironment {
    #[new]
    fn py_new(id: &str) -> PyResult<Self> {
        Self::new(id)
    }

    /// The canonical id, every parameter spelt out (the CLI's reports show it).
    #[getter]
    fn id(&self) -> String {
        self.spec.id.clone()
    }

    #[getter]
    fn obs_dim(&self) -> usize {
        self.spec.obs_dim
    }

    #[getter]
    fn num_actions(&self) -> usize {
        self.spec.num_actions
    }

    #[getter]
    fn episode_len(&self) -> Option<usize> {
        self.spec.episode_len
    }

    /// Whether it is a grid world that can be drawn (`render_mode="rgb_array"`).
    #[getter]
    fn has_grid(&self) -> bool {
        self.env.build_grid(1).is_some()
    }

    fn policy_names(&self) -> Vec<&'static str> {
        std::iter::once("random")
            .chain(self.env.policy_names().iter().copied())
            .collect()
    }

    fn reference_policies(&self) -> Vec<&'static str> {
        self.env.reference_policies().to_vec()
    }

    /// `(low, high)` of every observation entry, where the environment declares them.
    fn obs_bounds(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        self.env.obs_bounds()
    }

    fn default_eval_episodes(&self) -> usize {
        self.env.default_eval_episodes()
    }

    fn bayes_optimal_regret(&self) -> Option<f64> {
        self.env.bayes_optimal_regret()
    }

    fn oracle_returns<'py>(
        &self,
        py: Python<'py>,
        episodes: usize,
        seed: u64,
    ) -> Option<Bound<'py, PyArray1<f64>>> {
        self.env
            .oracle_returns(episodes, seed)
            .map(|r| PyArray1::from_vec(py, r))
    }

    /// The oracle's stats JSON on `episodes` episodes seeded with `seed`, as `plastic eval`
    /// reports them; `None` where the environment has no oracle.
    fn oracle_stats(&self, episodes: usize, seed: u64) -> PyResult<Option<String>> {
        oracle_stats(self.env.as_ref(), episodes, seed)
            .map_err(env_error)?
            .map(|stats| to_json(&stats))
            .transpose()
    }

    /// `num_envs` copies stepped together; a grid world's can be drawn. `extra_bytes_per_env`:
    /// what the caller keeps per environment besides (the Gymnasium wrapper's spaces), counted
    /// in the memory check.
    #[pyo3(signature = (num_envs, extra_bytes_per_env = 0))]
    fn build(&self, num_envs: usize, extra_bytes_per_env: usize) -> PyResult<PyVecEnv> {
        crate::ensure_fits(
            &[memory::env_batch(
                &self.spec,
                num_envs,
                "num_envs",
                extra_bytes_per_env,
            )],
            "num_envs",
        )?;
        let inner = match self.env.build_grid(num_envs) {
            Some(grid) => Inner::Grid(grid.map_err(env_error)?),
            None => Inner::Plain(self.env.build(num_envs).map_err(env_error)?),
        };
        Ok(PyVecEnv {
            inner,
            actions: Vec::new(),
            views: None,
            reset: false,
        })
    }

    /// Reference policy `name` (`random` or one of [`Self::policy_names`]) for `num_envs` rows.
    fn policy(&self, name: &str, num_envs: usize, seed: u64) -> PyResult<PyReferencePolicy> {
        if num_envs == 0 {
            return Err(env_error(plastic_envs::EnvError::NoEnvs));
        }
        let policy = reference_policy(self.env.as_ref(), name, num_envs, seed)
            .map_err(|e| crate::EnvError::new_err(e.to_string()))?;
        Ok(PyReferencePolicy {
            policy,
            num_envs,
            obs_dim: self.spec.obs_dim,
        })
    }

    /// `[(name, stats JSON)]` of random and each reference policy, as `plastic eval` runs them.
    fn reference_stats(&self, episodes: usize, seed: u64) -> PyResult<Vec<(String, String)>> {
        if episodes == 0 {
            return Err(PyValueError::new_err("episodes must be at least 1"));
        }
        crate::ensure_fits(&[memory::episode_records(episodes, "episodes")], "episodes")?;
        plastic_envs::rollout::reference_stats(self.env.as_ref(), episodes, seed, &mut |_, _| false)
            .map_err(|e| crate::EnvError::new_err(e.to_string()))?
            .expect("never stopped")
            .into_iter()
            .map(|(name, stats)| Ok((name, to_json(&stats)?)))
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("Environment('{}')", self.env.id())
    }
}

enum Inner {
    Plain(Box<dyn VecEnv>),
    Grid(Box<dyn GridEnv>),
}

impl Inner {
    fn env(&mut self) -> &mut dyn VecEnv {
        match self {
            Inner::Plain(e) => e.as_mut(),
            Inner::Grid(g) => g.as_mut(),
        }
    }

    fn spec(&self) -> &EnvSpec {
        match self {
            Inner::Plain(e) => e.spec(),
            Inner::Grid(g) => g.spec(),
        }
    }

    fn num_envs(&self) -> usize {
        match self {
            Inner::Plain(e) => e.num_envs(),
            Inner::Grid(g) => g.num_envs(),
        }
    }
}

/// Where the buffers a step fills live: views are made again only when one moves.
type Pointers = [usize; 6];

/// A batch of environments. `reset` and `step` hand out numpy views of the environment's own
/// buffers (no copy): they change at the next step.
#[pyclass(module = "plastic._native", name = "VecEnv", unsendable)]
pub struct PyVecEnv {
    inner: Inner,
    actions: Vec<u32>,
    views: Option<Pointers>,
    reset: bool,
}

fn pointers(step: &plastic_envs::Step<'_>) -> Pointers {
    [
        step.obs.as_ptr() as usize,
        step.final_obs.as_ptr() as usize,
        step.rewards.as_ptr() as usize,
        step.terminated.as_ptr() as usize,
        step.truncated.as_ptr() as usize,
        step.regret.map_or(0, |r| r.as_ptr() as usize),
    ]
}

/// A read-only view of `len` values at `ptr`, kept alive by `owner`.
///
/// # Safety
/// `ptr..ptr+len` must stay allocated while `owner` lives (the environments never reallocate
/// their step buffers; a move is detected by [`PyVecEnv::step`] and new views are made).
unsafe fn view1<'py, T: numpy::Element>(
    owner: &Bound<'py, PyAny>,
    ptr: *const T,
    len: usize,
) -> Bound<'py, PyArray1<T>> {
    let view = ArrayView1::from_shape_ptr(len, ptr);
    let array = PyArray1::borrow_from_array(&view, owner.clone());
    read_only(&array);
    array
}

/// # Safety
/// As [`view1`].
unsafe fn view2<'py>(
    owner: &Bound<'py, PyAny>,
    ptr: *const f32,
    rows: usize,
    cols: usize,
) -> Bound<'py, PyArray2<f32>> {
    let view = ArrayView2::from_shape_ptr((rows, cols), ptr);
    let array = PyArray2::borrow_from_array(&view, owner.clone());
    read_only(&array);
    array
}

fn read_only<T: numpy::Element, D: numpy::ndarray::Dimension>(
    array: &Bound<'_, numpy::PyArray<T, D>>,
) {
    // Clearing the flag of an array made here cannot fail.
    let _ = array
        .getattr("flags")
        .and_then(|flags| flags.setattr("writeable", false));
}

#[pymethods]
impl PyVecEnv {
    #[getter]
    fn num_envs(&self) -> usize {
        self.inner.num_envs()
    }

    #[getter]
    fn obs_dim(&self) -> usize {
        self.inner.spec().obs_dim
    }

    #[getter]
    fn num_actions(&self) -> usize {
        self.inner.spec().num_actions
    }

    #[getter]
    fn id(&self) -> String {
        self.inner.spec().id.clone()
    }

    /// Starts fresh episodes everywhere (row `i` from the stream of `(seed, i)`); returns a
    /// view of the observations `[B × obs_dim]`.
    fn reset<'py>(slf: &Bound<'py, Self>, seed: u64) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (ptr, rows, cols) = {
            let mut this = slf.borrow_mut();
            let cols = this.inner.spec().obs_dim;
            let obs = this.inner.env().reset(seed).map_err(env_error)?;
            let at = (obs.as_ptr(), obs.len() / cols.max(1), cols);
            this.reset = true;
            // The next step hands out its views whatever they show.
            this.views = None;
            at
        };
        // SAFETY: the environment's observation buffer lives as long as it does.
        Ok(unsafe { view2(slf.as_any(), ptr, rows, cols) })
    }

    /// Applies one action per row. Returns `None` when the views handed out before still show
    /// the buffers, otherwise new views `(obs, final_obs, rewards, terminated, truncated,
    /// regret or None)`.
    fn step<'py>(
        slf: &Bound<'py, Self>,
        actions: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let (ptrs, b, d) = {
            let mut guard = slf.borrow_mut();
            let this = &mut *guard;
            if !this.reset {
                return Err(env_error(plastic_envs::EnvError::NotReset));
            }
            actions_into(actions, &mut this.actions)?;
            let b = this.inner.num_envs();
            let d = this.inner.spec().obs_dim;
            let step = this.inner.env().step(&this.actions).map_err(env_error)?;
            let ptrs = pointers(&step);
            if this.views == Some(ptrs) {
                return Ok(None);
            }
            this.views = Some(ptrs);
            (ptrs, b, d)
        };
        let owner = slf.as_any();
        let py = slf.py();
        // SAFETY: the pointers were just taken from the environment's live buffers.
        let views = unsafe {
            let regret = if ptrs[5] == 0 {
                py.None().into_bound(py)
            } else {
                view1(owner, ptrs[5] as *const f32, b).into_any()
            };
            PyTuple::new(
                py,
                [
                    view2(owner, ptrs[0] as *const f32, b, d).into_any(),
                    view2(owner, ptrs[1] as *const f32, b, d).into_any(),
                    view1(owner, ptrs[2] as *const f32, b).into_any(),
                    view1(owner, ptrs[3] as *const bool, b).into_any(),
                    view1(owner, ptrs[4] as *const bool, b).into_any(),
                    regret,
                ],
            )?
        };
        Ok(Some(views))
    }

    /// Environment `env` drawn as RGB `[H × W × 3]`, `cell` pixels per cell (grid worlds).
    #[pyo3(signature = (env = 0, cell = 24))]
    fn render<'py>(
        &self,
        py: Python<'py>,
        env: usize,
        cell: usize,
    ) -> PyResult<Bound<'py, PyArray3<u8>>> {
        let Inner::Grid(grid) = &self.inner else {
            return Err(PyValueError::new_err(format!(
                "`{}` is not a grid world and cannot be drawn",
                self.inner.spec().id
            )));
        };
        if env >= grid.num_envs() {
            return Err(PyIndexError::new_err(format!(
                "environment {env} of a batch of {}",
                grid.num_envs()
            )));
        }
        if !self.reset {
            return Err(env_error(plastic_envs::EnvError::NotReset));
        }
        let frame = plastic_envs::grid_frame(grid.as_ref(), env, cell);
        PyArray1::from_vec(py, frame.rgb).reshape([frame.height, frame.width, 3])
    }
}

/// A reference policy (random, or one of the environment's) acting from observations.
#[pyclass(module = "plastic._native", name = "ReferencePolicy", unsendable)]
pub struct PyReferencePolicy {
    policy: Box<dyn Policy>,
    num_envs: usize,
    obs_dim: usize,
}

#[pymethods]
impl PyReferencePolicy {
    #[getter]
    fn num_envs(&self) -> usize {
        self.num_envs
    }

    /// One action per row of `obs` `[B × obs_dim]` (float32).
    fn act<'py>(
        &mut self,
        py: Python<'py>,
        obs: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let shape = obs.shape();
        if shape != [self.num_envs, self.obs_dim] {
            return Err(PyValueError::new_err(format!(
                "observations of shape {shape:?}, expected [{}, {}]",
                self.num_envs, self.obs_dim
            )));
        }
        let obs = obs.as_slice()?;
        check_finite(obs, self.obs_dim)?;
        let mut actions = vec![0u32; self.num_envs];
        self.policy.act(obs, &mut actions);
        Ok(PyArray1::from_vec(
            py,
            actions.into_iter().map(i64::from).collect(),
        ))
    }

    /// Tells the policy which rows' episodes ended at the last step.
    fn episodes_ended(&mut self, done: PyReadonlyArray1<'_, bool>) -> PyResult<()> {
        let done = done.as_slice()?;
        if done.len() != self.num_envs {
            return Err(PyValueError::new_err(format!(
                "{} flags for {} rows",
                done.len(),
                self.num_envs
            )));
        }
        self.policy.episodes_ended(done);
        Ok(())
    }
}

/// Any Python object with sb3's `predict(obs, state, episode_start, deterministic)` (or a plain
/// callable `f(obs) -> actions`) as a library policy. The first error it raises stops the
/// rollout (through `failed`) and is raised again.
struct PythonPolicy<'py> {
    obj: Bound<'py, PyAny>,
    obs_dim: usize,
    state: Py<PyAny>,
    episode_start: Vec<bool>,
    deterministic: bool,
    failed: Rc<RefCell<Option<PyErr>>>,
}

impl PythonPolicy<'_> {
    fn try_act(&mut self, obs: &[f32], actions: &mut Vec<u32>) -> PyResult<()> {
        let py = self.obj.py();
        let b = obs.len() / self.obs_dim;
        let x = PyArray1::from_slice(py, obs).reshape([b, self.obs_dim])?;
        let out = if self.obj.hasattr("predict")? {
            let kwargs = PyDict::new(py);
            kwargs.set_item("state", self.state.bind(py))?;
            kwargs.set_item(
                "episode_start",
                PyArray1::from_slice(py, &self.episode_start),
            )?;
            kwargs.set_item("deterministic", self.deterministic)?;
            let result = self.obj.call_method("predict", (x,), Some(&kwargs))?;
            let (a, state): (Bound<'_, PyAny>, Py<PyAny>) = result.extract().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(
                    "predict must return (actions, state), as sb3's policies do",
                )
            })?;
            self.state = state;
            a
        } else {
            self.obj.call1((x,))?
        };
        let numpy = py.import("numpy")?;
        let a = numpy
            .call_method1("asarray", (out,))?
            .call_method1("reshape", (-1,))?;
        actions_into(&a, actions)?;
        if actions.len() != b {
            return Err(PyValueError::new_err(format!(
                "the policy returned {} actions for {b} observations",
                actions.len()
            )));
        }
        self.episode_start.fill(false);
        Ok(())
    }
}

impl Policy for PythonPolicy<'_> {
    fn act(&mut self, obs: &[f32], actions: &mut [u32]) {
        if self.failed.borrow().is_some() {
            return;
        }
        let mut out = Vec::with_capacity(actions.len());
        match self.try_act(obs, &mut out) {
            Ok(()) => actions.copy_from_slice(&out),
            Err(e) => *self.failed.borrow_mut() = Some(e),
        }
    }

    fn episodes_ended(&mut self, done: &[bool]) {
        self.episode_start.copy_from_slice(done);
    }
}

/// Runs `policy` for `episodes` whole episodes of `env` (reset with `seed`, `batch` rows at a
/// time) and returns the statistics as JSON, as `plastic rollout --json` computes them.
/// `policy`: `"random"`, one of the environment's policy names (`"oracle"` where it gives
/// returns), a loaded agent, or a Python object with sb3's `predict` (or a callable).
#[pyfunction]
#[pyo3(signature = (env, policy, episodes, seed, batch, deterministic = false))]
fn rollout(
    py: Python<'_>,
    env: &PyEnvironment,
    policy: &Bound<'_, PyAny>,
    episodes: usize,
    seed: u64,
    batch: usize,
    deterministic: bool,
) -> PyResult<String> {
    crate::allocating(move || {
        if episodes == 0 || batch == 0 {
            return Err(PyValueError::new_err(
                "episodes and batch must be at least 1",
            ));
        }
        let batch = batch.min(episodes);
        let spec = &env.spec;
        crate::ensure_fits(
            &[
                memory::env_batch(spec, batch, "batch", 0),
                memory::episode_records(episodes, "episodes"),
            ],
            "batch or episodes",
        )?;
        let failed: Rc<RefCell<Option<PyErr>>> = Rc::new(RefCell::new(None));
        let agent_ref;
        let mut boxed: Box<dyn Policy + '_>;
        if let Ok(name) = policy.extract::<String>() {
            if name == "oracle" {
                if let Some(stats) =
                    oracle_stats(env.env.as_ref(), episodes, seed).map_err(env_error)?
                {
                    return to_json(&stats);
                }
            }
            boxed = reference_policy(env.env.as_ref(), &name, batch, seed)
                .map_err(|e| crate::EnvError::new_err(e.to_string()))?;
        } else if let Ok(agent) = policy.extract::<PyRef<'_, crate::agent::PyAgent>>() {
            agent.check_fits(spec)?;
            agent_ref = agent;
            boxed = Box::new(agent_ref.policy(batch, deterministic, seed));
        } else {
            boxed = Box::new(PythonPolicy {
                obj: policy.clone(),
                obs_dim: spec.obs_dim,
                state: py.None(),
                episode_start: vec![true; batch],
                deterministic,
                failed: failed.clone(),
            });
        }
        let mut e = env.env.build(batch).map_err(env_error)?;
        let mut stop = |_| {
            if failed.borrow().is_some() {
                return true;
            }
            match py.check_signals() {
                Ok(()) => false,
                Err(err) => {
                    *failed.borrow_mut() = Some(err);
                    true
                }
            }
        };
        let stats = run_episodes_unless(e.as_mut(), boxed.as_mut(), episodes, seed, &mut stop)
            .map_err(env_error)?;
        drop(boxed);
        if let Some(err) = failed.borrow_mut().take() {
            return Err(err);
        }
        to_json(&stats.expect("stopped only on an error"))
    })
}
