//! Lesions: a fraction of the hidden neurons silenced (their output `h_t` forced to 0 at every
//! step, [`crate::Core::step_silenced`]) from a given step of each episode on, and the reward
//! in windows of steps after it, to see whether the agent recovers within the episode.
use super::PerturbationError;
use crate::acting::{ActionMode, AgentPolicy};
use crate::cores::state::row_mask;
use crate::ActorCritic;
use plastic_envs::rollout::{eval_batch, run_episodes_unless, RolloutStats};
use plastic_envs::{rng, EnvError, EnvSpec, Environment, Step, VecEnv};
use rand::seq::SliceRandom;
use tch::Tensor;

/// Lesions are drawn from the evaluation seed xor this, apart from every other stream.
const LESION_SALT: u64 = 0x1E51_0A00_0000_0000;

/// Which hidden neurons are silenced, and from which step of each episode.
pub struct Lesion {
    silenced: Vec<usize>,
    /// `[H]`: 0 for a silenced neuron, 1 for the others.
    alive: Tensor,
    from_step: usize,
}

impl Lesion {
    /// `fraction` of `ac`'s hidden neurons (rounded to the nearest count), the first ones of a
    /// permutation drawn from `seed`: the same neurons for a whole evaluation, and a larger
    /// fraction silences the smaller one's neurons and more.
    pub fn new(
        ac: &ActorCritic,
        fraction: f64,
        from_step: usize,
        seed: u64,
    ) -> Result<Self, PerturbationError> {
        check_fraction(fraction)?;
        let hidden = ac.core.hidden() as usize;
        let mut order: Vec<usize> = (0..hidden).collect();
        order.shuffle(&mut rng::stream(seed ^ LESION_SALT, 0));
        let mut silenced = order[..(fraction * hidden as f64).round() as usize].to_vec();
        silenced.sort_unstable();
        let mut alive = vec![1.0f32; hidden];
        for &i in &silenced {
            alive[i] = 0.0;
        }
        let alive = Tensor::from_slice(&alive)
            .to_kind(ac.core.kind())
            .to_device(ac.core.device());
        Ok(Self {
            silenced,
            alive,
            from_step,
        })
    }

    /// The silenced neurons, in increasing order.
    pub fn silenced(&self) -> &[usize] {
        &self.silenced
    }

    /// The step of each episode (from 0) whose output is the first silenced.
    pub fn from_step(&self) -> usize {
        self.from_step
    }

    /// The mask for rows at `episode_steps`: `[H]` when the lesion holds from the start,
    /// `[B × H]` with rows of ones before its step; `None` while no row has reached it.
    pub(crate) fn alive(&self, episode_steps: &[usize]) -> Option<Tensor> {
        if self.from_step == 0 {
            return Some(self.alive.shallow_clone());
        }
        let reached: Vec<bool> = episode_steps.iter().map(|&s| s >= self.from_step).collect();
        if !reached.contains(&true) {
            return None;
        }
        let reached = row_mask(&reached)
            .to_device(self.alive.device())
            .unsqueeze(1);
        Some(self.alive.where_self(&reached, &self.alive.ones_like()))
    }
}

/// An error unless `fraction` is a share of neurons (in [0, 1]).
pub fn check_fraction(fraction: f64) -> Result<(), PerturbationError> {
    match (0.0..=1.0).contains(&fraction) {
        true => Ok(()),
        false => Err(PerturbationError::Fraction(fraction)),
    }
}

/// An error unless a lesion at `step` happens within the episodes of `spec`; a lesion after
/// the start needs a fixed episode length, which bounds the windows after it.
pub fn check_step(step: usize, spec: &EnvSpec) -> Result<(), PerturbationError> {
    match spec.episode_len {
        _ if step == 0 => Ok(()),
        None => Err(PerturbationError::NoHorizon(spec.id.clone())),
        Some(len) if step >= len => Err(PerturbationError::LesionStep {
            step,
            env: spec.id.clone(),
            len,
        }),
        Some(_) => Ok(()),
    }
}

/// `count` windows of `width` steps from step `start` of each episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub start: usize,
    pub width: usize,
    pub count: usize,
}

impl Windows {
    /// Windows of `width` steps (default: a fifth of the rest, rounded up) covering the steps
    /// of an episode of `episode_len` from `start` on.
    pub fn after(start: usize, width: Option<usize>, episode_len: usize) -> Self {
        let rest = episode_len.saturating_sub(start).max(1);
        let width = width.unwrap_or(rest.div_ceil(5)).max(1);
        Self {
            start,
            width,
            count: rest.div_ceil(width),
        }
    }
}

/// What a perturbed evaluation measured.
pub struct LesionedStats {
    /// As `plastic eval` reports an agent.
    pub stats: RolloutStats,
    /// Mean reward per episode in each window (empty without windows).
    pub windows: Vec<f64>,
}

