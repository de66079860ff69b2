//! `plastic compare`: the runs of sweeps (or single runs) grouped by variant, with each
//! group's final held-out score across seeds and a rank-sum test for each pair of groups.
//! Scores come from the runs' `evaluations.csv`.
use crate::chart::{self, Curve};
use crate::cli::{CompareArgs, Metric};
use crate::output::emit;
use crate::records::{self, EVALUATIONS};
use crate::run_dir::RunDir;
use crate::stats;
use crate::sweep::Sweep;
use anyhow::{bail, Context};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bootstrap resamples for the IQM's interval.
const REPS: usize = 10_000;

/// One run's held-out evaluations: (environment step, score).
struct RunScores {
    path: PathBuf,
    points: Vec<(u64, f64)>,
}

#[derive(Serialize)]
struct Group {
    name: String,
    runs: Vec<String>,
    scores: Vec<f64>,
    mean: f64,
    median: f64,
    q25: f64,
    q75: f64,
    iqm: f64,
    iqm_ci95: (f64, f64),
}

#[derive(Serialize)]
struct Pair {
    a: String,
    b: String,
    /// Two-sided Mann-Whitney U test of the two groups' scores.
    u: f64,
    p_value: f64,
    method: &'static str,
    /// P(a run of `a` scores better than one of `b`), ties counting a half.
    probability_a_better: f64,
}

#[derive(Serialize)]
struct Report {
    metric: Metric,
    /// Lower is better for regret.
    higher_is_better: bool,
    step: Option<u64>,
    groups: Vec<Group>,
    pairs: Vec<Pair>,
}

pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let runs = collect(&args.runs)?;
    let evaluated = || {
        runs.values()
            .flatten()
            .filter(|r| r.join(EVALUATIONS).exists())
    };
    let metric = match args.metric {
        Some(m) => m,
        None if evaluated().all(|r| has_regret(r)) => Metric::Regret,
        None => Metric::Reward,
    };
    let mut groups: BTreeMap<String, Vec<RunScores>> = BTreeMap::new();
    let mut unstarted = Vec::new();
    for (name, dirs) in &runs {
        for dir in dirs {
            // A sweep under way has runs without evaluations yet: left out, and said so.
            if !dir.join(EVALUATIONS).exists() {
                unstarted.push(dir.display().to_string());
                continue;
            }
            groups
                .entry(name.clone())
                .or_default()
                .push(read_scores(dir, metric)?);
        }
    }
    if !unstarted.is_empty() {
        eprintln!(
            "note: {} runs have no evaluations yet and are left out: {}",
            unstarted.len(),
            unstarted.join(", ")
        );
    }
    anyhow::ensure!(!groups.is_empty(), "none of the runs has an evaluation yet");
    let higher_is_better = metric == Metric::Reward;
    let mut summaries = Vec::new();
    for (name, runs) in &groups {
        let scores: Vec<f64> = runs
            .iter()
            .map(|r| score_at(r, args.step))
            .collect::<anyhow::Result<_>>()?;
        summaries.push(Group {
            name: name.clone(),
            runs: runs.iter().map(|r| r.path.display().to_string()).collect(),
            mean: stats::mean(&scores),
            median: stats::quantile(&scores, 0.5),
            q25: stats::quantile(&scores, 0.25),
            q75: stats::quantile(&scores, 0.75),
            iqm: stats::iqm(&scores),
            iqm_ci95: stats::bootstrap_ci(&scores, stats::iqm, REPS, 0),
            scores,
        });
    }
    let mut pairs = Vec::new();
    for (i, a) in summaries.iter().enumerate() {
        for b in &summaries[i + 1..] {
            let test = stats::mann_whitney(&a.scores, &b.scores);
            let better = match higher_is_better {
                true => stats::probability_of_improvement(&a.scores, &b.scores),
                false => stats::probability_of_improvement(&b.scores, &a.scores),
            };
            pairs.push(Pair {
                a: a.name.clone(),
                b: b.name.clone(),
                u: test.u,
                p_value: test.p_value,
                method: test.method,
                probability_a_better: better,
            });
        }
    }
    if let Some(path) = &args.chart {
        let curves: Vec<Curve> = groups
            .iter()
            .map(|(name, runs)| {
                chart::band(
                    name,
                    &runs.iter().map(|r| r.points.clone()).collect::<Vec<_>>(),
                )
            })
            .collect();
        let label = match metric {
            Metric::Reward => "held-out reward",
            Metric::Regret => "held-out regret",
        };
        chart::write(path, &curves, label)?;
        eprintln!("wrote {}", path.display());
    }
    let report = Report {
        metric,
        higher_is_better,
        step: args.step,
        groups: summaries,
        pairs,
    };
    emit(args.json, &report, || human(&report))
}

