//! Where a run's numbers and pictures go. The trainer only sees this trait; the CLI plugs in
//! TensorBoard, tests an in-memory sink.

/// An 8-bit RGB picture, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl From<plastic_envs::Frame> for RgbImage {
    fn from(f: plastic_envs::Frame) -> Self {
        Self {
            width: f.width,
            height: f.height,
            pixels: f.rgb,
        }
    }
}

/// The TensorBoard tags of a run, as docs/a2c.md lists them: named once here, so that what
/// the trainer and the CLI write and what tests and readers look up cannot drift apart.
pub mod tags {
    /// Finished training episodes, the last [`RECENT`](crate::a2c::RECENT) of them.
    pub mod rollout {
        pub const EP_REW_MEAN: &str = "rollout/ep_rew_mean";
        pub const EP_LEN_MEAN: &str = "rollout/ep_len_mean";
        pub const REGRET_MEAN: &str = "rollout/regret_mean";
    }

    /// What each update measured.
    pub mod train {
        pub const POLICY_LOSS: &str = "train/policy_loss";
        pub const VALUE_LOSS: &str = "train/value_loss";
        pub const ENTROPY: &str = "train/entropy";
        pub const EXPLAINED_VARIANCE: &str = "train/explained_variance";
        pub const GRAD_NORM: &str = "train/grad_norm";
        pub const UPDATE_RATIO: &str = "train/update_ratio";
        pub const LEARNING_RATE: &str = "train/learning_rate";
        pub const ENTROPY_COEF: &str = "train/entropy_coef";
        pub const RETURN_STD: &str = "train/return_std";
        /// PPO's, as sb3-contrib names them.
        pub const POLICY_GRADIENT_LOSS: &str = "train/policy_gradient_loss";
        pub const ENTROPY_LOSS: &str = "train/entropy_loss";
        pub const CLIP_FRACTION: &str = "train/clip_fraction";
        pub const APPROX_KL: &str = "train/approx_kl";
        pub const LOSS: &str = "train/loss";
        pub const N_UPDATES: &str = "train/n_updates";
        pub const CLIP_RANGE: &str = "train/clip_range";
        pub const CLIP_RANGE_VF: &str = "train/clip_range_vf";
    }

    /// Traces, modulator and plasticity rates of plastic cores.
    pub mod plasticity {
        pub const MEAN_ABS_HEBB: &str = "plasticity/mean_abs_hebb";
        pub const MEAN_ABS_ELIG: &str = "plasticity/mean_abs_elig";
        pub const MODULATOR_MEAN: &str = "plasticity/modulator_mean";
        pub const MODULATOR_STD: &str = "plasticity/modulator_std";
        /// Mean of `η`.
        pub const ETA: &str = "plasticity/eta";
        /// Mean of `η_E`.
        pub const ETA_E: &str = "plasticity/eta_e";
        /// A picture of the Hebbian trace.
        pub const HEBB: &str = "plasticity/hebb";
        /// A picture of STPN's fast weights.
        pub const FAST: &str = "plasticity/fast";
    }

    /// Histograms of the parameters.
    pub mod weights {
        pub const W: &str = "weights/w";
        pub const ALPHA: &str = "weights/alpha";
        pub const ETA: &str = "weights/eta";
        pub const ETA_E: &str = "weights/eta_e";
        /// STPN's decay λ and gain γ.
        pub const STP_LAMBDA: &str = "weights/stp_lambda";
        pub const STP_GAMMA: &str = "weights/stp_gamma";
    }

    /// Held-out episodes with frozen weights.
    pub mod eval {
        pub const EP_REW_MEAN: &str = "eval/ep_rew_mean";
        pub const REGRET: &str = "eval/regret";
    }

    /// The recurrent Jacobian `∂h_t/∂h_{t−1}` along one episode, and the learning-dynamics
    /// pictures (`log.spectra_every`).
    pub mod spectra {
        /// Mean over the episode's steps of the largest singular value.
        pub const JACOBIAN_LARGEST: &str = "spectra/jacobian_largest_sv";
        /// Mean over steps and singular values of `log σ`: 0 at the edge of chaos.
        pub const JACOBIAN_MEAN_LOG: &str = "spectra/jacobian_mean_log_sv";
        /// Pictures: the singular values of `W`, `α` and the episode-averaged Hebbian trace
        /// (rows, largest on top) at every logging point so far (columns).
        pub const SINGULAR_VALUES_W: &str = "spectra/singular_values_w";
        pub const SINGULAR_VALUES_ALPHA: &str = "spectra/singular_values_alpha";
        pub const SINGULAR_VALUES_HEBB: &str = "spectra/singular_values_hebb";
    }

    pub mod time {
        /// Environment steps per second since the previous logging point.
        pub const SPS: &str = "time/sps";
    }

    /// Pictures of maze episodes.
    pub mod maze {
        /// Visits relative to the hidden reward, over a batch of episodes.
        pub const VISITS: &str = "maze/visits";
        /// One episode, a panel per trip to the reward.
        pub const PATH: &str = "maze/path";
    }

    /// Pictures of bandit episodes.
    pub mod bandit {
        /// One episode: the arms, the pulls and what they paid.
        pub const PULLS: &str = "bandit/pulls";
    }
}

/// Receives metrics tagged as in a2c.md ([`tags`]: `rollout/ep_rew_mean`, `train/grad_norm`, ...),
/// indexed by environment steps. Implementations must not fail the caller: a sink that cannot
/// write reports it its own way and keeps going.
pub trait MetricsSink {
    fn scalar(&mut self, tag: &str, step: u64, value: f64);
    fn histogram(&mut self, tag: &str, step: u64, values: &[f32]);
    fn image(&mut self, tag: &str, step: u64, image: &RgbImage);
    /// Makes everything written so far durable (before a checkpoint, at exit).
    fn flush(&mut self) {}
}

/// Keeps everything in memory, for tests and for callers that want the numbers.
#[derive(Debug, Default)]
pub struct MemorySink {
    pub scalars: Vec<(String, u64, f64)>,
    pub histograms: Vec<(String, u64, Vec<f32>)>,
    pub images: Vec<(String, u64, RgbImage)>,
}

impl MemorySink {
    /// Every value logged under `tag`, in order.
    pub fn series(&self, tag: &str) -> Vec<f64> {
        self.scalars
            .iter()
            .filter(|(t, _, _)| t == tag)
            .map(|(_, _, v)| *v)
            .collect()
    }
}

impl MetricsSink for MemorySink {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) {
        self.scalars.push((tag.into(), step, value));
    }
    fn histogram(&mut self, tag: &str, step: u64, values: &[f32]) {
        self.histograms.push((tag.into(), step, values.to_vec()));
    }
    fn image(&mut self, tag: &str, step: u64, image: &RgbImage) {
        self.images.push((tag.into(), step, image.clone()));
    }
}
