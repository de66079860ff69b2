//! What the A2C trainer and its optimiser are told: every option a config value, checked
//! before anything is built, each error naming its key.
use super::errors::ConfigError;
use crate::cores::{Bptt, CoreConfig, TraceCheckpoints};
use crate::encoders::EncoderConfig;
use crate::perturbation::ParamGroup;
use serde::{Deserialize, Serialize};

/// Everything the trainer is configured with besides the environment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainerConfig {
    pub core: CoreConfig,
    /// What reads the observations before the core (`[encoder]`). Left out of the written
    /// config when it is the default.
    #[serde(default, skip_serializing_if = "EncoderConfig::is_default")]
    pub encoder: EncoderConfig,
    /// The on-policy settings A2C and PPO share (rollouts, returns, loss weights, clipping,
    /// backpropagation through time).
    pub a2c: A2cConfig,
    /// PPO's own settings; `None` trains with A2C. Left out of the written config when
    /// `None`, so that A2C configs read and write as they always did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppo: Option<PpoConfig>,
    pub optim: OptimConfig,
    /// CPU threads, shared between the host loops and libtorch as [`crate::threads`] says;
    /// 0 takes libtorch's choice (the machine's cores).
    #[serde(default)]
    pub threads: usize,
}

/// PPO's own settings (`docs/ppo.md`), with sb3-contrib's `RecurrentPPO` names and defaults;
/// the rest (γ, GAE's λ, loss weights, advantage normalisation, gradient clipping) are the
/// `a2c` keys both algorithms share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Passes over each rollout.
    pub n_epochs: usize,
    /// Minibatches per pass, each of `env.num_envs / minibatches` whole rows (sequences),
    /// re-run from the recurrent state they started the rollout in.
    pub minibatches: usize,
    /// `ε` of the clipped surrogate: the probability ratio is clipped to `[1 − ε, 1 + ε]`.
    pub clip_range: f64,
    /// Bound on how far the value may move from the collecting critic's (`inf`, the
    /// default, turns value clipping off: sb3-contrib's `None`).
    pub clip_range_vf: f64,
    /// Stop the update's passes once the approximate KL divergence of a minibatch exceeds
    /// 1.5 × this (`inf`, the default: never, sb3-contrib's `None`).
    pub target_kl: f64,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            n_epochs: 10,
            minibatches: 4,
            clip_range: 0.2,
            clip_range_vf: f64::INFINITY,
            target_kl: f64::INFINITY,
        }
    }
}

impl PpoConfig {
    /// Checks the settings for a batch of `num_envs` rows.
    pub fn validate(&self, num_envs: usize) -> Result<(), ConfigError> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        check(
            self.n_epochs >= 1,
            "ppo.n_epochs",
            self.n_epochs as f64,
            "must be ≥ 1 (sb3-contrib's default is 10)",
        )?;
        if self.minibatches == 0 || !num_envs.is_multiple_of(self.minibatches) {
            return Err(ConfigError {
                key: "ppo.minibatches",
                value: format!("{} with env.num_envs = {num_envs}", self.minibatches),
                expected: "must divide env.num_envs, so that every minibatch holds as many \
                           whole rows (e.g. 4 with env.num_envs = 32)",
            });
        }
        check(
            positive(self.clip_range),
            "ppo.clip_range",
            self.clip_range,
            "must be a number > 0 (e.g. 0.2)",
        )?;
        for (key, value) in [
            ("ppo.clip_range_vf", self.clip_range_vf),
            ("ppo.target_kl", self.target_kl),
        ] {
            check(value > 0.0, key, value, "must be > 0 (inf turns it off)")?;
        }
        Ok(())
    }
}

/// How many steps each update collects per environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RolloutLen {
    /// One whole episode (environments with a fixed horizon): traces start at zero, backprop
    /// runs through the episode, nothing is bootstrapped (Backpropamine's regime).
    #[default]
    Episode,
    /// A fixed number of steps; state carries over detached and returns bootstrap from the critic.
    Steps(usize),
}

word_or_count!(
    RolloutLen { Episode = "episode", Steps(count) },
    "\"episode\" or a number of steps ≥ 1"
);

