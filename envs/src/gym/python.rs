//! The embedded interpreter: finds plastic's Python environment, loads the bridge module once,
//! and turns Python exceptions into readable messages.
use crate::EnvError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

const BRIDGE_SOURCE: &str = include_str!("bridge.py");

/// The Python environment the bridge was built against (scripts/setup.sh's venv).
const BUILD_PREFIX: &str = env!("PLASTIC_PYTHON_PREFIX");

static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The exception an environment's own code raised last, kept for the Python extension: an
/// [`EnvError`] carries only its text, and Python code that called `learn()` expects the
/// exception itself, traceback included.
static RAISED: Mutex<Option<PyErr>> = Mutex::new(None);

/// Keeps `err` as the exception last raised by an environment's code.
pub fn keep_raised(py: Python<'_>, err: &PyErr) {
    *RAISED.lock().unwrap_or_else(PoisonError::into_inner) = Some(err.clone_ref(py));
}

/// The exception an environment's code raised since the last call, if any.
pub fn take_raised() -> Option<PyErr> {
    RAISED.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Starts an embedded interpreter unless one runs: the CLI's, on the bridge's first use, with
/// Python's signal handlers left out (the CLI handles Ctrl-C itself). In the Python extension
/// the interpreter that loaded it runs already and this does nothing, so both step Python
/// environments through this same bridge, and there is never a second interpreter.
pub fn start_interpreter() {
    Python::initialize();
}

/// Whether the interpreter is a Python program's that loaded plastic's extension, rather than
/// the CLI's own: a user's interpreter already has its environment and `sys.path`, which are
/// theirs, not the bridge's, to change.
static HOSTED: AtomicBool = AtomicBool::new(false);

/// Marks the interpreter as the host program's (the Python extension calls it on import), so
/// the bridge leaves its `sys.path` as the program set it.
pub fn mark_hosted() {
    HOSTED.store(true, Ordering::Relaxed);
}

/// The bridge module, loaded on first use.
pub fn bridge(py: Python<'_>) -> Result<&Bound<'_, PyModule>, EnvError> {
    MODULE.get_or_try_init(py, || load(py)).map(|m| m.bind(py))
}

/// Puts `dirs` first on `sys.path` (the first of them foremost), where they are not already.
pub fn use_python_path(dirs: &[PathBuf]) -> Result<(), EnvError> {
    if dirs.is_empty() {
        return Ok(());
    }
    start_interpreter();
    Python::attach(|py| {
        // Loaded first, so that its own additions (the current folder) come after `dirs`.
        bridge(py)?;
        let failed = |e: PyErr| EnvError::GymSetup {
            reason: format!("cannot extend sys.path: {}", describe(py, &e, false)),
        };
        for dir in dirs.iter().rev() {
            put_first_on_path(py, &dir.to_string_lossy()).map_err(failed)?;
        }
        Ok(())
    })
}

/// Puts `dir` first on `sys.path` unless it is there already.
fn put_first_on_path(py: Python<'_>, dir: &str) -> PyResult<()> {
    let path = py.import("sys")?.getattr("path")?;
    if !path.contains(dir)? {
        path.call_method1("insert", (0, dir))?;
    }
    Ok(())
}

/// Imports the bridge; in the CLI's embedded interpreter, which does not see a virtual
/// environment by itself, first adds the active one (`VIRTUAL_ENV`) and the one plastic was
/// built with to `sys.path`, and the current folder first, as `python -m` has it, so an id's
/// own module is found where `python` would find it.
fn load(py: Python<'_>) -> Result<Py<PyModule>, EnvError> {
    let mut searched = Vec::new();
    if !HOSTED.load(Ordering::Relaxed) {
        find_environment(py, &mut searched)?;
    }
    for module in ["numpy", "gymnasium"] {
        py.import(module)
            .map_err(|e| setup_error(py, &e, &searched))?;
    }
    let code = CString::new(BRIDGE_SOURCE).expect("bridge.py has no NUL byte");
    PyModule::from_code(py, &code, c"plastic_gym_bridge.py", c"plastic_gym_bridge")
        .map(Bound::unbind)
        .map_err(|e| setup_error(py, &e, &searched))
}

/// Adds the virtual environments' site-packages (noted in `searched`) and the current folder
/// to the embedded interpreter's `sys.path`.
fn find_environment(py: Python<'_>, searched: &mut Vec<String>) -> Result<(), EnvError> {
    let version = py.version_info();
    let prefixes = std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from(BUILD_PREFIX)]);
    for prefix in prefixes {
        let dir = prefix
            .join("lib")
            .join(format!("python{}.{}", version.major, version.minor))
            .join("site-packages");
        if dir.is_dir() {
            py.import("site")
                .and_then(|site| site.call_method1("addsitedir", (dir.to_string_lossy(),)))
                .map_err(|e| setup_error(py, &e, searched))?;
        }
        searched.push(dir.display().to_string());
    }
    py.import("os")
        .and_then(|os| os.call_method0("getcwd")?.extract::<String>())
        .and_then(|cwd| put_first_on_path(py, &cwd))
        .map_err(|e| setup_error(py, &e, searched))
}

fn setup_error(py: Python<'_>, err: &PyErr, searched: &[String]) -> EnvError {
    let version = py.version_info();
    EnvError::GymSetup {
        reason: format!(
            "{} (embedded Python {}.{}; site-packages searched: {})",
            describe(py, err, false),
            version.major,
            version.minor,
            if searched.is_empty() {
                "none".into()
            } else {
                searched.join(", ")
            }
        ),
    }
}

/// `Type: message`, and for errors raised by the environment's own code, the traceback.
pub fn describe(py: Python<'_>, err: &PyErr, with_traceback: bool) -> String {
    // The bridge's own refusals are complete sentences already.
    let unsupported = MODULE
        .get(py)
        .and_then(|m| m.bind(py).getattr("Unsupported").ok());
    let message = err.value(py).to_string();
    if unsupported.is_some_and(|u| err.is_instance(py, &u)) {
        return message;
    }
    let name = err
        .get_type(py)
        .name()
        .map_or_else(|_| "exception".into(), |n| n.to_string());
    let mut text = format!("{name}: {message}");
    if let Some(tb) = with_traceback
        .then(|| err.traceback(py))
        .flatten()
        .and_then(|tb| tb.format().ok())
    {
        text += &format!("\n{}", tb.trim_end());
    }
    text
}
