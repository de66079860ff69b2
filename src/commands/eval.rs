//! `plastic eval`: a trained agent on held-out episodes, next to the reference policies.
use crate::checkpoint;
use crate::cli::EvalArgs;
use crate::output::{emit, report_table};
use crate::progress::EpisodeProgress;
use anyhow::Context;
use plastic_agents::acting::{self, ActionMode};
use plastic_agents::{ActorCritic, Agent};
use plastic_envs::memory;
use plastic_envs::rollout::{oracle_stats, reference_stats, PolicyResult, Report, RolloutStats};
use plastic_envs::{registry, Environment};
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
    let mut stop = |_| crate::interrupt::requested();
    Ok(acting::evaluate(ac, env, episodes, seed, mode, &mut stop)?)
}

/// The agent's row name in reports and the console.
pub fn agent_name(mode: ActionMode) -> &'static str {
    match mode {
        ActionMode::Greedy => "agent (greedy)",
        ActionMode::Sample => "agent",
    }
}

/// `--episodes`, or the environment's default, once their records are known to fit in memory.
pub fn held_out_episodes(asked: Option<u64>, env: &dyn Environment) -> anyhow::Result<usize> {
    let episodes = match asked {
        Some(n) => usize::try_from(n)?,
        None => env.default_eval_episodes(),
    };
    memory::ensure_fits(
        &[memory::episode_records(episodes, "--episodes")],
        "--episodes",
    )?;
    Ok(episodes)
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let loaded = checkpoint::load(&args.run)?;
    let trained_agent = Agent::from_checkpoint(&loaded.checkpoint, Device::Cpu)?;
    let ac = trained_agent.model();
    let other_env;
    let env = match &args.env {
        None => trained_agent.env(),
        Some(id) => {
            other_env = registry::parse(id).context("--env")?;
            let spec = other_env.build(1)?.spec().clone();
            trained_agent.check_fits(&spec)?;
            other_env.as_ref()
        }
    };
    let episodes = held_out_episodes(args.episodes, env)?;
    let mode = if args.greedy {
        ActionMode::Greedy
    } else {
        ActionMode::Sample
    };
    // First: a picture that cannot be written fails before the evaluation, not after it.
    if let Some(path) = &args.render {
        let title = format!("{} on {}", loaded.checkpoint.path.display(), env.id());
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
    // The agent, random and the environment's reference policies, one bar across them all.
    let policies = 2 + env.reference_policies().len();
    let mut progress = EpisodeProgress::new(episodes * policies);
    let name = agent_name(mode);
    let mut watch = |ended| {
        progress.set(name, ended);
        crate::interrupt::requested()
    };
    let agent =
        acting::evaluate(ac, env, episodes, args.seed, mode, &mut watch)?.context("interrupted")?;
    let (mut offset, mut current) = (episodes, String::new());
    let mut watch = |policy: &str, ended| {
        if policy != current {
            if !current.is_empty() {
                offset += episodes;
            }
            current = policy.to_string();
        }
        progress.set(policy, offset + ended);
        crate::interrupt::requested()
    };
    let references =
        reference_stats(env, episodes, args.seed, &mut watch)?.context("interrupted")?;
    progress.finish();
    let oracle = oracle_stats(env, episodes, args.seed)?;
    let mut policies = vec![PolicyResult {
        policy: name.into(),
        stats: agent,
    }];
    policies.extend(
        references
            .into_iter()
            .map(|(policy, stats)| PolicyResult { policy, stats }),
    );
    if let Some(stats) = &oracle {
        policies.push(PolicyResult {
            policy: "oracle".into(),
            stats: stats.clone(),
        });
    }
    let mut report = Report::new(env, args.seed, episodes, policies, oracle.as_ref());
    report.checkpoint = Some(loaded.checkpoint.path.display().to_string());
    report.env_steps_trained = Some(trained_agent.env_steps());
    emit(args.json, &report, || report_table(&report))
}
