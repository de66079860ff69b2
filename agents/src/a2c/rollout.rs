//! Rollout collection, Stable-Baselines3's `collect_rollouts` and rollout buffer: steps the
//! environments with the current policy and keeps what the losses need. Truncated rollouts
//! continue the episodes the previous one left under way, so those are kept here too.
use super::config::{A2cConfig, RolloutLen};
use super::errors::TrainError;
use super::host_f32;
use super::returns::{gae, RolloutData};
use super::reward_scale::{RewardScale, RunningStats};
use super::train_dropout::Dropout;
use crate::acting::{choose, host_probs, host_values, obs_tensor, ActionMode, HostPolicy};
use crate::actor_critic::ActorCritic;
use crate::cores::{Engine, State, Tape, TraceCheckpoints};
use crate::gaussian;
use plastic_envs::rng::{self, Rng};
use plastic_envs::{EnvSpec, VecEnv};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Salts of the random streams collection derives from (seed, update).
const ENV_SALT: u64 = 0xE4F1_0000_0000_0001;
const ACTION_SALT: u64 = 0xAC71_0000_0000_0002;

/// Steps per rollout, and whether a rollout is one whole episode (nothing carried over).
pub(crate) fn rollout_shape(a2c: &A2cConfig, spec: &EnvSpec) -> Result<(usize, bool), TrainError> {
    match (a2c.rollout_len, spec.episode_len) {
        (RolloutLen::Episode, Some(len)) => Ok((len, true)),
        (RolloutLen::Episode, None) => Err(TrainError::NoEpisodeLength {
            env: spec.id.clone(),
        }),
        (RolloutLen::Steps(n), len) => Ok((n, len == Some(n))),
    }
}

/// The environments and the episodes under way in them.
pub(super) struct Collector {
    pub(super) env: Box<dyn VecEnv>,
    /// Steps per environment per rollout.
    pub(super) steps: usize,
    /// Whole-episode regime: every rollout starts fresh episodes and bootstraps nothing.
    pub(super) whole_episode: bool,
    gamma: f64,
    pub(super) seed: u64,
    /// Truncated rollouts: what the next rollout continues from.
    pub(super) carry: Option<Carry>,
    /// `a2c.train_dropout`, where it silences any neurons.
    train_dropout: Option<f64>,
}

/// Recurrent state and per-row episode sums carried from one truncated rollout to the next.
pub(super) struct Carry {
    pub(super) obs: Vec<f32>,
    pub(super) state: State,
    pub(super) sums: Vec<EpisodeSum>,
}

/// One finished training episode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpisodeEnd {
    pub ret: f64,
    pub len: u64,
    pub regret: Option<f64>,
}

/// An episode under way, summed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct EpisodeSum {
    ret: f64,
    len: u64,
    regret: f64,
    /// `Σ γ^k r` backwards from now, for reward scaling.
    discounted: f64,
}

/// One rollout, sb3-contrib's recurrent rollout buffer: what every on-policy algorithm
/// learns from. The core's outputs (with the tape, what A2C backpropagates through), the
/// inputs and start state that re-run each row (PPO), and host copies of what the return
/// computation needs (time-major, `[T × B]`). Log-probabilities and values are the heads on
/// `outputs` ([`super::losses::PolicyTerms`]), computed by whoever needs them, so A2C pays
/// nothing for them.
pub(super) struct Rollout {
    pub(super) batch: usize,
    /// The recurrent state (hidden, cell, traces) every row started the rollout in.
    pub(super) start_state: State,
    /// `x_t` as the core read it, `[B × obs]` per step.
    pub(super) observations: Vec<Tensor>,
    /// Rows whose episode starts at step `t` (the previous step ended one): their state was
    /// zeroed before it.
    pub(super) episode_starts: Vec<bool>,
    /// `h_t`, `[B × H]` per step; the heads and losses are computed on all steps at once.
    pub(super) outputs: Vec<Tensor>,
    /// Under `a2c.train_dropout`, each step's neurons silenced (0) and not (1), `[B × H]`
    /// per step, for PPO to re-run the steps with; empty without.
    pub(super) alive: Vec<Tensor>,
    /// Discrete actions, `[T × B]`; empty for continuous ones.
    pub(super) actions: Vec<i64>,
    /// Continuous actions as sampled (unclipped: the log-probabilities are theirs),
    /// `[T × B × A]`; empty for discrete ones.
    pub(super) continuous_actions: Vec<f32>,
    pub(super) modulators: Vec<Tensor>,
    pub(super) rewards: Vec<f32>,
    pub(super) dones: Vec<bool>,
    pub(super) last_values: Vec<f32>,
    pub(super) finished: Vec<EpisodeEnd>,
    pub(super) mean_abs_hebb: Option<f64>,
    pub(super) mean_abs_elig: Option<f64>,
}

