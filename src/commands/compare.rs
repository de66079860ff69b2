//! `plastic compare`: the runs of sweeps (or single runs) grouped by variant, with each
//! group's final held-out score (or the steps it took to reach a score, `--steps-to`) across seeds
//! and a rank-sum test for each pair of groups. Scores come from the runs' `evaluations.csv`.
use crate::chart::{self, Curve};
use crate::cli::{CompareArgs, Metric};
use crate::output::emit;
use crate::records::{self, Evaluation, EVALUATIONS};
use crate::run_dir::RunDir;
use crate::stats;
use crate::sweep::Sweep;
use anyhow::{bail, Context};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bootstrap resamples for the IQM's interval.
const REPS: usize = 10_000;
/// Groups with fewer runs get their interval flagged: a bootstrap resamples the runs there
/// are, so from 2 to 4 of them it can only show a few distinct values.
const ROUGH_BELOW: usize = 5;

/// One run of a group: its folder and the environment its config names (canonical id).
pub(crate) struct Run {
    pub(crate) dir: PathBuf,
    env: String,
}

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
    /// None for a group of one run, where resampling has nothing to vary.
    iqm_ci95: Option<(f64, f64)>,
}

#[derive(Serialize)]
struct Pair {
    a: String,
    b: String,
    /// Two-sided Mann-Whitney U test of the two groups' scores.
    #[serde(flatten)]
    test: stats::RankSum,
    /// The smallest p any scores of groups this size can give.
    smallest_possible_p: f64,
    /// P(a run of `a` scores better than one of `b`), ties counting a half.
    probability_a_better: f64,
    /// In words: which group leads, by median, and whether the difference is significant.
    verdict: String,
}

/// The significance level the verdicts use.
const ALPHA: f64 = 0.05;

/// Which of `a` and `b` leads by median (in the metric's better direction) and whether the
/// rank-sum test finds the difference significant at [`ALPHA`].
fn verdict(a: &Group, b: &Group, p_value: f64, higher_is_better: bool) -> String {
    let significance = match p_value < ALPHA {
        true => format!("significant (p = {p_value:.3} < {ALPHA})"),
        false => format!("not significant (p = {p_value:.3} ≥ {ALPHA})"),
    };
    let a_ahead = match higher_is_better {
        true => a.median > b.median,
        false => a.median < b.median,
    };
    let (lead, other) = match a_ahead {
        true => (a, b),
        false => (b, a),
    };
    match a.median == b.median {
        true => format!(
            "`{}` and `{}` have equal medians ({:.3}); the difference is {significance}",
            a.name, b.name, a.median
        ),
        false => format!(
            "`{}` leads `{}` (median {:.3} against {:.3}); the difference is {significance}",
            lead.name, other.name, lead.median, other.median
        ),
    }
}

#[derive(Serialize)]
struct Report {
    metric: Metric,
    /// Scores are the steps to reach this held-out score, when set (null: never reached).
    steps_to: Option<f64>,
    /// Lower is better for regret and for steps.
    higher_is_better: bool,
    step: Option<u64>,
    /// The environment every run was trained and evaluated on.
    env: String,
    groups: Vec<Group>,
    pairs: Vec<Pair>,
    /// What limits the statistics: one-run groups, rough intervals, tests that cannot reach
    /// significance.
    notes: Vec<String>,
}

pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    if let Some(mark) = args.steps_to {
        anyhow::ensure!(
            mark.is_finite(),
            "--steps-to {mark}: the held-out score to reach must be a number, e.g. 15 for a \
             reward of 15"
        );
    }
    let runs = collect(&args.runs)?;
    let env = one_environment(&runs)?;
    let mut evaluated: BTreeMap<&str, Vec<(&Path, Vec<Evaluation>)>> = BTreeMap::new();
    let mut unstarted = Vec::new();
    for (name, group) in &runs {
        for run in group {
            // A sweep under way has runs without evaluations yet: left out, and said so.
            let path = run.dir.join(EVALUATIONS);
            let rows = match path.exists() {
                true => records::read_evaluations(&path)?,
                false => Vec::new(),
            };
            if rows.is_empty() {
                unstarted.push(run.dir.display().to_string());
                continue;
            }
            evaluated.entry(name).or_default().push((&run.dir, rows));
        }
    }
    if !unstarted.is_empty() {
        eprintln!(
            "note: {} runs have no evaluations yet and are left out: {}",
            unstarted.len(),
            unstarted.join(", ")
        );
    }
    anyhow::ensure!(
        !evaluated.is_empty(),
        "none of the runs has an evaluation yet"
    );
    let metric = match args.metric {
        Some(m) => m,
        None if evaluated
            .values()
            .flatten()
            .flat_map(|(_, rows)| rows)
            .all(|r| r.regret_mean.is_some()) =>
        {
            Metric::Regret
        }
        None => Metric::Reward,
    };
    let groups: BTreeMap<&str, Vec<RunScores>> = evaluated
        .iter()
        .map(|(name, runs)| {
            let scores = runs
                .iter()
                .map(|(dir, rows)| scores(dir, rows, metric))
                .collect::<anyhow::Result<_>>()?;
            Ok((*name, scores))
        })
        .collect::<anyhow::Result<_>>()?;
    let reward_is_better = metric == Metric::Reward;
    let higher_is_better = reward_is_better && args.steps_to.is_none();
    let mut notes = Vec::new();
    let mut summaries = Vec::new();
    for (name, runs) in &groups {
        let scores: Vec<f64> = runs
            .iter()
            .map(|r| match args.steps_to {
                Some(mark) => Ok(steps_to(r, mark, args.step, reward_is_better)),
                None => score_at(r, args.step),
            })
            .collect::<anyhow::Result<_>>()?;
        let never = scores.iter().filter(|s| s.is_infinite()).count();
        if let (Some(mark), 1..) = (args.steps_to, never) {
            notes.push(format!(
                "{never} of the {} runs of `{name}` never reached {mark}: they rank after every \
                 run that did",
                scores.len()
            ));
        }
        let interval = match scores.len() {
            1 => {
                notes.push(format!(
                    "`{name}` has one run: no interval, and its quartiles are that run's score"
                ));
                None
            }
            n => {
                if n < ROUGH_BELOW {
                    notes.push(format!(
                        "the IQM interval of `{name}` is rough: a bootstrap of {n} runs \
                         (at least {ROUGH_BELOW} give a usable one)"
                    ));
                }
                Some(stats::bootstrap_ci(&scores, stats::iqm, REPS, 0))
            }
        };
        summaries.push(Group {
            name: name.to_string(),
            runs: runs.iter().map(|r| r.path.display().to_string()).collect(),
            mean: stats::mean(&scores),
            median: stats::quantile(&scores, 0.5),
            q25: stats::quantile(&scores, 0.25),
            q75: stats::quantile(&scores, 0.75),
            iqm: stats::iqm(&scores),
            iqm_ci95: interval,
            scores,
        });
    }
    let mut pairs = Vec::new();
    for (i, a) in summaries.iter().enumerate() {
        for b in &summaries[i + 1..] {
            let test = stats::mann_whitney(&a.scores, &b.scores);
            let p_value = test.p_value;
            let better = match higher_is_better {
                true => stats::probability_of_improvement(&a.scores, &b.scores),
                false => stats::probability_of_improvement(&b.scores, &a.scores),
            };
            let (n1, n2) = (a.scores.len(), b.scores.len());
            let smallest = stats::smallest_rank_sum_p(n1, n2);
            if smallest >= 0.05 {
                notes.push(format!(
                    "`{}` vs `{}` cannot reach p < 0.05 with {n1} and {n2} runs (the smallest \
                     p is {smallest:.3}): more seeds are needed for a significant difference",
                    a.name, b.name
                ));
            }
            pairs.push(Pair {
                a: a.name.clone(),
                b: b.name.clone(),
                test,
                smallest_possible_p: smallest,
                probability_a_better: better,
                verdict: verdict(a, b, p_value, higher_is_better),
            });
        }
    }
    if let Some(path) = &args.chart {
        let curves: Vec<Curve> = groups
            .iter()
            .map(|(name, runs)| {
                let runs: Vec<Vec<(f64, f64)>> = runs
                    .iter()
                    .map(|r| r.points.iter().map(|&(s, v)| (s as f64, v)).collect())
                    .collect();
                chart::band(name, &runs)
            })
            .collect();
        let label = match metric {
            Metric::Reward => "held-out reward",
            Metric::Regret => "held-out regret",
        };
        let tests = match pairs.as_slice() {
            [] => String::new(),
            [p] => format!(": {} vs {}, p = {:.3}", p.a, p.b, p.test.p_value),
            all => {
                let least = all
                    .iter()
                    .min_by(|x, y| x.test.p_value.total_cmp(&y.test.p_value));
                let least = least.expect("several pairs");
                format!(
                    ": {} pairs, the smallest p = {:.3} ({} vs {})",
                    all.len(),
                    least.test.p_value,
                    least.a,
                    least.b
                )
            }
        };
        let scored = match args.steps_to {
            Some(mark) => format!(", steps to reach {mark}"),
            None => String::new(),
        };
        let title = format!("{label} on {env}{tests} (rank-sum, two-sided{scored})");
        chart::write(path, &curves, chart::STEPS, label, &title)?;
        eprintln!("wrote {}", path.display());
    }
    let report = Report {
        metric,
        steps_to: args.steps_to,
        higher_is_better,
        step: args.step,
        env,
        groups: summaries,
        pairs,
        notes,
    };
    emit(args.json, &report, || human(&report))
}

