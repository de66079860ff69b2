//! `plastic perturb`: trained runs under relative noise on groups of their parameters and
//! under lesions of their hidden neurons, on the held-out episodes `plastic eval` runs; per
//! group of runs (as `plastic compare` groups them) the median and IQR across runs at each
//! noise level and lesion size, and rank-sum tests between the groups (docs/perturbation.md).
use crate::chart;
use crate::cli::PerturbArgs;
use crate::commands::compare;
use crate::output::emit;
use crate::progress::EpisodeProgress;
use crate::stats;
use anyhow::Context;
use plastic_agents::acting::ActionMode;
use plastic_agents::perturbation::{
    self, lesion, noise, HeldOut, Lesion, LesionedStats, Noise, ParamGroup, Windows,
};
use plastic_agents::{ActorCritic, Agent};
use plastic_envs::rollout::Interval;
use plastic_envs::Environment;
use serde::Serialize;
use std::collections::BTreeMap;
use tch::Device;

/// What one run scored under each perturbation.
#[derive(Serialize)]
struct RunResult {
    group: String,
    run: String,
    /// Environment steps its newest good checkpoint was trained for.
    env_steps_trained: u64,
    /// Per parameter group, the reward at each σ (σ = 0: the run as trained).
    noise: Vec<NoiseResult>,
    lesions: Vec<LesionResult>,
}

#[derive(Serialize)]
struct NoiseResult {
    group: ParamGroup,
    sigma: f64,
    reward: Interval,
}

#[derive(Serialize)]
struct LesionResult {
    fraction: f64,
    /// The hidden neurons silenced.
    silenced: Vec<usize>,
    reward: Interval,
    /// Mean reward per episode in each recovery window (mid-episode lesions only).
    windows: Vec<f64>,
}

/// One curve across runs: at each x, every group's spread and the tests between groups.
#[derive(Serialize)]
struct Curve {
    name: String,
    /// The chart's file name in `--charts`.
    #[serde(skip)]
    file: String,
    /// The table's heading of the x column.
    #[serde(skip)]
    column: &'static str,
    x_label: String,
    points: Vec<Point>,
}

#[derive(Serialize)]
struct Point {
    x: f64,
    groups: Vec<Spread>,
    pairs: Vec<Pair>,
}

/// A group's runs' rewards at one point: median and quartiles (NumPy's rule).
#[derive(Serialize)]
struct Spread {
    name: String,
    scores: Vec<f64>,
    median: f64,
    q25: f64,
    q75: f64,
}

/// A two-sided rank-sum test of two groups' scores, as `plastic compare` tests them.
#[derive(Serialize)]
struct Pair {
    a: String,
    b: String,
    #[serde(flatten)]
    test: stats::RankSum,
}

#[derive(Serialize)]
struct Report {
    env: String,
    seed: u64,
    episodes: usize,
    mode: ActionMode,
    /// How noise is applied.
    noise_rule: &'static str,
    lesion_at: usize,
    /// Recovery windows: their width in steps (mid-episode lesions only).
    window: Option<usize>,
    runs: Vec<RunResult>,
    curves: Vec<Curve>,
}

const NOISE_RULE: &str = "p -> p·(1 + σ·ε), ε ~ N(0, 1) drawn once per parameter";

