//! The SLURM backend: one job array, one task per run that is not done, each running
//! `plastic sweep task <dir> <index>` in place of the batch shell (`exec`), so that SLURM's
//! signals reach it directly. A cancel or requeue sends SIGTERM: the run saves a checkpoint
//! and stops. With a time limit, SLURM also sends SIGUSR1 `signal_seconds` before it: the
//! run saves, and the task requeues itself to go on.
use super::status;
use super::{SlurmSection, Sweep};
use crate::durable::write_atomic;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

const FOLDER: &str = "slurm";
/// Seconds between SIGUSR1 and the time limit, by default: time to finish an update and save.
const SIGNAL_SECONDS: u64 = 120;

/// `#SBATCH` settings: the sweep file's, overridden by flags.
pub struct Settings {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: usize,
    pub signal_seconds: u64,
    pub sbatch: Vec<String>,
}

impl Settings {
    pub fn from(file: &SlurmSection, args: &crate::cli::SweepArgs, threads: usize) -> Self {
        Self {
            partition: args.partition.clone().or(file.partition.clone()),
            time: args.time.clone().or(file.time.clone()),
            cpus_per_task: args
                .cpus_per_task
                .or(file.cpus_per_task)
                .unwrap_or(threads.max(1)),
            signal_seconds: file.signal_seconds.unwrap_or(SIGNAL_SECONDS),
            sbatch: file.sbatch.iter().chain(&args.sbatch).cloned().collect(),
        }
    }
}

/// Writes the array script for the runs not done (failed ones with `retry_failed`) and
/// submits it; returns the job id, or `None` when every run is done.
pub fn submit(
    sweep: &Sweep,
    settings: &Settings,
    retry_failed: bool,
) -> anyhow::Result<Option<String>> {
    let pending = status::pending(sweep, retry_failed);
    if pending.is_empty() {
        return Ok(None);
    }
    let folder = sweep.dir.join(FOLDER);
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create `{}`", folder.display()))?;
    let dir = absolute(&sweep.dir)?;
    let exe = std::env::current_exe().context("cannot find the plastic executable")?;
    let script = folder.join("array.sh");
    write_atomic(
        &script,
        array_script(&sweep.manifest.name, &dir, &exe, settings).as_bytes(),
    )?;
    let indices: Vec<String> = pending.iter().map(ToString::to_string).collect();
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(format!("--array={}", indices.join(",")))
        .arg(&script)
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run sbatch ({e}): --backend slurm needs SLURM's commands on PATH; \
                 on a machine without SLURM, use --backend local"
            )
        })?;
    if !out.status.success() {
        bail!(
            "sbatch refused the job array `{}`: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // `<job id>` or `<job id>;<cluster>`.
    let id = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let jobs = folder.join("jobs.txt");
    let mut listed = std::fs::read_to_string(&jobs).unwrap_or_default();
    listed.push_str(&format!("{id} {}\n", indices.join(",")));
    write_atomic(&jobs, listed.as_bytes())?;
    Ok(Some(id))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve `{}`", path.display()))
}

fn array_script(name: &str, dir: &Path, exe: &Path, s: &Settings) -> String {
    let q = |p: &Path| crate::run_dir::shell_word(p);
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name=plastic-{name}"),
        format!("#SBATCH --output={}/{FOLDER}/%A_%a.out", dir.display()),
        "#SBATCH --open-mode=append".into(),
        format!("#SBATCH --cpus-per-task={}", s.cpus_per_task),
        "#SBATCH --requeue".into(),
    ];
    if let Some(p) = &s.partition {
        lines.push(format!("#SBATCH --partition={p}"));
    }
    if let Some(t) = &s.time {
        lines.push(format!("#SBATCH --time={t}"));
        lines.push(format!("#SBATCH --signal=B:USR1@{}", s.signal_seconds));
    }
    lines.extend(s.sbatch.iter().map(|o| format!("#SBATCH {o}")));
    lines.push(format!(
        "# One run of sweep `{name}` per array task (written by `plastic sweep --backend slurm`)."
    ));
    lines.push(format!(
        "exec {} sweep task {} \"$SLURM_ARRAY_TASK_ID\"",
        q(exe),
        q(dir)
    ));
    lines.join("\n") + "\n"
}

/// Puts this array task back in the queue (after the time-limit signal), so that it resumes
/// its run from the checkpoint just saved.
pub fn requeue_self() -> anyhow::Result<()> {
    let id = match (
        std::env::var("SLURM_ARRAY_JOB_ID"),
        std::env::var("SLURM_ARRAY_TASK_ID"),
    ) {
        (Ok(job), Ok(task)) => format!("{job}_{task}"),
        _ => std::env::var("SLURM_JOB_ID").context("not a SLURM job")?,
    };
    let ok = Command::new("scontrol")
        .args(["requeue", &id])
        .status()
        .context("cannot run scontrol")?;
    anyhow::ensure!(ok.success(), "scontrol requeue {id} failed");
    Ok(())
}
