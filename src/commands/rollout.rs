//! `plastic rollout`: a reference policy for whole episodes, reported as `plastic eval` reports.
use crate::cli::RolloutArgs;
use crate::output::{emit, report_table};
use crate::progress::EpisodeProgress;
use anyhow::Context;
use plastic_envs::memory;
use plastic_envs::registry;
use plastic_envs::rollout::{
    oracle_stats, reference_policy, run_episodes_unless, PolicyResult, Report,
};

pub fn run(args: &RolloutArgs) -> anyhow::Result<()> {
    let env = registry::parse(&args.env)?;
    let episodes = match args.episodes {
        Some(n) => usize::try_from(n)?,
        None => env.default_eval_episodes(),
    };
    let batch = usize::try_from(args.batch)?.min(episodes);
    let spec = env.build(1)?.spec().clone();
    memory::ensure_fits(
        &[
            memory::env_batch(&spec, batch, "--batch", 0),
            memory::episode_records(episodes, "--episodes"),
        ],
        "--batch or --episodes",
    )?;
    let oracle = oracle_stats(env.as_ref(), episodes, args.seed)?;
    let stats = match (args.policy.as_str(), &oracle) {
        ("oracle", Some(stats)) => stats.clone(),
        _ => {
            let mut batched = env.build(batch)?;
            let mut policy = reference_policy(env.as_ref(), &args.policy, batch, args.seed)?;
            let mut progress = EpisodeProgress::new(episodes);
            let mut watch = |ended| {
                progress.set(&args.policy, ended);
                false
            };
            let stats = run_episodes_unless(
                batched.as_mut(),
                policy.as_mut(),
                episodes,
                args.seed,
                &mut watch,
            )
            .with_context(|| format!("rolling out `{}` on `{}`", args.policy, args.env))?
            .expect("never stopped");
            progress.finish();
            stats
        }
    };
    let policies = vec![PolicyResult {
        policy: args.policy.clone(),
        stats,
    }];
    let report = Report::new(env.as_ref(), args.seed, episodes, policies, oracle.as_ref());
    emit(args.json, &report, || report_table(&report))
}
