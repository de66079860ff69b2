//! [`GymEnv`]: a Gymnasium vector env behind the batched [`VecEnv`] API.
use super::python::{bridge, describe, keep_raised, start_interpreter};
use super::GymConfig;
use crate::{
    ActionBox, DrawnEnv, EnvError, EnvSpec, Environment, Frame, ImageSpace, Step, StepBuffers,
    VecEnv,
};
use pyo3::buffer::{Element, PyBuffer};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// `B` copies of a Gymnasium environment in a synchronous vector env that resets an ended
/// episode within the same step, like the native environments.
pub struct GymEnv {
    spec: EnvSpec,
    render_fps: f64,
    bridge: Py<PyAny>,
    buffers: StepBuffers,
    flags: Vec<u8>,
    rewards: Vec<f64>,
    action_bytes: Vec<u8>,
    /// Continuous actions clipped to the action space's bounds.
    clipped: Vec<f32>,
    is_reset: bool,
}

impl GymEnv {
    /// Creates the vector env; with `render`, its environments draw `rgb_array` frames.
    pub fn new(config: &GymConfig, num_envs: usize, render: bool) -> Result<Self, EnvError> {
        if num_envs == 0 {
            return Err(EnvError::NoEnvs);
        }
        let id = config.id();
        start_interpreter();
        Python::attach(|py| {
            let module = bridge(py)?;
            let fail = |e: PyErr| EnvError::Gym {
                id: id.clone(),
                during: "creating it",
                message: describe(py, &e, false),
            };
            let bridge = module
                .getattr("Bridge")
                .and_then(|b| b.call1((&config.env_id, config.kwargs.clone(), num_envs, render)))
                .map_err(fail)?;
            let read = |name: &str| -> PyResult<usize> { bridge.getattr(name)?.extract() };
            let obs_dim = read("obs_dim").map_err(fail)?;
            let num_actions = read("num_actions").map_err(fail)?;
            let action_start = bridge
                .getattr("action_start")
                .and_then(|s| s.extract::<i64>())
                .map_err(fail)?;
            let action_box = bridge
                .getattr("action_box")
                .and_then(|b| b.extract::<Option<(Vec<usize>, Vec<f32>, Vec<f32>)>>())
                .map_err(fail)?
                .map(|(shape, low, high)| ActionBox { shape, low, high });
            let image = bridge
                .getattr("image")
                .and_then(|i| i.extract::<Option<(Vec<usize>, bool)>>())
                .map_err(fail)?
                .and_then(|(shape, uint8)| ImageSpace::from_shape(&shape, uint8));
            let render_fps = bridge
                .getattr("render_fps")
                .and_then(|f| f.extract())
                .map_err(fail)?;
            Ok(Self {
                spec: EnvSpec {
                    id: id.clone(),
                    obs_dim,
                    num_actions,
                    action_start,
                    action_box,
                    image,
                    // Gymnasium's time limits cap episodes that mostly end earlier: no fixed
                    // horizon, so training uses truncated rollouts.
                    episode_len: None,
                },
                render_fps,
                bridge: bridge.unbind(),
                buffers: StepBuffers::new(num_envs, obs_dim, false),
                flags: vec![0; num_envs],
                rewards: vec![0.0; num_envs],
                action_bytes: Vec::with_capacity(num_envs * num_actions.max(1) * 8),
                clipped: Vec::new(),
                is_reset: false,
            })
        })
    }

    /// Steps the vector env with the actions already encoded in `action_bytes`.
    fn send_actions(&mut self) -> Result<Step<'_>, EnvError> {
        let result = Python::attach(|py| {
            let out = self
                .bridge
                .bind(py)
                .call_method1("step", (PyBytes::new(py, &self.action_bytes),))?;
            let b = &mut self.buffers;
            copy(py, &out.get_item(0)?, &mut b.obs)?;
            copy(py, &out.get_item(1)?, &mut b.final_obs)?;
            // Gymnasium's vector envs keep rewards in float64.
            copy(py, &out.get_item(2)?, &mut self.rewards)?;
            for (r, &x) in b.rewards.iter_mut().zip(&self.rewards) {
                *r = x as f32;
            }
            copy(py, &out.get_item(3)?, &mut self.flags)?;
            for (t, &f) in b.terminated.iter_mut().zip(&self.flags) {
                *t = f != 0;
            }
            copy(py, &out.get_item(4)?, &mut self.flags)?;
            for (t, &f) in b.truncated.iter_mut().zip(&self.flags) {
                *t = f != 0;
            }
            Ok(())
        });
        if let Err(e) = result {
            // The vector env may have stepped some rows and not others: start again from reset.
            self.is_reset = false;
            return Err(Python::attach(|py| self.error(py, "step()", &e)));
        }
        Ok(self.buffers.view())
    }

    /// The error for actions of the kind this environment does not take.
    fn wrong_kind(&self) -> EnvError {
        let (expected, given) = match self.spec.action_box {
            Some(_) => ("continuous", "discrete"),
            None => ("discrete", "continuous"),
        };
        EnvError::ActionKind {
            id: self.spec.id.clone(),
            expected,
            given,
        }
    }

    fn error(&self, py: Python<'_>, during: &'static str, err: &PyErr) -> EnvError {
        keep_raised(py, err);
        EnvError::Gym {
            id: self.spec.id.clone(),
            during,
            message: describe(py, err, true),
        }
    }
}

