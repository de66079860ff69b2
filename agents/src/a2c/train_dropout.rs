//! Training under dropout of neurons (`a2c.train_dropout = p`, docs/perturbation.md): every
//! episode of every batch row runs with a fresh random fraction `p` of the hidden neurons
//! silenced, as `plastic perturb`'s lesions silence them (the perturbation module's
//! [`Lesion`], from the episode's first step): their output `h_t` is 0 for the whole episode,
//! for the heads, the traces and the next step alike, and the backward pass goes through the
//! same silenced steps.
//!
//! An episode's neurons are drawn from the run's seed, the row and the environment step the
//! episode started at, so a resumed run draws the masks of the episodes under way again
//! without storing them. Collection keeps each step's masks with the rollout, so PPO's epochs
//! replay them.
use super::config::A2cConfig;
use super::errors::TrainError;
use crate::cores::{Bptt, Core, Engine};
use crate::perturbation::Lesion;
use crate::ActorCritic;
use plastic_envs::rng;
use rand::RngCore;
use tch::Tensor;

/// Each episode's lesion is drawn from the run's seed xor this, apart from every other stream.
const TRAIN_DROPOUT_SALT: u64 = 0xD409_0000_0000_0000;

/// The engine that trains `core` as `a2c` says: autograd under dropout (the hand-written
/// passes take no mask; `fused` and `ops` say so), else `a2c.bptt`'s.
pub(super) fn engine(a2c: &A2cConfig, core: &Core) -> Result<Engine, TrainError> {
    match (a2c.train_dropout(), a2c.bptt) {
        (None, bptt) => Ok(bptt.engine(core)?),
        (Some(_), Bptt::Auto | Bptt::Autograd) => Ok(Engine::Autograd),
        (Some(_), bptt @ (Bptt::Fused | Bptt::Ops)) => Err(TrainError::TrainDropoutHandWritten {
            setting: bptt.name(),
        }),
    }
}

/// The neurons every batch row's episode under way runs without.
pub(super) struct Dropout<'a> {
    ac: &'a ActorCritic,
    fraction: f64,
    seed: u64,
    /// Per row, `[H]`: 0 for a silenced neuron, 1 for the others.
    rows: Vec<Tensor>,
    /// `rows` stacked, `[B × H]`.
    alive: Tensor,
}

impl<'a> Dropout<'a> {
    /// The masks silencing `fraction` of the neurons in the episodes under way at
    /// environment step `step` of the run seeded with `seed`, row `i`'s episode
    /// `under_way[i]` steps old.
    pub(super) fn start(
        ac: &'a ActorCritic,
        fraction: f64,
        seed: u64,
        step: u64,
        under_way: &[u64],
    ) -> Self {
        let rows: Vec<Tensor> = under_way
            .iter()
            .enumerate()
            .map(|(row, &age)| episode_mask(ac, fraction, seed, row, step - age))
            .collect();
        Self {
            ac,
            fraction,
            seed,
            alive: Tensor::stack(&rows, 0),
            rows,
        }
    }

    /// Fresh masks for the rows marked in `starts`, whose episodes start at environment step
    /// `step`.
    pub(super) fn start_episodes(&mut self, starts: &[bool], step: u64) {
        if !starts.contains(&true) {
            return;
        }
        for (row, _) in starts.iter().enumerate().filter(|(_, &s)| s) {
            self.rows[row] = episode_mask(self.ac, self.fraction, self.seed, row, step);
        }
        self.alive = Tensor::stack(&self.rows, 0);
    }

    /// `[B × H]`: 0 where a row's neuron is silenced, 1 elsewhere.
    pub(super) fn alive(&self) -> &Tensor {
        &self.alive
    }
}

/// Row `row`'s mask for its episode starting at environment step `step`: `plastic perturb`'s
/// lesion of `fraction` of the neurons from the episode's start, drawn from its own seed.
fn episode_mask(ac: &ActorCritic, fraction: f64, seed: u64, row: usize, step: u64) -> Tensor {
    let lesion = Lesion::new(ac, fraction, 0, episode_seed(seed, row, step))
        .expect("a2c.train_dropout is checked to be a fraction in [0, 1)");
    lesion
        .alive(&[])
        .expect("a lesion from step 0 holds at once")
}

