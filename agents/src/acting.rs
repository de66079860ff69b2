//! A trained actor-critic acting in environments: the same action choice the trainer samples
//! with, wrapped as a [`Policy`] so every rollout tool of `plastic-envs` can run it.
use crate::actor_critic::{ActorCritic, Head};
use crate::cores::State;
use crate::gaussian;
use crate::perturbation::Lesion;
use plastic_envs::rng::{self, Rng};
use plastic_envs::rollout::{eval_batch, run_episodes_unless, RolloutStats};
use plastic_envs::{EnvError, Environment, Policy};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// How an action is picked from the policy's distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionMode {
    /// Draw from π (as in training).
    #[default]
    Sample,
    /// The most probable action.
    Greedy,
}

/// Picks one action per row from `probs` `[B × A]` (host copy of π).
pub(crate) fn choose(probs: &[f32], mode: ActionMode, rngs: &mut [Rng], actions: &mut [u32]) {
    let a = probs.len() / actions.len();
    for ((row, out), rng) in probs.chunks(a).zip(actions.iter_mut()).zip(rngs) {
        *out = match mode {
            ActionMode::Greedy => argmax(row),
            ActionMode::Sample => {
                let u: f32 = rng.random();
                let mut acc = 0.0;
                // Falls back to the last action when rounding leaves the sum just below u.
                row.iter()
                    .position(|&p| {
                        acc += p;
                        u < acc
                    })
                    .unwrap_or(a - 1) as u32
            }
        };
    }
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &p) in row.iter().enumerate() {
        if p > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Observations `[B × obs_dim]` from the host buffer, on `device`.
pub(crate) fn obs_tensor(obs: &[f32], batch: usize, device: Device) -> Tensor {
    Tensor::from_slice(obs)
        .view([batch as i64, (obs.len() / batch) as i64])
        .to_device(device)
}

/// π of each row on the host, `[B × A]` flattened.
pub(crate) fn host_probs(logits: &Tensor) -> Vec<f32> {
    host_values(&logits.detach().softmax(-1, Kind::Float))
}

/// A tensor's values on the host as `f32`, flattened.
pub(crate) fn host_values(t: &Tensor) -> Vec<f32> {
    let t = t.detach().to_kind(Kind::Float).to_device(Device::Cpu);
    Vec::<f32>::try_from(t.flatten(0, -1)).expect("converted to f32")
}

/// π from a policy head whose weights were copied to the host: the rollout's action choice on
/// the CPU without a libtorch call per step (its parameters do not change during a rollout).
pub(crate) struct HostPolicy {
    /// `[A × H]`, `[A]`.
    w: Vec<f32>,
    b: Vec<f32>,
}

impl HostPolicy {
    pub(crate) fn new(head: &Head) -> Self {
        Self {
            w: host_values(&head.w),
            b: host_values(&head.b),
        }
    }

    /// π of each row of `h` (`[B × H]`, CPU), `[B × A]` flattened: `softmax(W h + b)`, in f32
    /// as [`host_probs`] computes it.
    pub(crate) fn probs(&self, h: &Tensor) -> Vec<f32> {
        let h = Vec::<f32>::try_from(h.to_kind(Kind::Float).flatten(0, -1))
            .expect("hidden states are floats");
        let hidden = self.w.len() / self.b.len();
        let mut probs = Vec::with_capacity(h.len() / hidden * self.b.len());
        for row in h.chunks_exact(hidden) {
            let first = probs.len();
            probs.extend(
                self.w
                    .chunks_exact(hidden)
                    .zip(&self.b)
                    .map(|(w, &b)| b + w.iter().zip(row).map(|(&w, &x)| w * x).sum::<f32>()),
            );
            let logits = &mut probs[first..];
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut total = 0.0;
            for l in logits.iter_mut() {
                *l = (*l - max).exp();
                total += *l;
            }
            logits.iter_mut().for_each(|p| *p /= total);
        }
        probs
    }
}

/// An actor-critic with its recurrent state, acting without gradients. Each row draws from its
/// own stream, so results do not depend on the batch size.
pub struct AgentPolicy<'a> {
    ac: &'a ActorCritic,
    state: State,
    mode: ActionMode,
    rngs: Vec<Rng>,
    lesion: Option<Lesion>,
    /// Per row: the step of its episode, which says whether the lesion holds there yet.
    episode_steps: Vec<usize>,
}

impl<'a> AgentPolicy<'a> {
    pub fn new(ac: &'a ActorCritic, num_envs: usize, mode: ActionMode, seed: u64) -> Self {
        Self {
            state: ac.initial_state(num_envs as i64),
            ac,
            mode,
            rngs: (0..num_envs).map(|i| rng::policy_stream(seed, i)).collect(),
            lesion: None,
            episode_steps: vec![0; num_envs],
        }
    }

    /// The same policy with `lesion`'s neurons silenced from its step of each episode on.
    pub fn lesioned(self, lesion: Lesion) -> Self {
        Self {
            lesion: Some(lesion),
            ..self
        }
    }

