//! Training from Python: `plastic.Trainer.learn()` runs the CLI's own training loop
//! (`plastic::commands::train`), so it writes the run `plastic train` and `plastic resume`
//! would. The GIL is released while it trains; it is taken back to step Python environments
//! (the bridge does that), to call the trainer's callbacks, and to check for Ctrl-C once per
//! update.
use plastic::cli::ResumeArgs;
use plastic::commands::train::{self, Ended, Watch};
use plastic::config::ExperimentConfig;
use plastic_agents::a2c::Trainer;
use plastic_envs::rollout::RolloutStats;
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pyo3::create_exception!(
    plastic,
    ConfigError,
    PyValueError,
    "A training config plastic refuses: an unknown key, a value of the wrong type or range (the \
     message names it, as `plastic train` does)."
);
pyo3::create_exception!(
    plastic,
    TrainingError,
    pyo3::exceptions::PyRuntimeError,
    "Training stopped on an error of plastic's own (a diverged update, a full disk, ...); the \
     message says which checkpoint the run resumes from."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("TrainingError", py.get_type::<TrainingError>())?;
    m.add_function(wrap_pyfunction!(resolve_config, m)?)?;
    m.add_function(wrap_pyfunction!(train_run, m)?)?;
    m.add_function(wrap_pyfunction!(resume_run, m)?)?;
    m.add_function(wrap_pyfunction!(register_env_object, m)?)?;
    Ok(())
}

/// Makes `gym:<id>` build its environments with `factory` in this process (the Gymnasium
/// bridge's table of environment objects), so a run can train on an object and record an id.
#[pyfunction]
fn register_env_object(py: Python<'_>, id: &str, factory: Py<PyAny>) -> PyResult<()> {
    let bridge = plastic_envs::gym::bridge(py).map_err(crate::env_error)?;
    bridge.getattr("OBJECTS")?.set_item(id, factory)
}

/// The config `plastic train` would read from `text` (the file `path`, named in errors) with
/// `overrides` (`section.key=value`) applied; `named`: the sections of the config's keys given
/// among the overrides (a dict's), which choose the defaults as a file's sections do.
fn parse(
    text: &str,
    path: &Path,
    overrides: &[String],
    named: &[String],
) -> PyResult<ExperimentConfig> {
    ExperimentConfig::parse_naming(text, path, overrides, named)
        .map_err(|e| ConfigError::new_err(format!("{e:#}")))
}

/// The resolved config as TOML, as a run's `config.toml` holds it; refuses what `plastic
/// train` refuses.
#[pyfunction]
fn resolve_config(
    text: &str,
    path: PathBuf,
    overrides: Vec<String>,
    named: Vec<String>,
) -> PyResult<String> {
    parse(text, &path, &overrides, &named).map(|c| c.to_toml())
}

/// Trains a new run (in `out`, or the next free `runs/<name>_<n>`); `True` when it trained to
/// its total, `False` when the watcher stopped it.
#[pyfunction]
#[pyo3(signature = (text, path, overrides, named, out, run_folder, after_update))]
#[allow(clippy::too_many_arguments)]
fn train_run(
    py: Python<'_>,
    text: &str,
    path: PathBuf,
    overrides: Vec<String>,
    named: Vec<String>,
    out: Option<PathBuf>,
    run_folder: Py<PyAny>,
    after_update: Option<Py<PyAny>>,
) -> PyResult<bool> {
    let config = parse(text, &path, &overrides, &named)?;
    let mut watch = PyWatch::new(run_folder, after_update);
    let ended = deferring_interrupts(py, || {
        py.detach(|| train::train_config(config, out.as_deref(), &mut watch))
    })?;
    watch.finish(ended)
}

/// Continues the run in `run` up to `total_steps` (its config's total when `None`), as
/// `plastic resume` does.
#[pyfunction]
#[pyo3(signature = (run, total_steps, run_folder, after_update))]
fn resume_run(
    py: Python<'_>,
    run: PathBuf,
    total_steps: Option<u64>,
    run_folder: Py<PyAny>,
    after_update: Option<Py<PyAny>>,
) -> PyResult<bool> {
    let args = ResumeArgs {
        run,
        device: None,
        total_steps,
    };
    let mut watch = PyWatch::new(run_folder, after_update);
    let ended = deferring_interrupts(py, || {
        py.detach(|| train::resume_watched(&args, &mut watch))
    })?;
    watch.finish(ended)
}

