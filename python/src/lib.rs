//! `plastic._native`: the library crates of plastic (plastic-envs, plastic-agents, and the
//! `plastic` package's training loop) as a Python extension module. The package's Python code
//! (`python/plastic/`) wraps it in Gymnasium environments, an SB3-style policy and trainer;
//! this module converts, checks, and hands training to the CLI's code (`learn`).
use plastic_envs::memory::MemoryNeed;
use pyo3::exceptions::{PyFileNotFoundError, PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;

mod agent;
mod env;
mod learn;

pyo3::create_exception!(
    plastic,
    EnvError,
    PyValueError,
    "An environment id, parameter, action or batch that plastic refuses (the message says which)."
);
pyo3::create_exception!(
    plastic,
    CheckpointError,
    PyValueError,
    "A path that holds no usable plastic checkpoint: not a run, no checkpoint yet, damaged, or \
     written by a version of plastic whose format this one does not read."
);

/// A value shared with Python, which may read it from several threads.
///
/// tch's `Tensor` is `Send` but not `Sync`, as it cannot know how it will be used. Here every
/// change goes through `&mut` (pyo3's borrow flag makes it exclusive) and what `&` does is
/// read tensors or make new ones from them, which libtorch allows from several threads at once.
pub(crate) struct Shared<T>(pub T);

// SAFETY: see above: shared access only reads libtorch tensors.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// A library environment error as Python's exception.
pub(crate) fn env_error(e: plastic_envs::EnvError) -> PyErr {
    EnvError::new_err(e.to_string())
}

/// A checkpoint or agent error as Python's exception: a missing path is a
/// `FileNotFoundError`, anything else a [`CheckpointError`].
pub(crate) fn agent_error(e: plastic_agents::AgentError) -> PyErr {
    use plastic_agents::checkpoint::CheckpointError as C;
    match e {
        plastic_agents::AgentError::Checkpoint(C::Missing(path)) => {
            PyFileNotFoundError::new_err(format!(
                "`{}` does not exist (expected a run folder or a checkpoint folder)",
                path.display()
            ))
        }
        plastic_agents::AgentError::Env(e) => env_error(e),
        e => CheckpointError::new_err(e.to_string()),
    }
}

/// The CLI's memory check before allocating: `needs` beyond what this machine has free are
/// Python's `MemoryError`, saying how much was asked and what is available, instead of an
/// interpreter the kernel kills or an allocation that fails halfway.
pub(crate) fn ensure_fits(needs: &[MemoryNeed], lower: &str) -> PyResult<()> {
    plastic_envs::memory::ensure_fits(needs, lower)
        .map_err(|e| PyMemoryError::new_err(e.to_string()))
}

/// Runs `f`, which allocates tensors: libtorch's failure to allocate (a panic inside tch, for a
/// size the memory check let through as it counts a lower bound) is Python's `MemoryError`;
/// any other panic goes on as it was.
pub(crate) fn allocating<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    use plastic_agents::out_of_memory::{describe, panic_message};
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        match describe(panic_message(payload.as_ref())) {
            Some(what) => Err(PyMemoryError::new_err(format!(
                "out of memory: {what}; ask for fewer rows, episodes or environments"
            ))),
            None => std::panic::resume_unwind(payload),
        }
    })
}

/// Keeps the panic hook quiet about libtorch's failures to allocate, which [`allocating`]
/// raises as `MemoryError`: a page of C++ frames on stderr would say a bug happened.
fn quiet_out_of_memory_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = plastic_agents::out_of_memory::panic_message(info.payload());
        if plastic_agents::out_of_memory::describe(message).is_none() {
            previous(info);
        }
    }));
}

/// Parses `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when libtorch sees a GPU).
pub(crate) fn device(name: &str) -> PyResult<tch::Device> {
    let name = name.trim();
    let cuda = |index: usize| {
        let count = tch::Cuda::device_count().max(0) as usize;
        if index < count {
            Ok(tch::Device::Cuda(index))
        } else {
            Err(PyValueError::new_err(format!(
                "device `{name}`: libtorch sees {count} CUDA device(s)"
            )))
        }
    };
    match name {
        "cpu" => Ok(tch::Device::Cpu),
        "auto" => Ok(tch::Device::cuda_if_available()),
        "cuda" => cuda(0),
        _ => match name.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(index)) => cuda(index),
            _ => Err(PyValueError::new_err(format!(
                "unknown device `{name}`: expected `cpu`, `cuda`, `cuda:N` or `auto`"
            ))),
        },
    }
}

pub(crate) fn device_name(device: tch::Device) -> String {
    match device {
        tch::Device::Cpu => "cpu".into(),
        tch::Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Rejects `NaN` and infinities in observations, which would turn every probability into NaN.
pub(crate) fn check_finite(obs: &[f32], obs_dim: usize) -> PyResult<()> {
    match obs.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(PyValueError::new_err(format!(
            "observation row {} holds {} at index {}: observations must be finite",
            i / obs_dim.max(1),
            obs[i],
            i % obs_dim.max(1)
        ))),
    }
}

/// Copies a 1-d array of any integer type into `out` as actions (non-negative, fitting u32).
pub(crate) fn actions_into(obj: &Bound<'_, PyAny>, out: &mut Vec<u32>) -> PyResult<()> {
    use numpy::PyReadonlyArray1;
    out.clear();
    macro_rules! try_kind {
        ($($t:ty),*) => {$(
            if let Ok(a) = obj.extract::<PyReadonlyArray1<$t>>() {
                let a = a.as_array();
                out.reserve(a.len());
                for (row, &v) in a.iter().enumerate() {
                    match u32::try_from(v) {
                        Ok(v) => out.push(v),
                        Err(_) => {
                            return Err(EnvError::new_err(format!(
                                "action {v} for environment {row} is out of range (actions are \
                                 0, 1, ...)"
                            )))
                        }
                    }
                }
                return Ok(());
            }
        )*};
    }
    try_kind!(i64, u32, i32, u64, u8, i8, u16, i16);
    Err(PyTypeError::new_err(
        "actions must be a one-dimensional numpy array of integers",
    ))
}

/// The statistics of a rollout as JSON, the CLI's own representation (the Python side loads it).
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| PyValueError::new_err(e.to_string()))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    quiet_out_of_memory_panics();
    plastic_envs::gym::mark_hosted();
    m.add("TORCH_BUILD_VERSION", env!("PLASTIC_TORCH_VERSION"))?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    m.add("EVAL_BATCH", plastic_envs::rollout::EVAL_BATCH)?;
    m.add("EnvError", py.get_type::<EnvError>())?;
    m.add("CheckpointError", py.get_type::<CheckpointError>())?;
    env::register(m)?;
    agent::register(m)?;
    learn::register(m)?;
    Ok(())
}