fn human(r: &Report) -> String {
    let (what, better) = match r.metric {
        Metric::Reward => ("held-out reward", "higher is better"),
        Metric::Regret => ("held-out regret", "lower is better"),
    };
    let at = r
        .step
        .map_or("the last evaluation".into(), |s| format!("step {s}"));
    let headline = match r.steps_to {
        Some(mark) => format!(
            "environment steps to first reach a {what} of {mark} by {at} (fewer is better; \
             inf: never) on {}, across runs",
            r.env
        ),
        None => format!("{what} ({better}) on {} at {at}, across runs", r.env),
    };
    let mut lines = vec![
        headline,
        format!(
            "{:<28} {:>4} {:>10} {:>10} {:>21} {:>10} {:>21}",
            "group", "runs", "mean", "median", "IQR", "IQM", "IQM 95% CI"
        ),
    ];
    // Steps are whole numbers; rewards and regrets need their decimals.
    let digits = match r.steps_to {
        Some(_) => 0,
        None => 3,
    };
    for g in &r.groups {
        let interval = match g.iqm_ci95 {
            Some((lo, hi)) => format!("{lo:>10.digits$} – {hi:<8.digits$}"),
            None => format!("{:>10}", "n/a"),
        };
        lines.push(format!(
            "{:<28} {:>4} {:>10.digits$} {:>10.digits$} {:>10.digits$} – {:<8.digits$} \
             {:>10.digits$} {interval}",
            g.name,
            g.scores.len(),
            g.mean,
            g.median,
            g.q25,
            g.q75,
            g.iqm,
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
                p.test.u,
                p.test.p_value,
                p.probability_a_better
            ));
        }
        lines.push(String::new());
        lines.extend(r.pairs.iter().map(|p| p.verdict.clone()));
    }
    if !r.notes.is_empty() {
        lines.push(String::new());
        lines.extend(r.notes.iter().map(|n| format!("note: {n}")));
    }
    lines.join("\n")
}