/// Losses and returns (a2c.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct A2cConfig {
    /// Steps per environment per update: `"episode"` or a number.
    pub rollout_len: RolloutLen,
    pub gamma: f64,
    /// GAE(λ); 1 gives plain discounted returns minus the value.
    pub gae_lambda: f64,
    pub value_coef: f64,
    /// Weight of the entropy bonus `H(π)` (at the first update, when annealed).
    pub entropy_coef: f64,
    /// `"constant"`, or `"linear"`: from `entropy_coef` at the first update to
    /// `entropy_final` after the last (explore widely first, then commit).
    pub entropy_schedule: Schedule,
    pub entropy_final: f64,
    /// Weight of Backpropamine's penalty `Σ_a π_a²` (0 turns it off).
    pub sum_squares_coef: f64,
    /// Normalise advantages over the batch before the policy loss.
    pub normalize_advantages: bool,
    /// Divide rewards by the running standard deviation of the discounted return (what the
    /// critic learns; reported returns stay raw).
    pub normalize_rewards: bool,
    /// Global gradient-norm bound (`inf` turns clipping off).
    pub max_grad_norm: f64,
    /// Backpropagation through time: `"auto"` (hand-written for plastic cores on the CPU,
    /// autograd otherwise), `"fused"` (hand-written on any device: one trace per step, the
    /// way to fit large batches on a GPU), `"autograd"`, or `"ops"` (hand-written in libtorch
    /// operations, as `"fused"` runs on CUDA, on any device: checks the GPU's engine on the
    /// CPU). Same gradients, to rounding.
    pub bptt: Bptt,
    /// The hand-written pass keeps the Hebbian (and eligibility) trace of every `k`-th step
    /// only, and rebuilds the others from the kept one before them during the backward pass:
    /// the same gradients, bit for bit, with about `T/k` traces kept instead of `T`, for
    /// about one more forward pass over the traces. 1 keeps every trace; `"auto"` (the
    /// default) picks `k` where the steps run on the host (the CPU), which there is also the
    /// faster way ([`crate::cores::host_every`]), and 1 elsewhere.
    pub trace_checkpoint_every: TraceCheckpoints,
    /// Training under noise (docs/perturbation.md): σ of the relative Gaussian noise every
    /// update's rollout and backward pass run with on `train_noise_groups`, `p·(1 + σ·ε)`
    /// with a new ε each update; the gradient, taken there, steps the noiseless parameters.
    /// Unset (the default, left out of written configs) trains without.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_noise: Option<f64>,
    /// The parameter groups `train_noise` perturbs: `w`, `alpha`, `input`, `heads`.
    #[serde(skip_serializing_if = "is_default_noise_groups")]
    pub train_noise_groups: Vec<ParamGroup>,
    /// Training under dropout of neurons (docs/perturbation.md): the fraction `p` in [0, 1)
    /// of hidden neurons silenced in every episode of every batch row, drawn afresh each
    /// episode, through the rollout and the backward pass (which runs on autograd). Unset
    /// (the default, left out of written configs) or 0 trains without.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_dropout: Option<f64>,
}

fn default_noise_groups() -> Vec<ParamGroup> {
    vec![ParamGroup::W]
}

fn is_default_noise_groups(groups: &Vec<ParamGroup>) -> bool {
    *groups == default_noise_groups()
}