/// Which held-out episodes an evaluation runs, and how it picks actions.
#[derive(Debug, Clone, Copy)]
pub struct HeldOut {
    pub episodes: usize,
    pub seed: u64,
    pub mode: ActionMode,
}

/// The held-out episodes of `ac` on `env`, as [`crate::acting::evaluate`] runs them (the
/// same episodes and action draws for a seed), with `lesion`'s neurons silenced and the
/// reward summed in `windows`. `None` if `stop` said so before the last step.
pub fn evaluate(
    ac: &ActorCritic,
    env: &dyn Environment,
    held_out: HeldOut,
    lesion: Option<Lesion>,
    windows: Option<Windows>,
    stop: &mut dyn FnMut(usize) -> bool,
) -> Result<Option<LesionedStats>, EnvError> {
    let HeldOut {
        episodes,
        seed,
        mode,
    } = held_out;
    let batch = eval_batch(episodes);
    let mut e = WindowedRewards::new(env.build(batch)?, windows, episodes);
    let mut policy = AgentPolicy::new(ac, batch, mode, seed);
    if let Some(lesion) = lesion {
        policy = policy.lesioned(lesion);
    }
    let stats = run_episodes_unless(&mut e, &mut policy, episodes, seed, stop)?;
    Ok(stats.map(|stats| LesionedStats {
        stats,
        windows: e.means(),
    }))
}

/// An environment batch that passes everything through and sums each episode's reward in
/// windows of steps, keeping the first `wanted` episodes to end in the order
/// `run_episodes_unless` counts them (by step, then by row).
struct WindowedRewards<E> {
    inner: E,
    tally: Tally,
}

/// The sums [`WindowedRewards`] keeps.
struct Tally {
    windows: Option<Windows>,
    wanted: usize,
    /// Per row: the step of its episode, and the reward so far in each window.
    steps: Vec<usize>,
    current: Vec<Vec<f64>>,
    totals: Vec<f64>,
    ended: usize,
}

impl<E: VecEnv> WindowedRewards<E> {
    fn new(inner: E, windows: Option<Windows>, wanted: usize) -> Self {
        let (b, count) = (inner.num_envs(), windows.map_or(0, |w| w.count));
        Self {
            inner,
            tally: Tally {
                windows,
                wanted,
                steps: vec![0; b],
                current: vec![vec![0.0; count]; b],
                totals: vec![0.0; count],
                ended: 0,
            },
        }
    }

    fn means(&self) -> Vec<f64> {
        let n = self.tally.ended.max(1) as f64;
        self.tally.totals.iter().map(|t| t / n).collect()
    }
}

impl Tally {
    fn reset(&mut self) {
        self.steps.fill(0);
        self.current.iter_mut().for_each(|c| c.fill(0.0));
        self.totals.fill(0.0);
        self.ended = 0;
    }

    /// Adds one step's rewards to their windows, and the windows of the episodes it ended to
    /// the totals.
    fn record(&mut self, step: &Step<'_>) {
        let Some(w) = self.windows else {
            return;
        };
        for (row, (t, current)) in self.steps.iter_mut().zip(&mut self.current).enumerate() {
            if let Some(k) = t.checked_sub(w.start).map(|s| s / w.width) {
                if k < w.count {
                    current[k] += f64::from(step.rewards[row]);
                }
            }
            *t += 1;
            if step.done(row) {
                if self.ended < self.wanted {
                    self.totals
                        .iter_mut()
                        .zip(current.iter())
                        .for_each(|(a, c)| *a += c);
                    self.ended += 1;
                }
                current.fill(0.0);
                *t = 0;
            }
        }
    }
}

impl<E: VecEnv> VecEnv for WindowedRewards<E> {
    fn spec(&self) -> &EnvSpec {
        self.inner.spec()
    }

    fn num_envs(&self) -> usize {
        self.inner.num_envs()
    }

    fn reset(&mut self, seed: u64) -> Result<&[f32], EnvError> {
        self.tally.reset();
        self.inner.reset(seed)
    }