/// Ctrl-C noted by [`note_interrupt`] and not yet acted on.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// SIGINT's handler while a run trains. Python's own raises KeyboardInterrupt in whatever
/// Python code runs next, which may be an environment's `step` in the middle of an update,
/// where no checkpoint can be saved; this one only notes it, and the next update's end stops
/// the run with a checkpoint, then raises KeyboardInterrupt.
#[pyfunction]
fn note_interrupt(_signum: i32, _frame: Bound<'_, PyAny>) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Runs `train` with [`note_interrupt`] as SIGINT's handler, where Python lets it be set (the
/// main thread; elsewhere Python's handler stays and Ctrl-C is raised where it lands), and
/// puts the old handler back after.
fn deferring_interrupts<T>(py: Python<'_>, train: impl FnOnce() -> T) -> PyResult<T> {
    let signal = py.import("signal")?;
    let threading = py.import("threading")?;
    let main = threading
        .call_method0("current_thread")?
        .is(&threading.call_method0("main_thread")?);
    if !main {
        return Ok(train());
    }
    let sigint = signal.getattr("SIGINT")?;
    INTERRUPTED.store(false, Ordering::SeqCst);
    let old = signal.call_method1("signal", (&sigint, wrap_pyfunction!(note_interrupt, py)?))?;
    let trained = train();
    signal.call_method1("signal", (&sigint, old))?;
    Ok(trained)
}

/// The Python side of a training run: `run_folder(path)` once, then `after_update(info)`
/// after each update, which returns whether to go on (left out without callbacks, so that
/// training a native environment calls no Python code). The first exception raised there, or
/// Ctrl-C, stops training with a checkpoint and is raised again once the run is saved.
struct PyWatch {
    run_folder: Py<PyAny>,
    after_update: Option<Py<PyAny>>,
    raised: Option<PyErr>,
}

impl PyWatch {
    fn new(run_folder: Py<PyAny>, after_update: Option<Py<PyAny>>) -> Self {
        // What an environment raised in an earlier call is not this run's.
        drop(plastic_envs::gym::take_raised());
        Self {
            run_folder,
            after_update,
            raised: None,
        }
    }

    /// Python's view of how the run ended: the exception that stopped it, the exception an
    /// environment raised (with its traceback), plastic's own error, or whether it finished.
    fn finish(self, ended: anyhow::Result<Ended>) -> PyResult<bool> {
        if let Some(err) = self.raised {
            return Err(err);
        }
        match ended {
            Ok(Ended::Finished) => Ok(true),
            Ok(Ended::Stopped) => Ok(false),
            Err(e) => Err(plastic_envs::gym::take_raised().unwrap_or_else(|| {
                TrainingError::new_err(match plastic::remedy::advice(&e) {
                    Some(advice) => format!("{e:#}; {advice}"),
                    None => format!("{e:#}"),
                })
            })),
        }
    }

    fn keep(&mut self, result: PyResult<bool>) -> bool {
        result.unwrap_or_else(|e| {
            self.raised.get_or_insert(e);
            false
        })
    }
}

impl Watch for PyWatch {
    fn run_folder(&mut self, path: &Path) {
        let called = Python::attach(|py| self.run_folder.call1(py, (path,)).map(|_| true));
        self.keep(called);
    }

    fn after_update(&mut self, trainer: &Trainer, evaluation: Option<&RolloutStats>) -> bool {
        if self.raised.is_some() {
            return false;
        }
        let go_on = Python::attach(|py| {
            // Runs Python's handler of a signal that came during the update: Ctrl-C is noted
            // by `note_interrupt` (or raised here by Python's own handler off the main thread).
            py.check_signals()?;
            if INTERRUPTED.swap(false, Ordering::SeqCst) {
                return Err(PyKeyboardInterrupt::new_err(
                    "training stopped by Ctrl-C, with a checkpoint",
                ));
            }
            match &self.after_update {
                None => Ok(true),
                Some(f) => f
                    .call1(py, (update_info(py, trainer, evaluation)?,))?
                    .extract::<bool>(py),
            }
        });
        self.keep(go_on)
    }
}

/// What a callback sees after an update: counters, the recent mean episode return, and the
/// held-out evaluation when the update did one.
fn update_info<'py>(
    py: Python<'py>,
    trainer: &Trainer,
    evaluation: Option<&RolloutStats>,
) -> PyResult<Bound<'py, PyDict>> {
    let p = trainer.progress();
    let info = PyDict::new(py);
    info.set_item("updates", p.updates)?;
    info.set_item("total_updates", trainer.total_updates())?;
    info.set_item("env_steps", p.env_steps)?;
    info.set_item("episodes", p.episodes)?;
    info.set_item("mean_return", p.mean_return())?;
    let evaluation = evaluation
        .map(|stats| -> PyResult<_> {
            let e = PyDict::new(py);
            e.set_item("mean_reward", stats.episode_return.mean)?;
            e.set_item("ci95", stats.episode_return.ci95())?;
            e.set_item("episodes", stats.episodes)?;
            Ok(e)
        })
        .transpose()?;
    info.set_item("evaluation", evaluation)?;
    Ok(info)
}
