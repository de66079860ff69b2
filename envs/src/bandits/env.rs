use super::{BanditConfig, Task};
use crate::rng::{self, Rng};
use crate::saved::{self, check_len};
use crate::{EnvError, EnvSpec, EnvState, Environment, Step, StepBuffers, VecEnv};
use rand::Rng as _;
use rand_distr::StandardNormal;

/// `B` bandits of one task family, stepped together.
///
/// Observation row (length `K + 2`): one-hot of the previous action (zeros at `t = 0`), the
/// previous reward, `t / T`. Every episode lasts exactly `T` steps and then terminates (the
/// horizon is part of the task, and the agent sees the clock, so nothing lies beyond it for a
/// critic to bootstrap from); all rows share one clock, end together and draw new arms.
/// The regret buffer holds `max_a E[r_a] − E[r_{a_t}]` under the probabilities of the step.
#[derive(Debug, Clone)]
pub struct Bandit {
    config: BanditConfig,
    spec: EnvSpec,
    buf: StepBuffers,
    /// Steps taken in the current episode.
    t: usize,
    /// `[B × K]`: expected reward of every arm, this step.
    means: Vec<f32>,
    /// `[B]`: the best arm's expected reward, this step.
    best: Vec<f32>,
    /// `[B]`: the previous action, whose one-hot entry is the only one set; `NONE` at `t = 0`.
    last: Vec<u32>,
    rngs: Vec<Rng>,
}

const NONE: u32 = u32::MAX;

/// What `save_state` keeps: everything `step` reads besides the config.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    t: usize,
    means: Vec<f32>,
    best: Vec<f32>,
    last: Vec<u32>,
    rngs: Vec<Rng>,
    obs: Vec<f32>,
}

impl Bandit {
    pub fn new(config: BanditConfig, num_envs: usize) -> Self {
        let k = config.num_arms();
        let spec = EnvSpec {
            id: config.id(),
            obs_dim: k + 2,
            num_actions: k,
            action_start: 0,
            action_box: None,
            image: None,
            episode_len: Some(config.horizon()),
        };
        Self {
            buf: StepBuffers::new(num_envs, k + 2, true),
            t: 0,
            means: vec![0.0; num_envs * k],
            best: vec![0.0; num_envs],
            last: vec![NONE; num_envs],
            rngs: Vec::new(),
            config,
            spec,
        }
    }

    pub fn config(&self) -> &BanditConfig {
        &self.config
    }

    /// Draws row `row`'s arms for a new episode and shows its first observation.
    fn start_episode(&mut self, row: usize) {
        let k = self.spec.num_actions;
        let rng = &mut self.rngs[row];
        let means = &mut self.means[row * k..(row + 1) * k];
        match self.config.task() {
            Task::Independent { .. } => means.iter_mut().for_each(|p| *p = rng.random()),
            Task::Dependent(prior) => {
                let p1 = match prior.low() {
                    None => rng.random(),
                    Some(low) if rng.random() => (1.0 - low) as f32,
                    Some(low) => low as f32,
                };
                means.copy_from_slice(&[p1, 1.0 - p1]);
            }
            // U[0, 1] is the walk's stationary law: see `Task::Restless`.
            Task::Restless { .. } | Task::Switching { .. } => {
                let p1 = rng.random();
                means.copy_from_slice(&[p1, 1.0 - p1]);
            }
            Task::Informative => {
                let target = rng.random_range(0..10u8);
                for (arm, p) in means[..10].iter_mut().enumerate() {
                    *p = if arm == usize::from(target) { 5.0 } else { 1.0 };
                }
                means[10] = f32::from(target + 1) / 10.0;
            }
        }
        self.best[row] = means.iter().copied().fold(f32::MIN, f32::max);
        let last = std::mem::replace(&mut self.last[row], NONE);
        let obs = self.buf.obs_row_mut(row);
        if last != NONE {
            obs[last as usize] = 0.0;
        }
        obs[k..].fill(0.0);
    }
}

impl crate::BanditEnv for Bandit {
    /// Row `env`'s arm probabilities (expected rewards) at the current step.
    fn arm_means(&self, env: usize) -> &[f32] {
        let k = self.spec.num_actions;
        &self.means[env * k..(env + 1) * k]
    }
}

