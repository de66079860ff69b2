use crate::cli::RolloutArgs;
use crate::output::{emit, plus_minus};
use anyhow::Context;
use plastic_envs::registry;
use plastic_envs::rollout::{oracle_stats, reference_policy, run_episodes, Estimate, RolloutStats};
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
    let env = registry::parse(&args.env)?;
    let episodes = usize::try_from(args.episodes)?;
    let batch = usize::try_from(args.batch)?.min(episodes);
    let oracle = match args.policy.as_str() {
        "oracle" => oracle_stats(env.as_ref(), episodes, args.seed)?,
        _ => None,
    };
    let spec = env.build(1)?.spec().clone();
    let stats = match oracle {
        Some(stats) => stats,
        None => {
            crate::memory::ensure_fits(
                &[
                    crate::memory::env_batch(&spec, batch, "--batch", 0),
                    crate::memory::episode_records(episodes, "--episodes"),
                ],
                "--batch or --episodes",
            )?;
            let mut batched = env.build(batch)?;
            let mut policy = reference_policy(env.as_ref(), &args.policy, batch, args.seed)?;
            run_episodes(batched.as_mut(), policy.as_mut(), episodes, args.seed)
                .with_context(|| format!("rolling out `{}` on `{}`", args.policy, args.env))?
        }
    };
    let report = Report {
        env: env.id(),
        policy: &args.policy,
        seed: args.seed,
        stats,
    };
    emit(args.json, &report, || human(&report))
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