pub fn run(args: &PerturbArgs) -> anyhow::Result<()> {
    let sigmas = sorted_levels(&args.sigma, noise::check_sigma, "--sigma")?;
    let fractions = sorted_levels(&args.lesion, lesion::check_fraction, "--lesion")?;
    anyhow::ensure!(
        args.window.is_none() || args.lesion_at > 0,
        "--window sets the recovery windows after a mid-episode lesion: give --lesion-at STEP \
         (a step after 0) too"
    );
    let runs = compare::collect(&args.runs)?;
    let env_id = compare::one_environment(&runs)?;
    let mut agents = Vec::new();
    for (name, group) in &runs {
        for run in group {
            let agent = Agent::load(&run.dir, Device::Cpu)?;
            agents.push((name.clone(), run.dir.display().to_string(), agent));
        }
    }
    // Every question about the input is answered before the first evaluation.
    let groups = parameter_groups(&args.group, &agents)?;
    let (_, _, first) = &agents[0];
    let spec = first.spec().clone();
    lesion::check_step(args.lesion_at, &spec).context("--lesion-at")?;
    let windows = match (args.lesion_at, spec.episode_len) {
        (0, _) | (_, None) => None,
        (at, Some(len)) => Some(Windows::after(
            at,
            args.window.map(usize::try_from).transpose()?,
            len,
        )),
    };
    let env = first.env();
    let episodes = super::eval::held_out_episodes(args.episodes, env)?;
    if let Some(folder) = &args.charts {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("--charts: cannot make the folder `{}`", folder.display()))?;
    }
    let plan = Plan {
        groups,
        sigmas,
        fractions,
        lesion_at: args.lesion_at,
        windows,
        seed: args.seed,
    };
    let held_out = HeldOut {
        episodes,
        seed: args.seed,
        mode: match args.greedy {
            true => ActionMode::Greedy,
            false => ActionMode::Sample,
        },
    };
    let mut progress = Progressing {
        bar: EpisodeProgress::new(agents.len() * plan.evaluations() * episodes),
        done: 0,
        episodes,
    };
    let mut results = Vec::new();
    for (name, dir, agent) in &agents {
        let judge = Judge {
            ac: agent.model(),
            env,
            held_out,
        };
        let label = format!("{name} {dir}");
        let (noise, lesions) = plan.run(&judge, &mut progress, &label)?;
        results.push(RunResult {
            group: name.clone(),
            run: dir.clone(),
            env_steps_trained: agent.env_steps(),
            noise,
            lesions,
        });
    }
    progress.bar.finish();
    let curves = curves(&results, &plan.groups, windows);
    let report = Report {
        env: env_id,
        seed: args.seed,
        episodes,
        mode: held_out.mode,
        noise_rule: NOISE_RULE,
        lesion_at: args.lesion_at,
        window: windows.map(|w| w.width),
        runs: results,
        curves,
    };
    // The numbers first: a chart that cannot be written loses none of them.
    emit(args.json, &report, || human(&report))?;
    match &args.charts {
        Some(folder) => draw(folder, &report.curves, &report.env),
        None => Ok(()),
    }
}

/// What every run goes through: the noise levels of each parameter group and the lesions.
struct Plan {
    groups: Vec<ParamGroup>,
    sigmas: Vec<f64>,
    fractions: Vec<f64>,
    lesion_at: usize,
    windows: Option<Windows>,
    /// Seed of the noise and of the lesions' neurons.
    seed: u64,
}

impl Plan {
    /// Evaluations per run: the agent as trained (σ = 0 and lesion 0 reuse it) and each
    /// perturbation.
    fn evaluations(&self) -> usize {
        1 + self.groups.len() * self.sigmas.iter().filter(|&&s| s > 0.0).count()
            + self.fractions.iter().filter(|&&f| f > 0.0).count()
    }

    /// One run's rewards under every perturbation of the plan.
    fn run(
        &self,
        judge: &Judge,
        progress: &mut Progressing,
        label: &str,
    ) -> anyhow::Result<(Vec<NoiseResult>, Vec<LesionResult>)> {
        let trained = judge.run(None, self.windows, progress, label)?;
        let mut noise = Vec::new();
        for &group in &self.groups {
            let draw = Noise::draw(judge.ac, group, self.seed)?;
            for &sigma in &self.sigmas {
                let reward = match sigma == 0.0 {
                    true => trained.stats.episode_return,
                    false => {
                        let run = || judge.run(None, None, progress, label);
                        draw.with_sigma(sigma, run)??.stats.episode_return
                    }
                };
                noise.push(NoiseResult {
                    group,
                    sigma,
                    reward: reward.into(),
                });
            }
        }
        let mut lesions = Vec::new();
        for &fraction in &self.fractions {
            let lesion = Lesion::new(judge.ac, fraction, self.lesion_at, self.seed)?;
            let silenced = lesion.silenced().to_vec();
            let scored = match fraction == 0.0 {
                true => None,
                false => Some(judge.run(Some(lesion), self.windows, progress, label)?),
            };
            let scored = scored.as_ref().unwrap_or(&trained);
            lesions.push(LesionResult {
                fraction,
                silenced,
                reward: scored.stats.episode_return.into(),
                windows: scored.windows.clone(),
            });
        }
        Ok((noise, lesions))
    }
}

/// The levels of a list option, each checked, in increasing order without repeats (a curve's
/// points).
fn sorted_levels(
    levels: &[f64],
    check: fn(f64) -> Result<(), perturbation::PerturbationError>,
    option: &str,
) -> anyhow::Result<Vec<f64>> {
    for &level in levels {
        check(level).context(option.to_string())?;
    }
    let mut sorted = levels.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    Ok(sorted)
}

