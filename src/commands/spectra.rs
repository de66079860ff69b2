//! `plastic spectra`: the singular values of `W`, `α` and the episode-averaged Hebbian trace
//! at each of a run's kept checkpoints, as JSON and one chart per matrix (singular value
//! against update, one line per singular value, like a spectrogram).
use crate::chart;
use crate::cli::SpectraArgs;
use crate::durable::write_atomic;
use crate::output::emit;
use plastic_agents::checkpoint::{self, CheckpointError};
use plastic_agents::spectra::{singular_values, Matrix};
use plastic_agents::Agent;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::Device;

#[derive(Serialize)]
struct Report {
    run: String,
    /// The kept checkpoints, oldest first.
    checkpoints: Vec<Point>,
    /// Per matrix: per checkpoint, its singular values, largest first.
    spectra: Vec<MatrixSpectra>,
    /// Episodes the Hebbian trace was averaged over, and their seed.
    episodes: usize,
    seed: u64,
    out: String,
}

#[derive(Serialize)]
struct Point {
    update: u64,
    env_steps: u64,
}

#[derive(Serialize)]
struct MatrixSpectra {
    matrix: &'static str,
    singular_values: Vec<Vec<f64>>,
}

/// Fewer checkpoints than this draw a course too coarse to show stages: the hint says how to
/// keep more.
const FEW_CHECKPOINTS: usize = 10;

pub fn run(args: &SpectraArgs) -> anyhow::Result<()> {
    let run = &args.run;
    let checkpoints = kept_checkpoints(run)?;
    let first = Agent::load(&checkpoints[0], Device::Cpu)?;
    let matrices = matrices(&args.of, &first, run)?;
    let episodes = usize::try_from(args.episodes)?;
    let mut points = Vec::new();
    let mut spectra: Vec<Vec<Vec<f64>>> = vec![Vec::new(); matrices.len()];
    for (i, path) in checkpoints.iter().enumerate() {
        let agent = match i {
            0 => None,
            _ => Some(Agent::load(path, Device::Cpu)?),
        };
        let agent = agent.as_ref().unwrap_or(&first);
        points.push(Point {
            update: update_of(path),
            env_steps: agent.env_steps(),
        });
        for (matrix, spectrum) in matrices.iter().zip(&mut spectra) {
            let m = matrix
                .of(agent.model(), agent.env(), episodes, args.seed)?
                .expect("checked to exist in the run's core");
            spectrum.push(Vec::<f64>::try_from(singular_values(&m))?);
        }
    }
    let out = args.out.clone().unwrap_or_else(|| run.join("spectra"));
    std::fs::create_dir_all(&out)
        .map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", out.display()))?;
    let report = Report {
        run: run.display().to_string(),
        checkpoints: points,
        spectra: matrices
            .iter()
            .zip(spectra)
            .map(|(m, s)| MatrixSpectra {
                matrix: m.name(),
                singular_values: s,
            })
            .collect(),
        episodes,
        seed: args.seed,
        out: out.display().to_string(),
    };
    write_atomic(
        &out.join("spectra.json"),
        serde_json::to_string(&report)?.as_bytes(),
    )?;
    for spectra in &report.spectra {
        draw(&out, spectra, &report.checkpoints)?;
    }
    emit(args.json, &report, || human(&report))
}

/// The run's complete checkpoints, oldest first; an error for a folder that is no run or a
/// run without one.
fn kept_checkpoints(run: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !run.exists() {
        return Err(CheckpointError::Missing(run.into()).into());
    }
    if !run.join(checkpoint::CONFIG).is_file() {
        return Err(CheckpointError::NotARun(run.into()).into());
    }
    let checkpoints = checkpoint::list(run)?;
    anyhow::ensure!(
        !checkpoints.is_empty(),
        "run `{}` has no checkpoint yet: spectra are read from its checkpoints \
         (`{}/<update>/`); train it for at least `log.checkpoint_every` updates",
        run.display(),
        checkpoint::CHECKPOINTS
    );
    Ok(checkpoints)
}

/// The matrices asked for (`--of`; none: every one the core has), each checked to exist.
fn matrices(asked: &[Matrix], agent: &Agent, run: &Path) -> anyhow::Result<Vec<Matrix>> {
    let core = &agent.model().core;
    if asked.is_empty() {
        return Ok(Matrix::ALL
            .iter()
            .copied()
            .filter(|m| m.exists_in(core))
            .collect());
    }
    if let Some(missing) = asked.iter().find(|m| !m.exists_in(core)) {
        anyhow::bail!(
            "--of {}: the core of run `{}` (core.kind = \"{}\") has no plasticity, so neither \
             α nor a Hebbian trace; ask for `--of w`",
            missing.name(),
            run.display(),
            core.config().kind.name()
        );
    }
    let mut unique = Vec::new();
    for m in asked {
        if !unique.contains(m) {
            unique.push(*m);
        }
    }
    Ok(unique)
}

/// A checkpoint folder's update (its name).
fn update_of(path: &Path) -> u64 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .expect("listed checkpoints are named by their update")
}

fn draw(out: &Path, spectra: &MatrixSpectra, points: &[Point]) -> anyhow::Result<()> {
    let count = spectra.singular_values.first().map_or(0, Vec::len);
    let lines: Vec<Vec<(f64, f64)>> = (0..count)
        .map(|k| {
            points
                .iter()
                .zip(&spectra.singular_values)
                .map(|(p, s)| (p.update as f64, s[k]))
                .collect()
        })
        .collect();
    let path = out.join(format!("{}.svg", spectra.matrix));
    chart::write_lines(
        &path,
        &lines,
        "update",
        "singular value",
        &format!("singular values of {} over training", title(spectra.matrix)),
    )
}

fn title(matrix: &str) -> &str {
    match matrix {
        "alpha" => "α",
        "hebb" => "the episode-averaged Hebbian trace",
        other => other,
    }
}

fn human(report: &Report) -> String {
    let mut lines = vec![format!(
        "{}: {} checkpoints (updates {}–{})",
        report.run,
        report.checkpoints.len(),
        report.checkpoints.first().map_or(0, |p| p.update),
        report.checkpoints.last().map_or(0, |p| p.update),
    )];
    let last = report.checkpoints.len() - 1;
    for s in &report.spectra {
        let top: Vec<String> = s.singular_values[last]
            .iter()
            .take(5)
            .map(|v| format!("{v:.3}"))
            .collect();
        lines.push(format!(
            "  {}: largest singular values at the last checkpoint {}",
            s.matrix,
            top.join(", ")
        ));
    }
    if report.checkpoints.len() < FEW_CHECKPOINTS {
        lines.push(format!(
            "  only {} checkpoints: a run keeps its newest `log.keep_checkpoints` (default 3); \
             to follow training, train with e.g. --set log.keep_checkpoints=100 \
             --set log.checkpoint_every=<total updates / 100>",
            report.checkpoints.len()
        ));
    }
    lines.push(format!(
        "  wrote {}/spectra.json and {}",
        report.out,
        report
            .spectra
            .iter()
            .map(|s| format!("{}.svg", s.matrix))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    lines.join("\n")
}