/// The seed of the lesion of row `row`'s episode starting at environment step `step`.
fn episode_seed(seed: u64, row: usize, step: u64) -> u64 {
    let per_step = seed ^ TRAIN_DROPOUT_SALT ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    rng::stream(per_step, row).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cores::CoreConfig;
    use tch::{nn, Device, Kind};

    fn dropout_config(p: f64) -> A2cConfig {
        A2cConfig {
            train_dropout: Some(p),
            ..A2cConfig::default()
        }
    }

    fn actor_critic(vs: &nn::VarStore) -> ActorCritic {
        let config: CoreConfig = toml::from_str("hidden = 16").unwrap();
        ActorCritic::new(&(vs.root() / "ac"), 3, 2, &config).unwrap()
    }

    /// The silenced neurons of a `[H]` mask.
    fn silenced(mask: &Tensor) -> Vec<usize> {
        let v = Vec::<f32>::try_from(mask.to_kind(Kind::Float)).unwrap();
        (0..v.len()).filter(|&i| v[i] == 0.0).collect()
    }

    /// Each row's mask is `plastic perturb`'s lesion of its episode: the same neurons, and
    /// each row of a step under the masks is that row of the step under its lesion.
    #[test]
    fn the_training_mask_is_the_lesion_of_each_episode() {
        let vs = nn::VarStore::new(Device::Cpu);
        let ac = actor_critic(&vs);
        let dropout = Dropout::start(&ac, 0.25, 7, 40, &[0, 5, 40]);
        let alive = dropout.alive();
        assert_eq!(alive.size(), [3, 16]);
        let state = ac.initial_state(3);
        let x = Tensor::randn([3, 3], (Kind::Float, Device::Cpu));
        let (silenced_h, _) = tch::no_grad(|| ac.core.step_silenced(&x, &state, Some(alive)));
        for (row, started) in [(0, 40), (1, 35), (2, 0)] {
            let lesion = Lesion::new(&ac, 0.25, 0, episode_seed(7, row, started)).unwrap();
            assert_eq!(silenced(&alive.get(row as i64)), lesion.silenced());
            assert_eq!(lesion.silenced().len(), 4);
            let lesioned = lesion.alive(&[]).unwrap();
            let (h, _) = tch::no_grad(|| ac.core.step_silenced(&x, &state, Some(&lesioned)));
            let row = row as i64;
            assert!(h.get(row).equal(&silenced_h.get(row)), "row {row}");
        }
    }

    /// A new episode draws new neurons, and the draws follow the run's seed.
    #[test]
    fn masks_change_between_episodes_and_follow_the_seed() {
        let vs = nn::VarStore::new(Device::Cpu);
        let ac = actor_critic(&vs);
        let masks = |seed: u64| {
            let mut d = Dropout::start(&ac, 0.5, seed, 0, &[0, 0]);
            let first = d.alive().copy();
            d.start_episodes(&[false, true], 10);
            (first, d.alive().copy())
        };
        let (first, later) = masks(1);
        assert!(first.get(0).equal(&later.get(0)), "row 0 went on");
        assert!(
            !first.get(1).equal(&later.get(1)),
            "row 1's new episode kept its mask"
        );
        assert!(!first.get(0).equal(&first.get(1)), "rows share a mask");
        let (again, again_later) = masks(1);
        assert!(again.equal(&first) && again_later.equal(&later));
        assert!(!masks(2).0.equal(&first));
    }

    #[test]
    fn without_dropout_the_engine_is_bptt_s_and_under_it_autograd() {
        let vs = nn::VarStore::new(Device::Cpu);
        let ac = actor_critic(&vs);
        for a2c in [A2cConfig::default(), dropout_config(0.0)] {
            assert_eq!(a2c.train_dropout(), None);
            assert_eq!(engine(&a2c, &ac.core).unwrap(), Engine::Fused);
        }
        assert_eq!(
            engine(&dropout_config(0.1), &ac.core).unwrap(),
            Engine::Autograd
        );
        let fused = A2cConfig {
            bptt: Bptt::Fused,
            ..dropout_config(0.1)
        };
        let err = engine(&fused, &ac.core).unwrap_err().to_string();
        assert!(
            err.contains("a2c.train_dropout") && err.contains("bptt = \"fused\""),
            "{err}"
        );
    }
}