impl Rollout {
    fn with_capacity(steps: usize, batch: usize, start_state: State) -> Self {
        Self {
            batch,
            start_state,
            observations: Vec::with_capacity(steps),
            episode_starts: Vec::with_capacity(steps * batch),
            outputs: Vec::with_capacity(steps),
            alive: Vec::new(),
            actions: Vec::with_capacity(steps * batch),
            continuous_actions: Vec::new(),
            modulators: Vec::with_capacity(steps),
            rewards: Vec::with_capacity(steps * batch),
            dones: Vec::with_capacity(steps * batch),
            last_values: Vec::new(),
            finished: Vec::new(),
            mean_abs_hebb: None,
            mean_abs_elig: None,
        }
    }

    /// `[T, B]`.
    pub(super) fn shape(&self) -> [i64; 2] {
        [self.outputs.len() as i64, self.batch as i64]
    }

    /// Host values of `[T × B]` as a tensor of that shape on `device`, of `kind`.
    pub(super) fn tensor(&self, values: &[f32], device: Device, kind: Kind) -> Tensor {
        Tensor::from_slice(values)
            .view(self.shape())
            .to_device(device)
            .to_kind(kind)
    }

    /// The actions taken on `device`: discrete ones `[T × B × 1]` (as `gather` takes them),
    /// continuous ones `[T × B × A]` of `kind`.
    pub(super) fn taken(&self, device: Device, kind: Kind) -> Tensor {
        let [t, b] = self.shape();
        if self.actions.is_empty() {
            return Tensor::from_slice(&self.continuous_actions)
                .view([t, b, -1])
                .to_device(device)
                .to_kind(kind);
        }
        Tensor::from_slice(&self.actions)
            .view([t, b, 1])
            .to_device(device)
    }

    /// GAE(`a2c.gamma`, `a2c.gae_lambda`) advantages and returns of this rollout with the
    /// critic's `values` (`[T × B]`, host).
    pub(super) fn advantages(&self, values: &[f32], a2c: &A2cConfig) -> (Vec<f32>, Vec<f32>) {
        let data = RolloutData {
            batch: self.batch,
            rewards: &self.rewards,
            values,
            dones: &self.dones,
            last_values: &self.last_values,
        };
        gae(&data, a2c.gamma, a2c.gae_lambda)
    }
}

impl Collector {
    /// Collects from `env`, with random streams drawn from `seed`.
    pub(super) fn new(
        env: Box<dyn VecEnv>,
        a2c: &A2cConfig,
        seed: u64,
    ) -> Result<Self, TrainError> {
        let (steps, whole_episode) = rollout_shape(a2c, env.spec())?;
        Ok(Self {
            env,
            steps,
            whole_episode,
            gamma: a2c.gamma,
            seed,
            carry: None,
            train_dropout: a2c.train_dropout(),
        })
    }