/// The groups asked for, each of which every run's core must have; by default every group
/// all the cores have.
fn parameter_groups(
    asked: &[ParamGroup],
    agents: &[(String, String, Agent)],
) -> anyhow::Result<Vec<ParamGroup>> {
    if asked.is_empty() {
        return Ok(ParamGroup::ALL
            .iter()
            .copied()
            .filter(|g| {
                agents
                    .iter()
                    .all(|(_, _, a)| g.tensors(a.model()).is_some())
            })
            .collect());
    }
    for &group in asked {
        for (_, dir, agent) in agents {
            group
                .tensors_or_error(agent.model())
                .with_context(|| format!("--group {}: run `{dir}`", group.name()))?;
        }
    }
    let mut groups = asked.to_vec();
    groups.dedup();
    Ok(groups)
}

/// One agent's evaluations: the episodes, seed and action choice of `plastic eval`.
struct Judge<'a> {
    ac: &'a ActorCritic,
    env: &'a dyn Environment,
    held_out: HeldOut,
}

/// The progress bar over every evaluation of the command.
struct Progressing {
    bar: EpisodeProgress,
    done: usize,
    episodes: usize,
}

impl Judge<'_> {
    fn run(
        &self,
        lesion: Option<Lesion>,
        windows: Option<Windows>,
        progress: &mut Progressing,
        label: &str,
    ) -> anyhow::Result<LesionedStats> {
        let offset = progress.done;
        let mut watch = |ended| {
            progress.bar.set(label, offset + ended);
            crate::interrupt::requested()
        };
        let stats = perturbation::evaluate(
            self.ac,
            self.env,
            self.held_out,
            lesion,
            windows,
            &mut watch,
        )?
        .context("interrupted")?;
        progress.done += progress.episodes;
        Ok(stats)
    }
}

/// The curves across runs: reward against σ per parameter group, against the lesion's size,
/// and (mid-episode lesions) for each lesion size against the steps after the lesion.
fn curves(results: &[RunResult], groups: &[ParamGroup], windows: Option<Windows>) -> Vec<Curve> {
    let mut curves = Vec::new();
    for &group in groups {
        let runs = results.iter().map(|r| {
            let points = r.noise.iter().filter(|n| n.group == group);
            (
                r.group.as_str(),
                points.map(|n| (n.sigma, n.reward.mean)).collect(),
            )
        });
        curves.push(curve(
            format!("noise on `{}`", group.name()),
            format!("noise-{}.svg", group.name()),
            ("σ", "σ (relative noise)"),
            runs.collect(),
        ));
    }
    let runs = results.iter().map(|r| {
        let points = r.lesions.iter().map(|l| (l.fraction, l.reward.mean));
        (r.group.as_str(), points.collect())
    });
    curves.push(curve(
        "lesion".into(),
        "lesion.svg".into(),
        ("fraction", "fraction of hidden neurons silenced"),
        runs.collect(),
    ));
    let Some(w) = windows else {
        return curves;
    };
    // Every run has the same lesion sizes, in the same order.
    for (i, lesion) in results[0].lesions.iter().enumerate() {
        let runs = results.iter().map(|r| {
            let steps = r.lesions[i].windows.iter().enumerate();
            let points = steps.map(|(k, &v)| ((k * w.width) as f64, v));
            (r.group.as_str(), points.collect())
        });
        curves.push(curve(
            format!(
                "recovery after a lesion of {} at step {}: reward per {}-step window",
                lesion.fraction, w.start, w.width
            ),
            format!("recovery-{}.svg", lesion.fraction),
            ("after", "steps after the lesion"),
            runs.collect(),
        ));
    }
    curves
}

/// A curve from each run's (x, score) points, `(group of runs, points)` per run.
fn curve(
    name: String,
    file: String,
    (column, x_label): (&'static str, &str),
    runs: Vec<(&str, Vec<(f64, f64)>)>,
) -> Curve {
    let mut by_group: BTreeMap<&str, Vec<&Vec<(f64, f64)>>> = BTreeMap::new();
    for (group, points) in &runs {
        by_group.entry(group).or_default().push(points);
    }
    let xs: Vec<f64> = runs
        .first()
        .map(|(_, p)| p.iter().map(|&(x, _)| x).collect())
        .unwrap_or_default();
    let points = xs
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let groups: Vec<Spread> = by_group
                .iter()
                .map(|(name, runs)| {
                    let scores: Vec<f64> = runs.iter().map(|p| p[i].1).collect();
                    Spread {
                        name: name.to_string(),
                        median: stats::quantile(&scores, 0.5),
                        q25: stats::quantile(&scores, 0.25),
                        q75: stats::quantile(&scores, 0.75),
                        scores,
                    }
                })
                .collect();
            let mut pairs = Vec::new();
            for (j, a) in groups.iter().enumerate() {
                for b in &groups[j + 1..] {
                    pairs.push(Pair {
                        a: a.name.clone(),
                        b: b.name.clone(),
                        test: stats::mann_whitney(&a.scores, &b.scores),
                    });
                }
            }
            Point { x, groups, pairs }
        })
        .collect();
    Curve {
        name,
        file,
        column,
        x_label: x_label.into(),
        points,
    }
}