fn human(r: &Report) -> String {
    let what = match r.metric {
        Metric::Reward => "held-out reward (higher is better)",
        Metric::Regret => "held-out regret (lower is better)",
    };
    let at = r
        .step
        .map_or("the last evaluation".into(), |s| format!("step {s}"));
    let mut lines = vec![
        format!("{what} at {at}, across runs"),
        format!(
            "{:<28} {:>4} {:>10} {:>10} {:>21} {:>10} {:>21}",
            "group", "runs", "mean", "median", "IQR", "IQM", "IQM 95% CI"
        ),
    ];
    for g in &r.groups {
        lines.push(format!(
            "{:<28} {:>4} {:>10.3} {:>10.3} {:>10.3} – {:<8.3} {:>10.3} {:>10.3} – {:<8.3}",
            g.name,
            g.scores.len(),
            g.mean,
            g.median,
            g.q25,
            g.q75,
            g.iqm,
            g.iqm_ci95.0,
            g.iqm_ci95.1
        ));
    }
    if !r.pairs.is_empty() {
        lines.push(String::new());
        lines.push(format!(
            "{:<40} {:>10} {:>12}  {}",
            "pair (rank-sum test, two-sided)", "U", "p", "P(first better)"
        ));
        for p in &r.pairs {
            lines.push(format!(
                "{:<40} {:>10.1} {:>12.4}  {:.3}",
                format!("{} vs {}", p.a, p.b),
                p.u,
                p.p_value,
                p.probability_a_better
            ));
        }
    }
    lines.join("\n")
}

/// Group name → run folders, from `[LABEL=]PATH` arguments: a sweep folder gives its runs
/// by variant, a run folder its `run.name`, a folder of run folders each of them.
fn collect(args: &[String]) -> anyhow::Result<BTreeMap<String, Vec<PathBuf>>> {
    let mut groups: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for arg in args {
        let (label, path) = match arg.split_once('=') {
            Some((l, p)) if !Path::new(arg).exists() => (Some(l.to_string()), PathBuf::from(p)),
            _ => (None, PathBuf::from(arg)),
        };
        let mut add = |name: String, dir: PathBuf| {
            groups
                .entry(label.clone().unwrap_or(name))
                .or_default()
                .push(dir)
        };
        if path.join(crate::sweep::MANIFEST).is_file() {
            let sweep = Sweep::open(&path)?;
            for (i, entry) in sweep.manifest.runs.iter().enumerate() {
                add(entry.variant.clone(), sweep.run_dir(i));
            }
        } else if path.join(crate::run_dir::CONFIG).is_file() {
            add(RunDir::open(&path)?.config()?.run.name, path);
        } else if path.is_dir() {
            let mut found = false;
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(&path)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join(crate::run_dir::CONFIG).is_file())
                .collect();
            dirs.sort();
            for dir in dirs {
                add(RunDir::open(&dir)?.config()?.run.name, dir);
                found = true;
            }
            anyhow::ensure!(found, "`{}` holds no runs and no sweep", path.display());
        } else {
            bail!("`{}` does not exist", path.display());
        }
    }
    Ok(groups)
}

fn has_regret(dir: &Path) -> bool {
    records::read(&dir.join(EVALUATIONS))
        .ok()
        .and_then(|rows| rows.last().map(|r| !r["regret_mean"].is_empty()))
        .unwrap_or(false)
}

fn read_scores(dir: &Path, metric: Metric) -> anyhow::Result<RunScores> {
    let path = dir.join(EVALUATIONS);
    let rows = records::read(&path).with_context(|| {
        format!(
            "run `{}` has no evaluations yet (log.eval_every)",
            dir.display()
        )
    })?;
    let column = match metric {
        Metric::Reward => "reward_mean",
        Metric::Regret => "regret_mean",
    };
    let points = rows
        .iter()
        .map(|r| {
            let step = r["step"].parse::<u64>().ok()?;
            let value = r.get(column)?.parse::<f64>().ok()?;
            Some((step, value))
        })
        .collect::<Option<Vec<_>>>()
        .with_context(|| format!("`{}` has no {column} in every row", path.display()))?;
    anyhow::ensure!(
        !points.is_empty(),
        "run `{}` has no evaluations yet",
        dir.display()
    );
    Ok(RunScores {
        path: dir.to_path_buf(),
        points,
    })
}

/// The score of the last evaluation at or before `step` (the last one without).
fn score_at(run: &RunScores, step: Option<u64>) -> anyhow::Result<f64> {
    let limit = step.unwrap_or(u64::MAX);
    run.points
        .iter()
        .rev()
        .find(|(s, _)| *s <= limit)
        .map(|p| p.1)
        .with_context(|| {
            format!(
                "run `{}` has no evaluation at or before step {limit} (its first is at {})",
                run.path.display(),
                run.points[0].0
            )
        })
}
