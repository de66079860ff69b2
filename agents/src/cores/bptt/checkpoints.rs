//! Which steps' traces the hand-written pass keeps for the backward pass
//! (`a2c.trace_checkpoint_every`): every k-th, the others rebuilt going back from the kept one
//! before them, bit for bit.
use super::{steps_on_host, Engine};
use crate::cores::Core;

/// `a2c.trace_checkpoint_every`: `"auto"` or a number of steps `k ≥ 1` (1 keeps every trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceCheckpoints {
    /// [`host_every`] where a plastic core's steps run on the host, else every trace: off
    /// the host a rebuilt trace costs a whole step in libtorch operations, and STPN's are
    /// rebuilt for the whole batch (`bench core`, B 512, H 55: k = 4 ran 1.3–1.5× slower).
    #[default]
    Auto,
    Every(usize),
}

/// The most bytes of one batch row's rebuilt traces a backward task holds, about a core's L2
/// cache (1 MiB on the machines measured): they stay there, where kept traces come from
/// memory.
const SEGMENT_BYTES: usize = 1 << 20;

/// The most steps `auto` keeps a trace for: past it the time no longer falls (maze, B 30,
/// H 100: 16 and 32 ran alike).
const MAX_AUTO_EVERY: usize = 16;

/// `auto` on the host: the most steps whose rebuilt traces of one row (`k − 1` steps of
/// `traces_per_step` `H × H` traces of `bytes` each) fit in `SEGMENT_BYTES`, at most
/// `MAX_AUTO_EVERY`. Measured in Backpropamine's setting (2 threads): k = 16 ran whole
/// updates 1.2–1.3× faster than k = 1, with a sixteenth of the traces.
pub fn host_every(hidden: usize, traces_per_step: usize, bytes: usize) -> usize {
    let per_step = (hidden * hidden * traces_per_step * bytes).max(1);
    (1 + SEGMENT_BYTES / per_step).min(MAX_AUTO_EVERY)
}

impl TraceCheckpoints {
    /// Every how many steps the traces of `core` are kept when `engine` runs it.
    pub fn every(self, core: &Core, engine: Engine) -> usize {
        match self {
            Self::Every(k) => k,
            // STPN's pass rebuilds a dropped step's fast weights for the whole batch, a whole
            // forward step: `auto` keeps every step's, as off the host.
            Self::Auto if steps_on_host(core, engine) && core.plasticity().is_some() => host_every(
                core.hidden() as usize,
                core.config().traces_per_step(),
                core.kind().elt_size_in_bytes(),
            ),
            Self::Auto => 1,
        }
    }
}

impl std::fmt::Display for TraceCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("\"auto\""),
            Self::Every(k) => write!(f, "{k}"),
        }
    }
}

impl std::str::FromStr for TraceCheckpoints {
    type Err = String;

    /// `auto` or a whole number ≥ 1, as on the command line.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            _ => match s.parse::<usize>() {
                Ok(k) if k >= 1 => Ok(Self::Every(k)),
                _ => Err(format!("`{s}` is neither `auto` nor a number of steps ≥ 1")),
            },
        }
    }
}

word_or_count!(
    TraceCheckpoints { Auto = "auto", Every(count) },
    "\"auto\" or a number of steps ≥ 1"
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[test]
    fn auto_keeps_a_rows_rebuilt_segment_within_its_budget() {
        // Backpropamine's H 100 in f32: 40 kB a trace, capped at 16 steps.
        assert_eq!(host_every(100, 1, 4), MAX_AUTO_EVERY);
        // H 256: 256 kB a trace, 4 rebuilt ones fit; under retroactive modulation 2.
        assert_eq!(host_every(256, 1, 4), 5);
        assert_eq!(host_every(256, 2, 4), 3);
        // A trace larger than the budget: every trace kept.
        assert_eq!(host_every(1024, 1, 4), 1);
    }

    #[test]
    fn the_setting_reads_and_writes_auto_or_a_count() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct A {
            k: TraceCheckpoints,
        }
        for (text, k) in [
            ("k = \"auto\"\n", TraceCheckpoints::Auto),
            ("k = 8\n", TraceCheckpoints::Every(8)),
        ] {
            assert_eq!(toml::from_str::<A>(text).unwrap(), A { k });
            assert_eq!(toml::to_string(&A { k }).unwrap(), text);
        }
        for bad in ["k = 0", "k = -3", "k = \"often\""] {
            assert!(toml::from_str::<A>(bad).is_err(), "{bad} was taken");
        }
        assert_eq!("auto".parse(), Ok(TraceCheckpoints::Auto));
        assert_eq!("12".parse(), Ok(TraceCheckpoints::Every(12)));
        assert!("0".parse::<TraceCheckpoints>().is_err());
    }
}