/// Each curve as an SVG file in `folder`, one band per group of runs.
fn draw(folder: &std::path::Path, curves: &[Curve], env: &str) -> anyhow::Result<()> {
    for c in curves {
        let Some(first) = c.points.first() else {
            continue;
        };
        let names: Vec<&str> = first.groups.iter().map(|g| g.name.as_str()).collect();
        let bands: Vec<chart::Curve> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let runs = first.groups[i].scores.len();
                let per_run: Vec<Vec<(f64, f64)>> = (0..runs)
                    .map(|r| {
                        c.points
                            .iter()
                            .map(|p| (p.x, p.groups[i].scores[r]))
                            .collect()
                    })
                    .collect();
                chart::band(name, &per_run)
            })
            .collect();
        let path = folder.join(&c.file);
        let title = format!("{} on {env}: reward per episode across runs", c.name);
        chart::write(&path, &bands, &c.x_label, "reward per episode", &title)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn human(r: &Report) -> String {
    let mode = match r.mode {
        ActionMode::Greedy => ", greedy",
        ActionMode::Sample => "",
    };
    let mut lines = vec![format!(
        "{} under perturbation, {} episodes per evaluation, seed {}{mode}; noise: {}; \
         reward per episode: median [25th, 75th percentile] across runs",
        r.env, r.episodes, r.seed, r.noise_rule
    )];
    for c in &r.curves {
        lines.push(String::new());
        let Some(first) = c.points.first() else {
            continue;
        };
        lines.push(format!("{} ({})", c.name, c.x_label));
        let names: Vec<&str> = first.groups.iter().map(|g| g.name.as_str()).collect();
        let mut heading = format!("{:>8}", c.column);
        for name in &names {
            heading += &format!(" {name:>26}");
        }
        if names.len() > 1 {
            heading += "  rank-sum p (two-sided)";
        }
        lines.push(heading);
        for p in &c.points {
            let mut line = format!("{:>8}", p.x);
            for g in &p.groups {
                let cell = format!("{:.3} [{:.3}, {:.3}]", g.median, g.q25, g.q75);
                line += &format!(" {cell:>26}");
            }
            let tests: Vec<String> = p
                .pairs
                .iter()
                .map(|t| format!("{} vs {}: {:.4}", t.a, t.b, t.test.p_value))
                .collect();
            if !tests.is_empty() {
                line += &format!("  {}", tests.join(", "));
            }
            lines.push(line);
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_give_each_groups_quartiles_and_rank_sum_tests_at_each_point() {
        let runs = vec![
            ("a", vec![(0.0, 1.0), (0.5, 0.0)]),
            ("b", vec![(0.0, 4.0), (0.5, 9.0)]),
            ("a", vec![(0.0, 2.0), (0.5, 1.0)]),
            ("a", vec![(0.0, 3.0), (0.5, 5.0)]),
            ("b", vec![(0.0, 5.0), (0.5, 7.0)]),
            ("b", vec![(0.0, 6.0), (0.5, 8.0)]),
        ];
        let c = curve("c".into(), "c.svg".into(), ("σ", "σ"), runs);
        assert_eq!(c.points.len(), 2);
        let at_zero = &c.points[0];
        assert_eq!(at_zero.x, 0.0);
        let a = &at_zero.groups[0];
        assert_eq!(
            (a.name.as_str(), &a.scores[..]),
            ("a", &[1.0, 2.0, 3.0][..])
        );
        // NumPy's quartiles of 1, 2, 3: 1.5, 2, 2.5.
        assert_eq!((a.q25, a.median, a.q75), (1.5, 2.0, 2.5));
        // a below b in every pair, 3 against 3: exact p = 2/20.
        let pair = &at_zero.pairs[0];
        assert_eq!(
            (pair.a.as_str(), pair.b.as_str(), pair.test.u),
            ("a", "b", 0.0)
        );
        assert_eq!(
            pair.test.p_value,
            stats::mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).p_value
        );
        let b = &c.points[1].groups[1];
        assert_eq!((b.scores.as_slice(), b.median), (&[9.0, 7.0, 8.0][..], 8.0));
    }
}
