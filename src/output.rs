//! Printing results either for people or, with `--json`, as one JSON object for scripts.
use anyhow::Context;
use plastic_envs::rollout::{Interval, Report};
use serde::Serialize;

/// `mean ± spread` to 3 decimals, or `mean ± n/a` where the spread is unknown (one episode).
pub fn plus_minus(mean: f64, spread: Option<f64>) -> String {
    match spread {
        Some(s) => format!("{mean:.3} ± {s:.3}"),
        None => format!("{mean:.3} ± n/a"),
    }
}

pub fn emit<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let text = match json {
        true => serde_json::to_string(value)?,
        false => human(),
    };
    print_line(&text)
}

/// Writes `text` and a newline to the standard output. A reader that closed the pipe
/// (`| head`) wants no more, which ends the output quietly: commands that handle stop
/// signals ignore SIGPIPE, where `println!` would panic.
fn print_line(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("cannot write to the standard output"),
    }
}

/// A [`Report`] as `plastic rollout` and `plastic eval` print it: a heading, one row per
/// policy (mean with its 95% interval; a regret column where the environment reports regret),
/// and the Bayes-optimal regret and percentage of the oracle where there are.
pub fn report_table(r: &Report) -> String {
    let mut out = match (&r.checkpoint, r.env_steps_trained) {
        (Some(c), Some(steps)) => format!("{c} ({steps} training steps) on "),
        _ => String::new(),
    };
    out += &format!("{}, {} episodes, seed {}\n", r.env, r.episodes, r.seed);
    let regret = r.policies.iter().any(|p| p.stats.regret.is_some());
    let fmt = |e: Interval| plus_minus(e.mean, e.ci95);
    out += &format!(
        "{:<16} {:>22} {:>12}",
        "policy", "reward (95% CI)", "length"
    );
    if regret {
        out += &format!(" {:>22}", "regret (95% CI)");
    }
    for p in &r.policies {
        out += &format!(
            "\n{:<16} {:>22} {:>12.1}",
            p.policy,
            fmt(p.stats.episode_return.into()),
            p.stats.episode_len.mean
        );
        if regret {
            let cell = p.stats.regret.map_or("-".into(), |e| fmt(e.into()));
            out += &format!(" {cell:>22}");
        }
    }
    if let Some(b) = r.bayes_optimal_exact {
        out += &format!("\nBayes-optimal regret, exact: {b:.4}");
    }
    // The oracle judged against itself says nothing.
    if let (Some(p), Some(first)) = (r.percent_of_oracle, r.policies.first()) {
        if first.policy != "oracle" {
            out += &format!("\n{} reward = {p:.1}% of the oracle's", first.policy);
        }
    }
    out
}