    fn step(&mut self, actions: &[u32]) -> Result<Step<'_>, EnvError> {
        let step = self.inner.step(actions)?;
        self.tally.record(&step);
        Ok(step)
    }

    fn step_continuous(&mut self, actions: &[f32]) -> Result<Step<'_>, EnvError> {
        let step = self.inner.step_continuous(actions)?;
        self.tally.record(&step);
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CoreConfig;
    use tch::{nn, Device, Kind};

    #[test]
    fn silencing_every_neuron_leaves_the_heads_on_a_zero_hidden_state() {
        for core in [
            "kind = \"plastic-rnn\"\nmodulation = \"simple\"",
            "kind = \"plastic-lstm\"",
            "kind = \"rnn\"\nmodulation = \"none\"",
        ] {
            let config: CoreConfig = toml::from_str(&format!("{core}\nhidden = 5")).unwrap();
            let vs = nn::VarStore::new(Device::Cpu);
            let ac = ActorCritic::new(&(vs.root() / "ac"), 3, 4, &config).unwrap();
            let all = Lesion::new(&ac, 1.0, 0, 3).unwrap();
            assert_eq!(all.silenced(), [0, 1, 2, 3, 4]);
            let alive = all.alive(&[0, 0]).unwrap();
            let no_input = ac
                .policy
                .forward(&Tensor::zeros([2, 5], (Kind::Float, Device::Cpu)));
            let mut state = ac.initial_state(2);
            for _ in 0..4 {
                let obs = Tensor::randn([2, 3], (Kind::Float, Device::Cpu));
                let step = tch::no_grad(|| ac.step_silenced(&obs, &state, Some(&alive)));
                assert!(step.logits.equal(&no_input), "{core}");
                // Without the lesion the same state acts on its input.
                let free = tch::no_grad(|| ac.step(&obs, &state));
                assert!(!free.logits.equal(&no_input), "{core}");
                state = step.state;
            }
        }
    }

    #[test]
    fn lesions_are_seeded_nested_and_start_at_their_step() {
        let config: CoreConfig = toml::from_str("hidden = 20").unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let ac = ActorCritic::new(&(vs.root() / "ac"), 3, 2, &config).unwrap();
        let quarter = Lesion::new(&ac, 0.25, 4, 9).unwrap();
        let half = Lesion::new(&ac, 0.5, 4, 9).unwrap();
        assert_eq!(quarter.silenced().len(), 5);
        assert!(quarter
            .silenced()
            .iter()
            .all(|i| half.silenced().contains(i)));
        assert_eq!(
            quarter.silenced(),
            Lesion::new(&ac, 0.25, 0, 9).unwrap().silenced()
        );
        assert_ne!(
            quarter.silenced(),
            Lesion::new(&ac, 0.25, 0, 10).unwrap().silenced()
        );
        assert!(quarter.alive(&[0, 3]).is_none());
        let mask = quarter.alive(&[3, 4]).unwrap();
        assert_eq!(mask.size(), [2, 20]);
        assert_eq!(mask.get(0).sum(Kind::Double).double_value(&[]), 20.0);
        assert_eq!(mask.get(1).sum(Kind::Double).double_value(&[]), 15.0);
        for bad in [-0.1, 1.5, f64::NAN] {
            assert!(matches!(
                Lesion::new(&ac, bad, 0, 0).err(),
                Some(PerturbationError::Fraction(_))
            ));
        }
    }

    #[test]
    fn unperturbed_evaluations_are_evals_and_windows_sum_to_the_reward() {
        let config: CoreConfig = toml::from_str("hidden = 6").unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let env = plastic_envs::registry::parse("bandit-dependent-easy:len=10").unwrap();
        let spec = env.build(1).unwrap().spec().clone();
        let (obs, actions) = (spec.obs_dim as i64, spec.num_actions as i64);
        let ac = ActorCritic::new(&(vs.root() / "ac"), obs, actions, &config).unwrap();
        let held_out = HeldOut {
            episodes: 20,
            seed: 3,
            mode: ActionMode::Sample,
        };
        let never = &mut |_| false;
        let eval = crate::acting::evaluate(&ac, env.as_ref(), 20, 3, ActionMode::Sample, never)
            .unwrap()
            .unwrap();
        let whole = Windows {
            start: 0,
            width: 10,
            count: 1,
        };
        let ours = evaluate(&ac, env.as_ref(), held_out, None, Some(whole), never)
            .unwrap()
            .unwrap();
        assert_eq!(ours.stats, eval);
        // One window over the whole episode adds the rewards in the order the episode's
        // return does.
        assert_eq!(ours.windows, [eval.episode_return.mean]);
        let thirds = Windows::after(1, Some(3), 10);
        let lesion = Lesion::new(&ac, 0.5, 1, 0).unwrap();
        let lesioned = evaluate(
            &ac,
            env.as_ref(),
            held_out,
            Some(lesion),
            Some(thirds),
            never,
        )
        .unwrap()
        .unwrap();
        assert_eq!(lesioned.windows.len(), 3);
        assert!(lesioned.windows.iter().sum::<f64>() <= lesioned.stats.episode_return.mean);
    }

    #[test]
    fn windows_cover_the_rest_of_the_episode() {
        assert_eq!(
            Windows::after(20, None, 100),
            Windows {
                start: 20,
                width: 16,
                count: 5
            }
        );
        assert_eq!(Windows::after(8, Some(3), 10).count, 1);
        let spec = EnvSpec {
            id: "e".into(),
            obs_dim: 1,
            num_actions: 2,
            action_start: 0,
            action_box: None,
            image: None,
            episode_len: Some(10),
        };
        assert!(check_step(9, &spec).is_ok());
        assert_eq!(
            check_step(10, &spec).unwrap_err().to_string(),
            "a lesion at step 10 never happens: episodes of `e` last 10 steps (steps count \
             from 0, so the last one is 9)"
        );
    }
}
