//! A trained actor-critic under perturbation: relative Gaussian noise on groups of its
//! parameters ([`noise`]) and lesions of its hidden neurons ([`lesion`]), evaluated on the
//! held-out episodes `plastic eval` uses (docs/perturbation.md).
pub mod lesion;
pub mod noise;

pub use lesion::{evaluate, HeldOut, Lesion, LesionedStats, Windows};
pub use noise::{Noise, ParamGroup};

#[derive(Debug, thiserror::Error)]
pub enum PerturbationError {
    #[error(
        "σ = {0} is not a noise level: σ must be a finite number ≥ 0 (each parameter p becomes \
         p·(1 + σ·ε), so σ = 0 leaves the agent as trained)"
    )]
    Sigma(f64),
    #[error(
        "a lesion fraction of {0} is outside [0, 1]: it is the share of hidden neurons silenced \
         (0: none, 1: all)"
    )]
    Fraction(f64),
    #[error(
        "the `{core}` core has no `{group}` parameters (α belongs to plastic cores); its groups \
         are {available}"
    )]
    MissingGroup {
        group: &'static str,
        core: &'static str,
        available: String,
    },
    #[error(
        "a lesion at step {step} never happens: episodes of `{env}` last {len} steps (steps \
         count from 0, so the last one is {last})",
        last = .len.saturating_sub(1)
    )]
    LesionStep {
        step: usize,
        env: String,
        len: usize,
    },
    #[error(
        "`{0}` has no fixed episode length, so the windows after a mid-episode lesion have no \
         end: lesion at step 0 instead"
    )]
    NoHorizon(String),
}