/// `x` folded back into [0, 1] by reflection at both ends.
fn reflect(mut x: f32) -> f32 {
    loop {
        if x < 0.0 {
            x = -x;
        } else if x > 1.0 {
            x = 2.0 - x;
        } else {
            return x;
        }
    }
}

impl VecEnv for Bandit {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn num_envs(&self) -> usize {
        self.buf.num_envs
    }

    fn reset(&mut self, seed: u64) -> Result<&[f32], EnvError> {
        let b = self.num_envs();
        self.rngs = rng::streams(seed, b);
        self.t = 0;
        for row in 0..b {
            self.start_episode(row);
        }
        Ok(&self.buf.obs)
    }

    fn step(&mut self, actions: &[u32]) -> Result<Step<'_>, EnvError> {
        if self.rngs.is_empty() {
            return Err(EnvError::NotReset);
        }
        let k = self.spec.num_actions;
        self.buf.check_actions(actions, k)?;
        self.t += 1;
        let len = self.config.horizon();
        let ended = self.t == len;
        let t_frac = self.t as f32 / len as f32;
        let bernoulli = self.config.task() != Task::Informative;
        let StepBuffers {
            obs_dim,
            obs,
            rewards,
            terminated,
            regret,
            ..
        } = &mut self.buf;
        let regret = regret
            .as_deref_mut()
            .expect("bandits are built with a regret buffer");
        for (row, &action) in actions.iter().enumerate() {
            let a = action as usize;
            let mean = self.means[row * k + a];
            let reward = if bernoulli {
                f32::from(u8::from(self.rngs[row].random::<f32>() < mean))
            } else {
                mean
            };
            rewards[row] = reward;
            regret[row] = self.best[row] - mean;
            terminated[row] = ended;
            let obs = &mut obs[row * *obs_dim..(row + 1) * *obs_dim];
            // At `t = 0` the previous action is `NONE`, past the end of the row: nothing to clear.
            if let Some(prev) = obs.get_mut(self.last[row] as usize) {
                *prev = 0.0;
            }
            obs[a] = 1.0;
            obs[k] = reward;
            obs[k + 1] = t_frac;
            self.last[row] = action;
        }
        if ended {
            self.t = 0;
            for row in 0..actions.len() {
                self.buf.save_final_obs(row);
                self.start_episode(row);
            }
        } else if let Some((volatility, every)) = self.config.task().drift() {
            let volatility = volatility as f32;
            let swap = every.is_some_and(|every| self.t.is_multiple_of(every));
            for (row, rng) in self.rngs.iter_mut().enumerate() {
                let noise: f32 = rng.sample(StandardNormal);
                let walked = reflect(self.means[2 * row] + volatility * noise);
                let p1 = if swap { 1.0 - walked } else { walked };
                self.means[2 * row..2 * row + 2].copy_from_slice(&[p1, 1.0 - p1]);
                self.best[row] = p1.max(1.0 - p1);
            }
        }
        Ok(self.buf.view())
    }

    fn save_state(&self) -> Option<EnvState> {
        Some(saved::encode(&Saved {
            t: self.t,
            means: self.means.clone(),
            best: self.best.clone(),
            last: self.last.clone(),
            rngs: self.rngs.clone(),
            obs: self.buf.obs.clone(),
        }))
    }

    fn load_state(&mut self, state: &EnvState) -> Result<(), EnvError> {
        let id = &self.spec.id;
        let s: Saved = saved::decode(id, state)?;
        let (b, k) = (self.num_envs(), self.spec.num_actions);
        check_len(id, "rngs", s.rngs.len(), b)?;
        check_len(id, "means", s.means.len(), b * k)?;
        check_len(id, "best", s.best.len(), b)?;
        check_len(id, "last", s.last.len(), b)?;
        check_len(id, "obs", s.obs.len(), b * self.spec.obs_dim)?;
        if s.t >= self.config.horizon() || s.last.iter().any(|&a| a != NONE && a as usize >= k) {
            return Err(saved::bad(
                id,
                "its step or last actions are out of range".into(),
            ));
        }
        (self.t, self.means, self.best, self.last, self.rngs) =
            (s.t, s.means, s.best, s.last, s.rngs);
        self.buf.obs = s.obs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BanditEnv as _;

    fn bandit(id: &str, b: usize) -> Bandit {
        Bandit::new(BanditConfig::from_id(id).unwrap().unwrap(), b)
    }

    #[test]
    fn reflection_lands_in_the_unit_interval() {
        for (x, want) in [
            (0.3, 0.3),
            (-0.2, 0.2),
            (1.25, 0.75),
            (5.5, 0.5),
            (-3.25, 0.75),
        ] {
            assert!((reflect(x) - want).abs() < 1e-6, "{x}: {}", reflect(x));
        }
    }

    #[test]
    fn two_armed_families_have_complementary_arms() {
        let ids = [
            "dependent-uniform",
            "dependent-easy",
            "dependent-hard",
            "restless",
            "switching",
        ];
        for id in ids {
            // The widest walk, to test the reflection hard.
            let params = if id == "restless" || id == "switching" {
                "len=7,volatility=1"
            } else {
                "len=7"
            };
            let mut env = bandit(&format!("bandit-{id}:{params}"), 16);
            env.reset(3).unwrap();
            for step in 0..50 {
                for row in 0..16 {
                    let p = env.arm_means(row);
                    assert!((0.0..=1.0).contains(&p[0]), "{id}: p1 = {}", p[0]);
                    assert_eq!(p[1], 1.0 - p[0], "{id}");
                    assert_eq!(env.best[row], p[0].max(p[1]), "{id}");
                }
                env.step(&[(step % 2) as u32; 16]).unwrap();
            }
        }
    }

    #[test]
    fn restless_arms_move_and_only_between_steps() {
        let mut env = bandit("bandit-restless:volatility=0.1", 4);
        env.reset(1).unwrap();
        let before = env.arm_means(0).to_vec();
        let step = env.step(&[0; 4]).unwrap();
        assert_eq!(
            step.regret.unwrap()[0],
            before[0].max(before[1]) - before[0]
        );
        assert_ne!(env.arm_means(0), &before[..]);
    }

    #[test]
    fn switching_arms_swap_every_given_pulls_and_walk_between() {
        // Without the walk, p1 changes exactly at the swaps: after pulls 3, 6, 9.
        let mut env = bandit("bandit-switching:every=3,len=10,volatility=0", 2);
        env.reset(5).unwrap();
        let start = env.arm_means(0)[0];
        for pull in 1..10 {
            env.step(&[0; 2]).unwrap();
            let swapped = (pull / 3) % 2 == 1;
            let want = if swapped { 1.0 - start } else { start };
            assert!(
                (env.arm_means(0)[0] - want).abs() < 1e-6,
                "after pull {pull}"
            );
        }
        // With it, p1 moves between swaps too.
        let mut env = bandit("bandit-switching:every=50,volatility=0.1", 1);
        env.reset(5).unwrap();
        let before = env.arm_means(0)[0];
        env.step(&[0]).unwrap();
        assert_ne!(env.arm_means(0)[0], before);
    }

    #[test]
    fn two_point_priors_draw_only_their_two_values() {
        let mut env = bandit("bandit-dependent-medium:len=1", 64);
        env.reset(2).unwrap();
        let mut high = 0;
        for _ in 0..20 {
            for row in 0..64 {
                let p1 = env.arm_means(row)[0];
                assert!(p1 == 0.25 || p1 == 0.75, "{p1}");
                high += usize::from(p1 == 0.75);
            }
            env.step(&[0; 64]).unwrap();
        }
        // 1280 fair coin flips: 640 ± 18 (sd); 6 sd either side.
        assert!((530..=750).contains(&high), "{high}");
    }

    #[test]
    fn bernoulli_rewards_have_the_arm_means() {
        // Σ (reward − p) over many pulls is a sum of independent zero-mean terms.
        let b = 64;
        let mut env = bandit("bandit-independent:arms=3,len=10", b);
        env.reset(4).unwrap();
        let (mut excess, mut var) = (0.0f64, 0.0f64);
        for step in 0..500 {
            let actions: Vec<u32> = (0..b).map(|row| ((row + step) % 3) as u32).collect();
            let means: Vec<f64> = (0..b)
                .map(|row| f64::from(env.arm_means(row)[actions[row] as usize]))
                .collect();
            let s = env.step(&actions).unwrap();
            for (row, p) in means.into_iter().enumerate() {
                excess += f64::from(s.rewards[row]) - p;
                var += p * (1.0 - p);
            }
        }
        assert!(
            excess.abs() < 4.0 * var.sqrt(),
            "excess {excess}, sd {}",
            var.sqrt()
        );
    }
}