/// Copies a contiguous array of `T` (a numpy array from the bridge) into `out`.
fn copy<T: Element + Copy>(
    py: Python<'_>,
    array: &Bound<'_, PyAny>,
    out: &mut [T],
) -> PyResult<()> {
    PyBuffer::<T>::get(array)?.copy_to_slice(py, out)
}

impl VecEnv for GymEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn num_envs(&self) -> usize {
        self.buffers.num_envs
    }

    /// Gymnasium seeds environment `i` with `seed + i`.
    fn reset(&mut self, seed: u64) -> Result<&[f32], EnvError> {
        let obs = &mut self.buffers.obs;
        let result = Python::attach(|py| {
            let out = self.bridge.bind(py).call_method1("reset", (seed,))?;
            copy(py, &out, obs)
        });
        if let Err(e) = result {
            return Err(Python::attach(|py| self.error(py, "reset()", &e)));
        }
        self.buffers.terminated.fill(false);
        self.buffers.truncated.fill(false);
        self.is_reset = true;
        Ok(&self.buffers.obs)
    }

    fn step(&mut self, actions: &[u32]) -> Result<Step<'_>, EnvError> {
        if !self.is_reset {
            return Err(EnvError::NotReset);
        }
        if self.spec.action_box.is_some() {
            return Err(self.wrong_kind());
        }
        self.buffers.check_actions(actions, self.spec.num_actions)?;
        self.action_bytes.clear();
        let spec = &self.spec;
        self.action_bytes.extend(
            actions
                .iter()
                .flat_map(|&a| spec.env_action(a).to_ne_bytes()),
        );
        self.send_actions()
    }

    fn step_continuous(&mut self, actions: &[f32]) -> Result<Step<'_>, EnvError> {
        if !self.is_reset {
            return Err(EnvError::NotReset);
        }
        let Some(space) = &self.spec.action_box else {
            return Err(self.wrong_kind());
        };
        let expected = self.num_envs() * self.spec.num_actions;
        if actions.len() != expected {
            return Err(EnvError::ActionCount {
                expected,
                got: actions.len(),
            });
        }
        space.clip_into(actions, &mut self.clipped)?;
        self.action_bytes.clear();
        self.action_bytes
            .extend(self.clipped.iter().flat_map(|a| a.to_ne_bytes()));
        self.send_actions()
    }
}

impl Drop for GymEnv {
    fn drop(&mut self) {
        // Releases what the environments hold (renderers, files); nothing to report on failure.
        Python::attach(|py| {
            let _ = self.bridge.bind(py).call_method0("close");
        });
    }
}

impl DrawnEnv for GymEnv {
    /// What the first environment shows now (after `reset` or a step).
    fn frame(&self) -> Result<Frame, EnvError> {
        Python::attach(|py| {
            let frame = self
                .bridge
                .bind(py)
                .call_method0("render")
                .map_err(|e| self.error(py, "render()", &e))?;
            let shape: (usize, usize, usize) = frame
                .getattr("shape")
                .and_then(|s| s.extract())
                .map_err(|e| self.error(py, "render()", &e))?;
            let mut rgb = vec![0u8; shape.0 * shape.1 * shape.2];
            copy(py, &frame, &mut rgb).map_err(|e| self.error(py, "render()", &e))?;
            Ok(Frame {
                width: shape.1,
                height: shape.0,
                rgb,
            })
        })
    }

    /// The frame rate the environment's metadata asks for (30 when it names none).
    fn fps(&self) -> f64 {
        self.render_fps
    }
}

/// Seconds a plain Python loop takes to step the same vector env `steps` times with random
/// actions: the baseline the bridge's own speed is compared with.
pub(super) fn python_loop_seconds(
    config: &GymConfig,
    num_envs: usize,
    steps: u64,
    seed: u64,
) -> Result<f64, EnvError> {
    start_interpreter();
    Python::attach(|py| {
        bridge(py)?
            .getattr("python_loop")
            .and_then(|f| f.call1((&config.env_id, config.kwargs.clone(), num_envs, steps, seed)))
            .and_then(|s| s.extract())
            .map_err(|e| EnvError::Gym {
                id: config.id(),
                during: "the Python benchmark loop",
                message: describe(py, &e, true),
            })
    })
}

/// [`crate::Environment::python_path`] of a `gym:` id: where its modules are found now.
pub(super) fn source_dirs(config: &GymConfig) -> Result<Vec<std::path::PathBuf>, EnvError> {
    start_interpreter();
    Python::attach(|py| {
        bridge(py)?
            .getattr("source_dirs")
            .and_then(|f| f.call1((&config.env_id, config.kwargs.clone())))
            .and_then(|dirs| dirs.extract())
            .map_err(|e| EnvError::Gym {
                id: config.id(),
                during: "finding its modules",
                message: describe(py, &e, true),
            })
    })
}