    /// Steps the environments for rollout number `update` (from 0), recording on a tape what
    /// backpropagation through it needs; rewards are scaled by `reward_scale`, which keeps
    /// its statistics in `return_stats`.
    pub(super) fn collect<'a>(
        &mut self,
        ac: &'a ActorCritic,
        engine: Engine,
        trace_checkpoints: TraceCheckpoints,
        update: u64,
        reward_scale: Option<&RewardScale>,
        return_stats: &mut RunningStats,
    ) -> Result<(Rollout, Tape<'a>), TrainError> {
        let b = self.env.num_envs();
        let device = ac.core.device();
        let kind = ac.core.kind();
        let gamma = self.gamma;
        let bootstrap = !self.whole_episode;
        let Carry {
            mut obs,
            state,
            mut sums,
        } = match self.carry.take() {
            Some(c) if bootstrap => c,
            _ => Carry {
                obs: self
                    .env
                    .reset(rng::stream(self.seed ^ ENV_SALT, update as usize).next_u64())?
                    .to_vec(),
                state: ac.initial_state(b as i64),
                sums: vec![EpisodeSum::default(); b],
            },
        };
        // For the message if the environment returns NaN or infinity.
        let (env_id, obs_dim) = (self.env.spec().id.clone(), self.env.spec().obs_dim);
        let mut tape = Tape::new(&ac.core, &state, engine, trace_checkpoints);
        // The environment step (over the run, per row) this rollout's first one is.
        let first_step = update * self.steps as u64;
        let ages: Vec<u64> = sums.iter().map(|s| s.len).collect();
        let mut dropout =
            (self.train_dropout).map(|p| Dropout::start(ac, p, self.seed, first_step, &ages));
        let mut rngs: Vec<Rng> = (0..b)
            .map(|i| rng::policy_stream(self.seed ^ ACTION_SALT ^ update, i))
            .collect();
        let mut r = Rollout::with_capacity(self.steps, b, state.clone());
        let mut actions = vec![0u32; b];
        let mut components = vec![0.0f32; b * ac.num_actions() as usize];
        // The Gaussian's spread does not change during a rollout.
        let std = ac.log_std.as_ref().map(|l| host_values(&l.exp()));
        let mut done = vec![false; b];
        // On the CPU, π comes from host loops, with every engine alike.
        let host_policy =
            (device == Device::Cpu && std.is_none()).then(|| HostPolicy::new(&ac.policy));
        for t in 0..self.steps {
            let x = obs_tensor(&obs, b, device).to_kind(kind);
            // The episodes that ended at the last step start afresh. The encoder's graph stays
            // on the tape's input, for A2C's backward pass through it.
            if let Some(dropout) = dropout.as_mut() {
                dropout.start_episodes(&done, first_step + t as u64);
                r.alive.push(dropout.alive().shallow_clone());
            }
            let alive = dropout.as_ref().map(Dropout::alive);
            let h = tape.step_silenced(&ac.encoder.encode(&x), &done, alive);
            r.observations.push(x);
            r.episode_starts.extend_from_slice(&done);
            if let Some(std) = &std {
                let means = host_values(&tch::no_grad(|| ac.policy.forward(&h)));
                gaussian::choose(&means, std, ActionMode::Sample, &mut rngs, &mut components);
                r.continuous_actions.extend_from_slice(&components);
            } else {
                let probs = match &host_policy {
                    Some(policy) => policy.probs(&h),
                    None => host_probs(&tch::no_grad(|| ac.policy.forward(&h))),
                };
                choose(&probs, ActionMode::Sample, &mut rngs, &mut actions);
                r.actions.extend(actions.iter().map(|&a| i64::from(a)));
            }
            r.outputs.push(h);
            let state = tape.state();
            if let Some(m) = state.modulator() {
                r.modulators.push(m.shallow_clone());
            }

            let out = match std {
                Some(_) => self.env.step_continuous(&components)?,
                None => self.env.step(&actions)?,
            };
            let bad_obs = out.obs.iter().position(|x| !x.is_finite());
            let bad_reward = out.rewards.iter().position(|x| !x.is_finite());
            if let Some((what, row)) = bad_reward
                .map(|row| ("reward", row))
                .or(bad_obs.map(|i| ("observation", i / obs_dim.max(1))))
            {
                return Err(TrainError::EnvNonFinite {
                    env: env_id,
                    what,
                    row,
                    update: update + 1,
                });
            }
            let mut rewards = out.rewards.to_vec();
            for (row, d) in done.iter_mut().enumerate() {
                *d = out.done(row);
            }
            if let Some(scale) = reward_scale {
                let discounted = sums.iter_mut().map(|s| &mut s.discounted);
                scale.apply(&mut rewards, discounted, return_stats);
            }
            let cut: Vec<bool> = (0..b)
                .map(|i| out.truncated[i] && !out.terminated[i])
                .collect();
            if bootstrap && cut.contains(&true) {
                // The critic's value of the observation the episode was cut on, seen with the
                // state that would have read it next.
                let v = tch::no_grad(|| {
                    let xf = obs_tensor(out.final_obs, b, device).to_kind(kind);
                    host_f32(&ac.step_silenced(&xf, &state, alive).value)
                });
                for row in (0..b).filter(|&i| cut[i]) {
                    rewards[row] += (gamma * f64::from(v[row])) as f32;
                }
            }
            for (row, s) in sums.iter_mut().enumerate() {
                s.ret += f64::from(out.rewards[row]);
                s.len += 1;
                s.regret += out.regret.map_or(0.0, |g| f64::from(g[row]));
                if done[row] {
                    r.finished.push(EpisodeEnd {
                        ret: s.ret,
                        len: s.len,
                        regret: out.regret.map(|_| s.regret),
                    });
                    *s = EpisodeSum::default();
                }
            }
            obs.copy_from_slice(out.obs);
            r.rewards.extend_from_slice(&rewards);
            r.dones.extend_from_slice(&done);
            if t + 1 == self.steps {
                r.mean_abs_hebb = state.mean_abs_hebb();
                r.mean_abs_elig = state.mean_abs_elig();
            }
        }
        // The episodes that ended at the last step start afresh in the carried state.
        let state = tape.state().reset_rows_bool(&done);
        r.last_values = if bootstrap {
            tch::no_grad(|| {
                let x = obs_tensor(&obs, b, device).to_kind(kind);
                let alive = dropout.as_ref().map(Dropout::alive);
                host_f32(&ac.step_silenced(&x, &state, alive).value)
            })
        } else {
            vec![0.0; b]
        };
        if bootstrap {
            self.carry = Some(Carry { obs, state, sums });
        }
        Ok((r, tape))
    }
}
