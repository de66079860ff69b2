//! Checking sizes against the memory this machine has, before allocating: an allocation that
//! fails in Rust aborts the process, and one the kernel over-commits ends in its
//! out-of-memory killer, so a size no machine could hold is refused first, with the keys
//! (or arguments) to lower named. The CLI and the Python package both check through here.
use crate::EnvSpec;

const GIB: f64 = (1u64 << 30) as f64;

/// One part of what a task needs, with the keys it grows with.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryNeed {
    /// What it is and which keys set its size, e.g. `Hebbian traces (env.num_envs × ...)`.
    pub what: String,
    pub bytes: f64,
}

/// Needs that together exceed the memory available: the message lists the largest parts
/// and says what to lower.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "this needs at least {} of memory and {} is available: {}. Lower {lower}",
    size(*needed), size(*available), parts.join(", ")
)]
pub struct OutOfMemory {
    pub needed: f64,
    pub available: f64,
    /// The parts that matter, largest first, as `"<size> <what>"`.
    pub parts: Vec<String>,
    pub lower: String,
}

/// Refuses `needs` when together they exceed the memory available now; `lower` says what to
/// reduce.
pub fn ensure_fits(needs: &[MemoryNeed], lower: &str) -> Result<(), OutOfMemory> {
    match available_bytes() {
        Some(available) => fits_in(needs, available, lower),
        None => Ok(()),
    }
}

fn fits_in(needs: &[MemoryNeed], available: f64, lower: &str) -> Result<(), OutOfMemory> {
    let total: f64 = needs.iter().map(|n| n.bytes).sum();
    if total <= available {
        return Ok(());
    }
    // Parts too small to matter would only lengthen the message.
    let mut parts: Vec<&MemoryNeed> = needs.iter().filter(|n| n.bytes >= total / 1000.0).collect();
    parts.sort_by(|a, b| b.bytes.total_cmp(&a.bytes));
    Err(OutOfMemory {
        needed: total,
        available,
        parts: parts
            .iter()
            .map(|n| format!("{} {}", size(n.bytes), n.what))
            .collect(),
        lower: lower.to_string(),
    })
}

/// A batch of `batch` environments like `spec`, sized by the flag `key`, with `extra` bytes
/// of the caller's own per environment.
pub fn env_batch(spec: &EnvSpec, batch: usize, key: &str, extra: usize) -> MemoryNeed {
    let each = spec.min_bytes_per_env() + extra;
    MemoryNeed {
        what: format!("environments ({key} {batch}, {each} bytes each)"),
        bytes: batch as f64 * each as f64,
    }
}

/// The return, length and regret kept for each of `episodes` episodes (set by `key`).
pub fn episode_records(episodes: usize, key: &str) -> MemoryNeed {
    MemoryNeed {
        what: format!("results of {key} {episodes}"),
        bytes: episodes as f64 * 3.0 * 8.0,
    }
}

/// Human-readable bytes.
pub fn size(bytes: f64) -> String {
    match bytes {
        b if b >= GIB => format!("{:.1} GiB", b / GIB),
        b => format!("{:.1} MiB", b / (1u64 << 20) as f64),
    }
}

/// What can be allocated without swapping: the kernel's `MemAvailable`, or less under a
/// cgroup (container, SLURM job) limit. `None` where neither can be read.
pub fn available_bytes() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let mut available = kib * 1024.0;
    let read = |f: &str| -> Option<f64> {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{f}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    if let (Some(max), Some(current)) = (read("memory.max"), read("memory.current")) {
        available = available.min(max - current);
    }
    Some(available)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_beyond_the_machine_are_refused_with_their_parts_named() {
        let need = |what: &str, bytes: f64| MemoryNeed {
            what: what.into(),
            bytes,
        };
        assert!(ensure_fits(&[need("small", 1e6)], "it").is_ok());
        let msg = ensure_fits(
            &[
                need("envs (env.num_envs)", 1e16),
                need("traces", 1e18),
                need("results", 1e12),
            ],
            "env.num_envs",
        )
        .unwrap_err()
        .to_string();
        // Largest first; parts under a thousandth of the whole are left out.
        assert!(
            msg.starts_with("this needs at least 940636731.7 GiB")
                && msg.contains("931322574.6 GiB traces, 9313225.7 GiB envs (env.num_envs). ")
                && !msg.contains("results")
                && msg.ends_with("Lower env.num_envs"),
            "{msg}"
        );
        let err = fits_in(&[need("x", 3.0 * GIB)], 2.0 * GIB, "y").unwrap_err();
        assert_eq!(
            err.to_string(),
            "this needs at least 3.0 GiB of memory and 2.0 GiB is available: 3.0 GiB x. Lower y"
        );
    }
}