/// Group name → runs, from `[LABEL=]PATH` arguments: a sweep folder gives its runs by
/// variant, a run folder its `run.name`, a folder of run folders each of them.
pub(crate) fn collect(args: &[String]) -> anyhow::Result<BTreeMap<String, Vec<Run>>> {
    let mut groups: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for arg in args {
        let (label, path) = match arg.split_once('=') {
            Some((l, p)) if !Path::new(arg).exists() => (Some(l.to_string()), PathBuf::from(p)),
            _ => (None, PathBuf::from(arg)),
        };
        let mut add = |variant: Option<String>, dir: PathBuf| -> anyhow::Result<()> {
            let config = RunDir::open(&dir)
                .and_then(|run| run.config())
                .with_context(|| format!("run `{}`", dir.display()))?;
            let name = label.clone().or(variant).unwrap_or(config.run.name);
            let env = config.env.id.env().id();
            groups.entry(name).or_default().push(Run { dir, env });
            Ok(())
        };
        if path.join(crate::sweep::MANIFEST).is_file() {
            let sweep = Sweep::open(&path)?;
            for (i, entry) in sweep.manifest.runs.iter().enumerate() {
                add(Some(entry.variant.clone()), sweep.run_dir(i))?;
            }
        } else if path.join(crate::run_dir::CONFIG).is_file() {
            add(None, path)?;
        } else if path.is_dir() {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(&path)
                .with_context(|| format!("cannot read `{}`", path.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join(crate::run_dir::CONFIG).is_file())
                .collect();
            anyhow::ensure!(
                !dirs.is_empty(),
                "`{}` holds no runs and no sweep",
                path.display()
            );
            dirs.sort();
            for dir in dirs {
                add(None, dir)?;
            }
        } else if path.exists() {
            bail!(
                "`{}` is not a sweep or run folder (expected a folder with `{}` or `{}`)",
                path.display(),
                crate::sweep::MANIFEST,
                crate::run_dir::CONFIG
            );
        } else {
            bail!("`{}` does not exist", path.display());
        }
    }
    Ok(groups)
}

/// The environment every run shares. Scores of different environments are on different
/// scales (a maze's reward, a bandit's regret), so a test between them, or a group mixing
/// them, would compare nothing: refused, with the runs named.
pub(crate) fn one_environment(groups: &BTreeMap<String, Vec<Run>>) -> anyhow::Result<String> {
    for (name, runs) in groups {
        if let Some(other) = runs.iter().find(|r| r.env != runs[0].env) {
            bail!(
                "group `{name}` mixes environments: `{}` runs on `{}` and `{}` on `{}`; a \
                 group's runs must share one (label them apart with LABEL=PATH)",
                runs[0].dir.display(),
                runs[0].env,
                other.dir.display(),
                other.env
            );
        }
    }
    let mut envs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, runs) in groups {
        envs.entry(&runs[0].env).or_default().push(name);
    }
    if envs.len() > 1 {
        let listed: Vec<String> = envs
            .iter()
            .map(|(env, names)| format!("`{env}`: {}", names.join(", ")))
            .collect();
        bail!(
            "the groups run on different environments ({}); scores of different environments \
             cannot be compared: compare each environment's groups on their own",
            listed.join("; ")
        );
    }
    Ok(envs.into_keys().next().unwrap_or_default().to_string())
}

/// A run's (step, score) at each evaluation, in `metric`; a run without the metric, or with
/// a score that is not a number, is refused by name: a rank-sum test would rank NaN as if it
/// were a score, and a mean of it says nothing.
fn scores(dir: &Path, rows: &[Evaluation], metric: Metric) -> anyhow::Result<RunScores> {
    let path = dir.join(EVALUATIONS);
    let points = rows
        .iter()
        .map(|r| {
            let (column, value) = match metric {
                Metric::Reward => ("reward_mean", Some(r.reward_mean)),
                Metric::Regret => ("regret_mean", r.regret_mean),
            };
            let Some(value) = value else {
                bail!(
                    "`{}` has no {column} at step {} (regret is measured on bandits): use \
                     --metric reward",
                    path.display(),
                    r.step
                );
            };
            anyhow::ensure!(
                value.is_finite(),
                "run `{}` scores {value} ({column}) at step {}: a run whose evaluations are \
                 not numbers cannot be ranked; leave it out by naming the other runs' folders",
                dir.display(),
                r.step
            );
            Ok((r.step, value))
        })
        .collect::<anyhow::Result<_>>()?;
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

/// The step of the run's first evaluation at or before `step` that reaches `mark` (a score at
/// least that high, or that low where lower is better); infinity where none does, which ranks
/// after every run that got there.
fn steps_to(run: &RunScores, mark: f64, step: Option<u64>, higher_is_better: bool) -> f64 {
    let limit = step.unwrap_or(u64::MAX);
    let reached = |score: f64| match higher_is_better {
        true => score >= mark,
        false => score <= mark,
    };
    run.points
        .iter()
        .take_while(|(s, _)| *s <= limit)
        .find(|(_, score)| reached(*score))
        .map_or(f64::INFINITY, |(s, _)| *s as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, median: f64) -> Group {
        Group {
            name: name.into(),
            runs: Vec::new(),
            scores: Vec::new(),
            mean: median,
            median,
            q25: median,
            q75: median,
            iqm: median,
            iqm_ci95: None,
        }
    }

    #[test]
    fn verdicts_name_the_leader_in_the_metrics_direction_and_the_significance() {
        let (a, b) = (group("a", 1.0), group("b", 2.0));
        assert_eq!(
            verdict(&a, &b, 0.01, true),
            "`b` leads `a` (median 2.000 against 1.000); the difference is significant \
             (p = 0.010 < 0.05)"
        );
        // Regret: lower leads.
        assert!(verdict(&a, &b, 0.2, false).starts_with("`a` leads `b`"));
        assert!(verdict(&a, &a, 0.9, true).starts_with("`a` and `a` have equal medians"));
    }
}
