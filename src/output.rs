//! Printing results either for people or, with `--json`, as one JSON object for scripts.
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
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        println!("{}", human());
    }
    Ok(())
}
