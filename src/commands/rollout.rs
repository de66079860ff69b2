use crate::cli::RolloutArgs;
use crate::output::{emit, plus_minus};
use anyhow::{bail, Context};
use plastic_envs::bandits::policies::make_policy;
use plastic_envs::maze::oracle_returns;
use plastic_envs::registry::EnvConfig;
use plastic_envs::rollout::{run_episodes, Estimate, RolloutStats};
use plastic_envs::{Policy, RandomPolicy};
use serde::Serialize;

#[derive(Serialize)]
struct Report<'a> {
    env: String,
    policy: &'a str,
    seed: u64,
    #[serde(flatten)]
    stats: RolloutStats,
}

pub fn run(args: &RolloutArgs) -> anyhow::Result<()> {
    let config = EnvConfig::parse(&args.env)?;
    let episodes = usize::try_from(args.episodes)?;
    let batch = usize::try_from(args.batch)?.min(episodes);
    let (stats, env) = match (&config, args.policy.as_str()) {
        (EnvConfig::Maze(maze), "oracle") => {
            let returns = oracle_returns(maze, episodes, args.seed);
            let len = maze.len as f64;
            let stats = RolloutStats {
                episodes,
                episode_return: Estimate::of(&returns),
                episode_len: Estimate {
                    mean: len,
                    // Every maze episode has the same length.
                    std_err: Some(0.0),
                },
                regret: None,
            };
            (stats, config.build(1)?.spec().id.clone())
        }
        _ => {
            let spec = config.build(1)?.spec().clone();
            crate::memory::ensure_fits(
                &[
                    crate::memory::env_batch(&spec, batch, "--batch", 0),
                    crate::memory::episode_records(episodes, "--episodes"),
                ],
                "--batch or --episodes",
            )?;
            let mut env = config.build(batch)?;
            let mut policy = policy_for(
                &config,
                &args.policy,
                env.spec().num_actions,
                batch,
                args.seed,
            )?;
            let stats = run_episodes(env.as_mut(), policy.as_mut(), episodes, args.seed)
                .with_context(|| format!("rolling out `{}` on `{}`", args.policy, args.env))?;
            (stats, env.spec().id.clone())
        }
    };
    let report = Report {
        env,
        policy: &args.policy,
        seed: args.seed,
        stats,
    };
    emit(args.json, &report, || human(&report))
}

fn policy_for(
    config: &EnvConfig,
    name: &str,
    num_actions: usize,
    batch: usize,
    seed: u64,
) -> anyhow::Result<Box<dyn Policy>> {
    Ok(match (config, name) {
        (_, "random") => Box::new(RandomPolicy::new(num_actions, batch, seed)),
        (EnvConfig::Bandit(bandit), _) => make_policy(name, bandit, batch, seed)?,
        (EnvConfig::Maze(_), _) => {
            bail!("unknown policy `{name}` for the maze; maze policies: random, oracle")
        }
        (EnvConfig::Gym(_), _) => {
            bail!("unknown policy `{name}` for a Gymnasium environment; the policy there: random")
        }
    })
}

fn human(r: &Report) -> String {
    let s = &r.stats;
    let estimate = |e: &Estimate| plus_minus(e.mean, e.std_err);
    let mut out = format!(
        "{} on {} ({} episodes, seed {})\nmean episode reward: {} (standard error)",
        r.policy,
        r.env,
        s.episodes,
        r.seed,
        estimate(&s.episode_return)
    );
    if let Some(regret) = &s.regret {
        out += &format!(
            "\nmean regret:         {} (standard error)",
            estimate(regret)
        );
    }
    out
}
