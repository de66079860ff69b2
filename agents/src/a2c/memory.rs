//! A lower bound of the memory a training run takes, so that a size no machine could hold is
//! refused before anything is allocated: an allocation that fails in Rust aborts the
//! process, and one the kernel over-commits ends in its out-of-memory killer.
use super::config::TrainerConfig;
use super::errors::TrainError;
use super::rollout::rollout_shape;
use crate::cores::{host_every, CoreConfigError, StpShape, TraceCheckpoints};
use crate::encoders::EncoderSizes;
use plastic_envs::memory::MemoryNeed;
use plastic_envs::EnvSpec;

const F32: f64 = 4.0;

/// What training `config` on `num_envs` copies of `spec` needs at least: the environments,
/// the recurrent state, and what one rollout keeps for the backward pass (with the
/// hand-written pass, the leanest engine; autograd keeps about three times as much).
pub fn training_needs(
    config: &TrainerConfig,
    spec: &EnvSpec,
    num_envs: usize,
) -> Result<Vec<MemoryNeed>, TrainError> {
    let (steps, _) = rollout_shape(&config.a2c, spec)?;
    let core = &config.core;
    let (b, h, t) = (num_envs as f64, core.hidden as f64, steps as f64);
    let obs = spec.obs_dim as f64;
    let encoder = EncoderSizes::of(&config.encoder, spec).map_err(CoreConfigError::from)?;
    let encoded = encoder.activations as f64;
    let traces = core.traces_per_step() as f64;
    let cells = if core.kind.is_lstm() { 2.0 } else { 1.0 };
    let fast = core.fast_weights_per_row(encoder.features) as f64;
    // Traces kept for the backward pass: every k-th step's (`auto` at its leanest, on the
    // host in f32). Rebuilt ones add a segment's worth, per batch row in cache on the host.
    let k = match config.a2c.trace_checkpoint_every {
        TraceCheckpoints::Every(k) => k,
        TraceCheckpoints::Auto => host_every(core.hidden, core.traces_per_step(), F32 as usize),
    };
    let kept = steps.div_ceil(k) as f64;
    // STPN's fast weights: every k-th step's under its hand-written pass (`auto` keeps every
    // step's there, and autograd always does).
    let fast_kept = match config.a2c.trace_checkpoint_every {
        TraceCheckpoints::Every(k) => steps.div_ceil(k),
        TraceCheckpoints::Auto => steps,
    } as f64;
    let env_bytes = spec.min_bytes_per_env() as f64;
    let mut needs = vec![
        MemoryNeed {
            what: format!("environments (env.num_envs = {num_envs}, {env_bytes} bytes each)"),
            bytes: b * env_bytes,
        },
        MemoryNeed {
            what: format!(
                "recurrent state and traces (env.num_envs = {num_envs} × core.hidden = {}²)",
                core.hidden
            ),
            bytes: b * core.state_bytes_per_row(encoder.features),
        },
        MemoryNeed {
            what: format!(
                "the rollout kept for backpropagation (a2c.rollout_len = {steps} steps × \
                 env.num_envs = {num_envs} × core.hidden = {}; traces of every {k}th step, \
                 a2c.trace_checkpoint_every = {})",
                core.hidden, config.a2c.trace_checkpoint_every
            ),
            // Per step and row: the cell's activations, the input (which PPO re-runs), the
            // encoder's activations, action, reward and flags; per kept step and row, the
            // traces and STPN's fast weights. PPO's re-runs hold a minibatch's share of this
            // at a time, after collection's is gone.
            bytes: b
                * (t * (4.0 * cells * h * F32 + (obs + encoded) * F32 + 16.0)
                    + kept * traces * h * h * F32
                    + fast_kept * fast * F32),
        },
    ];
    if core.kind.is_stpn() && core.stp == StpShape::PerSynapse {
        // Each of λ and γ is `H × (in + H)`, as one row's fast weights: with its gradient
        // and the optimiser's two moments, four copies; held fixed, one.
        let (copies, with) = match core.stp_learned {
            true => (4.0, "with their gradients and optimiser state"),
            false => (1.0, "held fixed (core.stp_learned = false)"),
        };
        needs.push(MemoryNeed {
            what: format!(
                "STPN's per-synapse decay and gain {with} (core.stp = \"per-synapse\", \
                 core.hidden = {} on {} inputs)",
                core.hidden, spec.obs_dim
            ),
            bytes: 2.0 * copies * fast * F32,
        });
    }
    Ok(needs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cores::CoreConfig;

    /// The state's and the rollout's bytes for `core`, B 1024 × T 200 (the maze).
    fn needs(core: CoreConfig, trace_checkpoint_every: TraceCheckpoints) -> (f64, f64) {
        let mut config = TrainerConfig {
            core,
            ..TrainerConfig::default()
        };
        config.a2c.trace_checkpoint_every = trace_checkpoint_every;
        let spec = plastic_envs::registry::make("maze", 1)
            .unwrap()
            .spec()
            .clone();
        let needs = training_needs(&config, &spec, 1024).unwrap();
        (needs[1].bytes, needs[2].bytes)
    }

    /// The rollout's bytes for Backpropamine's core, H 100.
    fn rollout_bytes(trace_checkpoint_every: TraceCheckpoints) -> f64 {
        needs(CoreConfig::backpropamine(100), trace_checkpoint_every).1
    }

    /// STPN's fast weights, `H × (in + H)` per row (16 inputs on the maze), count once in the
    /// state and once per kept step in the rollout: every step's under `auto` (autograd, or
    /// the hand-written pass keeping all), every k-th under the hand-written pass's
    /// checkpoints.
    #[test]
    fn stpn_counts_its_fast_weights_in_the_state_and_every_kept_step() {
        let auto = TraceCheckpoints::Auto;
        let (rnn_state, rnn_rollout) = needs(CoreConfig::rnn(50), auto);
        let (stpn_state, stpn_rollout) = needs(CoreConfig::stpn(50), auto);
        let fast = 1024.0 * 50.0 * (16.0 + 50.0) * F32;
        assert_eq!(stpn_state - rnn_state, fast);
        assert_eq!(stpn_rollout - rnn_rollout, 200.0 * fast);
        let every_8 = TraceCheckpoints::Every(8);
        let (_, rnn_rollout) = needs(CoreConfig::rnn(50), every_8);
        let (_, stpn_rollout) = needs(CoreConfig::stpn(50), every_8);
        assert_eq!(stpn_rollout - rnn_rollout, 25.0 * fast);
    }

    /// Per-synapse λ and γ are counted with their gradients and optimiser moments; scalar
    /// ones and other kinds add no line.
    #[test]
    fn stpn_counts_its_per_synapse_parameters() {
        let spec = plastic_envs::registry::make("maze", 1)
            .unwrap()
            .spec()
            .clone();
        let lines = |core: CoreConfig| {
            let config = TrainerConfig {
                core,
                ..TrainerConfig::default()
            };
            training_needs(&config, &spec, 1024).unwrap()
        };
        let per_synapse = lines(CoreConfig::stpn(50));
        assert_eq!(per_synapse.len(), 4);
        assert!(
            per_synapse[3].what.contains("core.stp"),
            "{}",
            per_synapse[3].what
        );
        assert_eq!(per_synapse[3].bytes, 8.0 * 50.0 * (16.0 + 50.0) * F32);
        let fixed = lines(CoreConfig {
            stp_learned: false,
            ..CoreConfig::stpn(50)
        });
        assert_eq!(fixed[3].bytes, 2.0 * 50.0 * (16.0 + 50.0) * F32);
        let scalar = CoreConfig {
            stp: StpShape::Scalar,
            ..CoreConfig::stpn(50)
        };
        assert_eq!(lines(scalar).len(), 3);
        assert_eq!(lines(CoreConfig::backpropamine(50)).len(), 3);
    }

    /// The maze's 16 observations read as a 4×4 image: the image divided by 255 (16 values),
    /// the small network's convolutions (16·3², 32·2², 64·1²) and its 128 features count in
    /// every step of the rollout.
    #[test]
    fn an_image_encoder_counts_its_activations_in_every_step() {
        let config = TrainerConfig::default();
        let flat = plastic_envs::registry::make("maze", 1)
            .unwrap()
            .spec()
            .clone();
        let image = EnvSpec {
            image: plastic_envs::ImageSpace::from_shape(&[4, 4, 1], true),
            ..flat.clone()
        };
        let rollout = |spec: &EnvSpec| training_needs(&config, spec, 1024).unwrap()[2].bytes;
        let activations = 16.0 + 16.0 * 9.0 + 32.0 * 4.0 + 64.0 + 128.0;
        assert_eq!(
            rollout(&image) - rollout(&flat),
            1024.0 * 200.0 * activations * F32
        );
    }

    #[test]
    fn trace_checkpoints_count_the_kept_traces() {
        let trace = 1024.0 * 100.0 * 100.0 * F32;
        let every = |k| rollout_bytes(TraceCheckpoints::Every(k));
        let rest = every(1) - 200.0 * trace;
        // The activations, actions and rewards: about 4% of the traces.
        assert!(
            rest > 0.0 && rest < 10.0 * trace,
            "all 200 traces: {}",
            every(1)
        );
        let traces_kept = |k| (rollout_bytes(k) - rest) / trace;
        // Every 8th: 25 kept; every 200th (or more): 1; auto at H 100: every 16th, 13.
        let cases = [
            (TraceCheckpoints::Every(8), 25.0),
            (TraceCheckpoints::Every(200), 1.0),
            (TraceCheckpoints::Every(1000), 1.0),
            (TraceCheckpoints::Auto, 13.0),
        ];
        for (k, kept) in cases {
            assert!(
                (traces_kept(k) - kept).abs() < 1e-6,
                "k = {k}: {}",
                traces_kept(k)
            );
        }
    }
}