impl Default for A2cConfig {
    fn default() -> Self {
        Self {
            rollout_len: RolloutLen::Episode,
            gamma: 0.99,
            gae_lambda: 1.0,
            value_coef: 0.5,
            entropy_coef: 0.01,
            entropy_schedule: Schedule::Constant,
            entropy_final: 0.0,
            sum_squares_coef: 0.0,
            normalize_advantages: false,
            normalize_rewards: false,
            max_grad_norm: 4.0,
            bptt: Bptt::Auto,
            trace_checkpoint_every: TraceCheckpoints::Auto,
            train_noise: None,
            train_noise_groups: default_noise_groups(),
            train_dropout: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Adam,
    Rmsprop,
}

/// A coefficient over the run (the learning rate, the entropy bonus's weight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    #[default]
    Constant,
    /// From its value at the first update to its final value (0 for the learning rate) after
    /// the last.
    Linear,
}

impl Schedule {
    /// The value at update `update` of `total`, going from `start` to `end`.
    fn at(self, start: f64, end: f64, update: u64, total: u64) -> f64 {
        match self {
            Self::Constant => start,
            Self::Linear => {
                let done = (update as f64 / total.max(1) as f64).min(1.0);
                start * (1.0 - done) + end * done
            }
        }
    }
}

/// Optimiser settings; the formulas are PyTorch's `Adam` and `RMSprop` (no momentum).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub algorithm: Algorithm,
    pub lr: f64,
    pub schedule: Schedule,
    /// Added to the denominator (Backpropamine uses 1e-4 with Adam).
    pub eps: f64,
    /// Adam's moment decay rates.
    pub beta1: f64,
    pub beta2: f64,
    /// RMSprop's smoothing constant.
    pub alpha: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Adam,
            lr: 1e-3,
            schedule: Schedule::Constant,
            eps: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            alpha: 0.99,
        }
    }
}

fn check(
    ok: bool,
    key: &'static str,
    value: f64,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            key,
            value: value.to_string(),
            expected,
        })
    }
}

impl A2cConfig {
    /// The entropy bonus's weight at update `update` of `total`.
    pub fn entropy_at(&self, update: u64, total: u64) -> f64 {
        let (start, end) = (self.entropy_coef, self.entropy_final);
        self.entropy_schedule.at(start, end, update, total)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let unit = |v: f64| (0.0..=1.0).contains(&v);
        let non_neg = |v: f64| v.is_finite() && v >= 0.0;
        check(
            unit(self.gamma),
            "a2c.gamma",
            self.gamma,
            "must be in [0, 1] (e.g. 0.99)",
        )?;
        check(
            unit(self.gae_lambda),
            "a2c.gae_lambda",
            self.gae_lambda,
            "must be in [0, 1] (1 = plain discounted returns)",
        )?;
        check(
            non_neg(self.value_coef),
            "a2c.value_coef",
            self.value_coef,
            "must be ≥ 0",
        )?;
        check(
            non_neg(self.entropy_coef),
            "a2c.entropy_coef",
            self.entropy_coef,
            "must be ≥ 0",
        )?;
        check(
            non_neg(self.entropy_final),
            "a2c.entropy_final",
            self.entropy_final,
            "must be ≥ 0",
        )?;
        check(
            non_neg(self.sum_squares_coef),
            "a2c.sum_squares_coef",
            self.sum_squares_coef,
            "must be ≥ 0",
        )?;
        check(
            self.max_grad_norm > 0.0,
            "a2c.max_grad_norm",
            self.max_grad_norm,
            "must be > 0 (inf turns clipping off)",
        )?;
        if let Some(p) = self.train_dropout {
            check(
                (0.0..1.0).contains(&p),
                "a2c.train_dropout",
                p,
                "must be a fraction in [0, 1): the share of hidden neurons silenced in each \
                 episode (1 would silence them all)",
            )?;
        }
        self.validate_train_noise()
    }

    /// The fraction of neurons `train_dropout` silences, where it silences any.
    pub fn train_dropout(&self) -> Option<f64> {
        self.train_dropout.filter(|&p| p > 0.0)
    }

    /// `train_noise` a noise level, and its groups named once each (and set only with it).
    fn validate_train_noise(&self) -> Result<(), ConfigError> {
        let groups = &self.train_noise_groups;
        let names = || {
            let names: Vec<&str> = groups.iter().map(|g| g.name()).collect();
            format!("{names:?}")
        };
        let Some(sigma) = self.train_noise else {
            return match is_default_noise_groups(groups) {
                true => Ok(()),
                false => Err(ConfigError {
                    key: "a2c.train_noise_groups",
                    value: names(),
                    expected: "has no effect without a2c.train_noise (σ); set both or neither",
                }),
            };
        };
        check(
            sigma.is_finite() && sigma >= 0.0,
            "a2c.train_noise",
            sigma,
            "must be a finite number ≥ 0: each parameter p becomes p·(1 + σ·ε)",
        )?;
        let repeated = groups
            .iter()
            .enumerate()
            .any(|(i, g)| groups[..i].contains(g));
        if groups.is_empty() || repeated {
            return Err(ConfigError {
                key: "a2c.train_noise_groups",
                value: names(),
                expected: "must name each group at most once, and at least one of \
                           \"w\", \"alpha\", \"input\", \"heads\"",
            });
        }
        Ok(())
    }
}