    /// The recurrent state after the last action (traces included).
    pub fn state(&self) -> &State {
        &self.state
    }
}

/// Where one step's actions go, one per row: discrete choices, or the `A` components of each
/// continuous action (`[B × A]` flattened) of a network with a Gaussian policy.
pub enum ActionsMut<'a> {
    Discrete(&'a mut [u32]),
    Continuous(&'a mut [f32]),
}

/// One step of `ac` without gradients: observations `obs` `[B × obs_dim]` from the host, one
/// action per row written to `actions` (row `i` drawing from `rngs[i]` when sampling), and the
/// state after it. Every front end acts through this, so an action is chosen one way.
pub fn act(
    ac: &ActorCritic,
    obs: &[f32],
    state: &State,
    mode: ActionMode,
    rngs: &mut [Rng],
    actions: ActionsMut<'_>,
) -> State {
    act_silenced(ac, obs, state, None, mode, rngs, actions)
}

/// [`act`] with the hidden neurons where `alive` is 0 silenced ([`ActorCritic::step_silenced`]).
pub fn act_silenced(
    ac: &ActorCritic,
    obs: &[f32],
    state: &State,
    alive: Option<&Tensor>,
    mode: ActionMode,
    rngs: &mut [Rng],
    actions: ActionsMut<'_>,
) -> State {
    tch::no_grad(|| {
        let x = obs_tensor(obs, rngs.len(), ac.core.device());
        let step = ac.step_silenced(&x.to_kind(ac.core.kind()), state, alive);
        match (actions, &ac.log_std) {
            (ActionsMut::Discrete(actions), _) => {
                choose(&host_probs(&step.logits), mode, rngs, actions);
            }
            (ActionsMut::Continuous(actions), Some(log_std)) => {
                let std = host_values(&log_std.exp());
                gaussian::choose(&host_values(&step.logits), &std, mode, rngs, actions);
            }
            // The trainer, `plastic eval` and the Python package build the network for the
            // environment's action space, so its kind always matches.
            (ActionsMut::Continuous(_), None) => {
                unreachable!("continuous actions asked of a network with a discrete policy")
            }
        }
        step.state
    })
}

impl AgentPolicy<'_> {
    fn act_into(&mut self, obs: &[f32], actions: ActionsMut<'_>) {
        let alive = self
            .lesion
            .as_ref()
            .and_then(|l| l.alive(&self.episode_steps));
        self.state = act_silenced(
            self.ac,
            obs,
            &self.state,
            alive.as_ref(),
            self.mode,
            &mut self.rngs,
            actions,
        );
        self.episode_steps.iter_mut().for_each(|s| *s += 1);
    }
}

impl Policy for AgentPolicy<'_> {
    fn act(&mut self, obs: &[f32], actions: &mut [u32]) {
        self.act_into(obs, ActionsMut::Discrete(actions));
    }

    fn act_continuous(&mut self, obs: &[f32], actions: &mut [f32]) -> Result<(), EnvError> {
        self.act_into(obs, ActionsMut::Continuous(actions));
        Ok(())
    }

    fn episodes_ended(&mut self, done: &[bool]) {
        self.state = self.state.reset_rows_bool(done);
        for (steps, &done) in self.episode_steps.iter_mut().zip(done) {
            if done {
                *steps = 0;
            }
        }
    }
}

/// `episodes` whole episodes of `ac` on `env` (seeded with `seed`, in batches of
/// [`eval_batch`]): how `plastic eval` and the Python module judge an agent. `None` if `stop`
/// said so before the last step (it is asked before every step, with the episodes ended so
/// far).
pub fn evaluate(
    ac: &ActorCritic,
    env: &dyn Environment,
    episodes: usize,
    seed: u64,
    mode: ActionMode,
    stop: &mut dyn FnMut(usize) -> bool,
) -> Result<Option<RolloutStats>, EnvError> {
    let batch = eval_batch(episodes);
    let mut e = env.build(batch)?;
    let mut policy = AgentPolicy::new(ac, batch, mode, seed);
    run_episodes_unless(e.as_mut(), &mut policy, episodes, seed, stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_follows_the_probabilities_and_greedy_takes_the_mode() {
        let probs = [0.2f32, 0.5, 0.3];
        let mut rngs = vec![rng::stream(1, 0)];
        let mut counts = [0usize; 3];
        let mut a = [0u32];
        let n = 20_000;
        for _ in 0..n {
            choose(&probs, ActionMode::Sample, &mut rngs, &mut a);
            counts[a[0] as usize] += 1;
        }
        for (c, p) in counts.iter().zip(probs) {
            let freq = *c as f64 / n as f64;
            // 5 standard errors of a binomial frequency at n = 20,000.
            assert!(
                (freq - f64::from(p)).abs() < 5.0 * (0.25 / n as f64).sqrt(),
                "{counts:?}"
            );
        }
        choose(&probs, ActionMode::Greedy, &mut rngs, &mut a);
        assert_eq!(a[0], 1);
    }
}
