//! `plastic eval`: a trained agent on held-out episodes, next to the reference policies.
use crate::checkpoint;
use crate::cli::EvalArgs;
use crate::output::{emit, plus_minus};
use anyhow::Context;
use plastic_agents::acting::{self, ActionMode};
use plastic_agents::{ActorCritic, Agent};
use plastic_envs::rollout::{oracle_stats, reference_stats, Estimate, RolloutStats};
use plastic_envs::{registry, Environment};
use serde::Serialize;
use tch::Device;

/// Evaluation episodes are seeded apart from training ones.
pub const EVAL_SALT: u64 = 0x0E7A_1000_0000_0000;

/// `episodes` whole episodes of `ac` on `env`; `None` if a stop was asked for first.
pub fn agent_stats(
    ac: &ActorCritic,
    env: &dyn Environment,
    episodes: usize,
    seed: u64,
    mode: ActionMode,
) -> anyhow::Result<Option<RolloutStats>> {
    Ok(acting::evaluate(
        ac,
        env,
        episodes,
        seed,
        mode,
        &crate::interrupt::requested,
    )?)
}

/// Mean with a 95% confidence interval (normal approximation; `None` for one episode).
#[derive(Serialize)]
struct Interval {
    mean: f64,
    ci95: Option<f64>,
}

impl From<Estimate> for Interval {
    fn from(e: Estimate) -> Self {
        Self {
            mean: e.mean,
            ci95: e.std_err.map(|s| 1.96 * s),
        }
    }
}

#[derive(Serialize)]
struct Row {
    policy: String,
    reward: Interval,
    regret: Option<Interval>,
}

#[derive(Serialize)]
struct Report {
    checkpoint: String,
    env: String,
    episodes: usize,
    seed: u64,
    env_steps_trained: u64,
    agent: Row,
    /// Reference policies on the same episodes (same environment seed).
    references: Vec<Row>,
    /// Bandits: the exact Bayes-optimal regret, where it can be computed.
    bayes_optimal_exact: Option<f64>,
    /// Maze: the agent's mean reward as a percentage of the shortest-path oracle's.
    percent_of_oracle: Option<f64>,
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let loaded = checkpoint::load(&args.run)?;
    let trained_agent = Agent::from_checkpoint(&loaded.checkpoint, Device::Cpu)?;
    let ac = trained_agent.model();
    let other_env;
    let (env, spec) = match &args.env {
        None => (trained_agent.env(), trained_agent.spec().clone()),
        Some(id) => {
            other_env = registry::parse(id).context("--env")?;
            let spec = other_env.build(1)?.spec().clone();
            trained_agent.check_fits(&spec)?;
            (other_env.as_ref(), spec)
        }
    };
    let episodes = match args.episodes {
        Some(n) => usize::try_from(n)?,
        None => env.default_eval_episodes(),
    };
    crate::memory::ensure_fits(
        &[crate::memory::episode_records(episodes, "--episodes")],
        "--episodes",
    )?;
    let mode = if args.greedy {
        ActionMode::Greedy
    } else {
        ActionMode::Sample
    };
    // First: a picture that cannot be written fails before the evaluation, not after it.
    if let Some(path) = &args.render {
        let title = format!("{} on {}", loaded.checkpoint.path.display(), spec.id);
        let r = crate::render::episode(ac, env, path, mode, args.seed, &title)?;
        let frames = match (r.frames, r.cut) {
            (1, _) => "one episode".to_string(),
            (n, false) => format!("{n} frames"),
            (n, true) => format!("{n} frames (the episode was longer)"),
        };
        eprintln!(
            "wrote {}: {frames}, episode reward {:.3}",
            path.display(),
            r.reward
        );
    }
    let agent = agent_stats(ac, env, episodes, args.seed, mode)?.context("interrupted")?;
    let row = |policy: &str, s: RolloutStats| Row {
        policy: policy.into(),
        reward: s.episode_return.into(),
        regret: s.regret.map(Into::into),
    };
    let mut references: Vec<Row> = reference_stats(env, episodes, args.seed)?
        .into_iter()
        .map(|(name, stats)| row(&name, stats))
        .collect();
    let oracle = oracle_stats(env, episodes, args.seed)?.map(|s| s.episode_return);
    let percent_of_oracle = oracle.map(|o| 100.0 * agent.episode_return.mean / o.mean);
    if let Some(oracle) = oracle {
        references.push(Row {
            policy: "oracle".into(),
            reward: oracle.into(),
            regret: None,
        });
    }
    let bayes_optimal_exact = env.bayes_optimal_regret();
    let report = Report {
        checkpoint: loaded.checkpoint.path.display().to_string(),
        env: spec.id,
        episodes,
        seed: args.seed,
        env_steps_trained: trained_agent.env_steps(),
        agent: row(
            if args.greedy {
                "agent (greedy)"
            } else {
                "agent"
            },
            agent,
        ),
        references,
        bayes_optimal_exact,
        percent_of_oracle,
    };
    emit(args.json, &report, || human(&report))
}

fn human(r: &Report) -> String {
    let mut out = format!(
        "{} ({} training steps) on {}, {} episodes, seed {}\n{:<16} {:>22} {:>22}\n",
        r.checkpoint,
        r.env_steps_trained,
        r.env,
        r.episodes,
        r.seed,
        "policy",
        "reward (95% CI)",
        "regret (95% CI)"
    );
    let fmt = |i: &Interval| plus_minus(i.mean, i.ci95);
    for row in std::iter::once(&r.agent).chain(&r.references) {
        out += &format!(
            "{:<16} {:>22} {:>22}\n",
            row.policy,
            fmt(&row.reward),
            row.regret.as_ref().map_or("-".into(), fmt)
        );
    }
    if let Some(b) = r.bayes_optimal_exact {
        out += &format!("Bayes-optimal regret, exact: {b:.4}\n");
    }
    if let Some(p) = r.percent_of_oracle {
        out += &format!("agent reward = {p:.1}% of the oracle's\n");
    }
    out.trim_end().to_string()
}