impl OptimConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let rate = |v: f64| (0.0..1.0).contains(&v);
        check(
            positive(self.lr),
            "optim.lr",
            self.lr,
            "must be a number > 0 (e.g. 1e-3)",
        )?;
        check(
            positive(self.eps),
            "optim.eps",
            self.eps,
            "must be a number > 0 (e.g. 1e-4)",
        )?;
        check(
            rate(self.beta1),
            "optim.beta1",
            self.beta1,
            "must be in [0, 1) (e.g. 0.9)",
        )?;
        check(
            rate(self.beta2),
            "optim.beta2",
            self.beta2,
            "must be in [0, 1) (e.g. 0.999)",
        )?;
        check(
            rate(self.alpha),
            "optim.alpha",
            self.alpha,
            "must be in [0, 1) (e.g. 0.99)",
        )
    }

    /// Learning rate of update `update` (0-based) of `total`.
    pub fn lr_at(&self, update: u64, total: u64) -> f64 {
        self.schedule.at(self.lr, 0.0, update, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Wrap {
        rollout_len: RolloutLen,
    }

    fn parse(v: &str) -> Result<RolloutLen, String> {
        serde_json::from_str::<Wrap>(&format!("{{\"rollout_len\": {v}}}"))
            .map(|w| w.rollout_len)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn rollout_len_is_episode_or_positive_steps() {
        assert_eq!(parse("\"episode\""), Ok(RolloutLen::Episode));
        assert_eq!(parse("20"), Ok(RolloutLen::Steps(20)));
        for bad in ["0", "-3", "\"epsiode\"", "2.5"] {
            let msg = parse(bad).unwrap_err();
            assert!(msg.contains("\"episode\" or a number"), "{bad}: {msg}");
        }
        let json = serde_json::to_string(&RolloutLen::Steps(5)).unwrap();
        assert_eq!(json, "5");
    }

    #[test]
    fn impossible_values_name_their_key() {
        let a2c = A2cConfig {
            gamma: 1.5,
            ..A2cConfig::default()
        };
        assert_eq!(a2c.validate().unwrap_err().key, "a2c.gamma");
        let optim = OptimConfig {
            lr: -1.0,
            ..OptimConfig::default()
        };
        assert_eq!(optim.validate().unwrap_err().key, "optim.lr");
        assert!(A2cConfig::default().validate().is_ok());
        assert!(OptimConfig::default().validate().is_ok());
    }

    #[test]
    fn linear_schedule_reaches_zero_at_the_end() {
        let o = OptimConfig {
            lr: 1.0,
            schedule: Schedule::Linear,
            ..OptimConfig::default()
        };
        assert_eq!(o.lr_at(0, 4), 1.0);
        assert_eq!(o.lr_at(2, 4), 0.5);
        assert_eq!(o.lr_at(4, 4), 0.0);
        assert_eq!(o.lr_at(6, 4), 0.0);
    }

    #[test]
    fn entropy_is_constant_or_annealed_to_its_final_weight() {
        let mut a = A2cConfig {
            entropy_coef: 1.0,
            ..A2cConfig::default()
        };
        a.entropy_final = 0.2;
        assert_eq!(a.entropy_at(3, 4), 1.0);
        a.entropy_schedule = Schedule::Linear;
        assert_eq!(a.entropy_at(0, 4), 1.0);
        assert!((a.entropy_at(2, 4) - 0.6).abs() < 1e-12);
        assert!((a.entropy_at(4, 4) - 0.2).abs() < 1e-12);
        assert!((a.entropy_at(9, 4) - 0.2).abs() < 1e-12);
        a.entropy_final = -0.1;
        assert_eq!(a.validate().unwrap_err().key, "a2c.entropy_final");
    }
}
