//! Relative Gaussian noise on a group of parameters: each parameter `p` becomes
//! `p·(1 + σ·ε)`, `ε ~ N(0, 1)` drawn once per parameter, so a parameter moves by σ times its
//! own size and a zero stays zero. One draw of ε serves every σ: the curve of reward against
//! σ follows one direction in parameter space rather than a new one per point.
use super::PerturbationError;
use crate::ActorCritic;
use plastic_envs::rng;
use rand_distr::{Distribution, StandardNormal};
use tch::Tensor;

config_option! {
    /// A group of an actor-critic's parameters, as the core and heads hold them.
    pub enum ParamGroup {
        /// The fixed recurrent weights `W` (LSTM: every gate's).
        #[default]
        W = "w",
        /// The plasticity coefficients `α` (plastic cores only).
        Alpha = "alpha",
        /// The input weights `W_in` and the bias `b`.
        Input = "input",
        /// The policy and value heads' weights and biases.
        Heads = "heads",
    }
}

/// Noise draws are seeded from the evaluation seed xor this, apart from every other stream.
const NOISE_SALT: u64 = 0x4E01_5E00_0000_0000;

impl ParamGroup {
    /// The group's tensors in `ac`: the one place that says which parameters a group holds.
    /// `None` where the core has no such parameters (α of a plain core).
    pub fn tensors(self, ac: &ActorCritic) -> Option<Vec<&Tensor>> {
        let core = &ac.core;
        match self {
            Self::W => Some(vec![core.w()]),
            Self::Alpha => core.alpha().map(|a| vec![a]),
            Self::Input => Some(vec![core.w_in(), core.bias()]),
            Self::Heads => Some(vec![&ac.policy.w, &ac.policy.b, &ac.value.w, &ac.value.b]),
        }
    }

    /// [`ParamGroup::tensors`], or an error naming the groups the core has.
    pub fn tensors_or_error(self, ac: &ActorCritic) -> Result<Vec<&Tensor>, PerturbationError> {
        self.tensors(ac)
            .ok_or_else(|| PerturbationError::MissingGroup {
                group: self.name(),
                core: ac.core.config().kind.name(),
                available: Self::ALL
                    .iter()
                    .filter(|g| g.tensors(ac).is_some())
                    .map(|g| format!("`{}`", g.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// An error unless `sigma` is a noise level (finite, ≥ 0).
pub fn check_sigma(sigma: f64) -> Result<(), PerturbationError> {
    match sigma.is_finite() && sigma >= 0.0 {
        true => Ok(()),
        false => Err(PerturbationError::Sigma(sigma)),
    }
}

/// One draw of ε for a group of an actor-critic's parameters, with their trained values.
pub struct Noise<'a> {
    /// The group's variables (sharing storage with the model) and copies of their values.
    params: Vec<(&'a Tensor, Tensor)>,
    eps: Vec<Tensor>,
}

impl<'a> Noise<'a> {
    /// ε for `group` of `ac`, drawn on the host from `seed` (one stream per group and tensor),
    /// so a draw is the same on every device and thread count.
    pub fn draw(
        ac: &'a ActorCritic,
        group: ParamGroup,
        seed: u64,
    ) -> Result<Self, PerturbationError> {
        let tensors = group.tensors_or_error(ac)?;
        let group_index = ParamGroup::ALL.iter().position(|g| *g == group);
        let group_index = group_index.expect("ALL lists every group");
        let mut params = Vec::new();
        let mut eps = Vec::new();
        for (i, t) in tensors.into_iter().enumerate() {
            let mut stream = rng::stream(seed ^ NOISE_SALT, group_index * 64 + i);
            let draws: Vec<f64> = (0..t.numel())
                .map(|_| StandardNormal.sample(&mut stream))
                .collect();
            eps.push(
                Tensor::from_slice(&draws)
                    .view(t.size().as_slice())
                    .to_kind(t.kind())
                    .to_device(t.device()),
            );
            params.push((t, t.detach().copy()));
        }
        Ok(Self { params, eps })
    }

    /// Runs `f` with the group's parameters at `p·(1 + σ·ε)`, then puts the trained values
    /// back. σ = 0 leaves them untouched.
    pub fn with_sigma<R>(&self, sigma: f64, f: impl FnOnce() -> R) -> Result<R, PerturbationError> {
        check_sigma(sigma)?;
        if sigma == 0.0 {
            return Ok(f());
        }
        self.perturb(sigma);
        let result = f();
        self.restore();
        Ok(result)
    }

    /// Sets the group's parameters to `p·(1 + σ·ε)` until [`Noise::restore`]; at σ = 0 to
    /// `p·1`, which is `p` bit for bit.
    pub(crate) fn perturb(&self, sigma: f64) {
        self.set(|p, e| p * (e * sigma + 1.0));
    }

    /// Puts the values the group had at [`Noise::draw`] back.
    pub(crate) fn restore(&self) {
        self.set(|p, _| p.shallow_clone());
    }

    /// Sets every parameter to `value(trained, ε)`, in place (the model holds the variables).
    fn set(&self, value: impl Fn(&Tensor, &Tensor) -> Tensor) {
        tch::no_grad(|| {
            for ((var, trained), e) in self.params.iter().zip(&self.eps) {
                var.shallow_clone().copy_(&value(trained, e));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CoreConfig;
    use tch::{nn, Kind};

    /// The mean absolute value of the tensors, to see that noise moved them.
    fn mean_abs(tensors: &[&Tensor]) -> f64 {
        tensors
            .iter()
            .map(|t| t.abs().mean(Kind::Double).double_value(&[]))
            .sum()
    }

    fn model(core: &str) -> (nn::VarStore, ActorCritic) {
        let config: CoreConfig = toml::from_str(&format!("{core}\nhidden = 6")).unwrap();
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let ac = ActorCritic::new(&(vs.root() / "ac"), 3, 2, &config).unwrap();
        (vs, ac)
    }

    #[test]
    fn noise_scales_each_parameter_by_its_own_size_and_is_undone() {
        let (_vs, ac) = model("kind = \"plastic-rnn\"");
        let trained = ac.core.w().copy();
        let noise = Noise::draw(&ac, ParamGroup::W, 7).unwrap();
        let eps = noise.eps[0].copy();
        let seen = noise.with_sigma(0.5, || ac.core.w().copy()).unwrap();
        // p·(1 + σ·ε) exactly, so a zero weight would stay zero.
        assert!(seen.equal(&(&trained * (&eps * 0.5 + 1.0))));
        assert!(!seen.equal(&trained));
        assert!(ac.core.w().equal(&trained), "the trained values come back");
        // σ = 0 and a second draw from the same seed change nothing.
        let untouched = noise.with_sigma(0.0, || ac.core.w().copy()).unwrap();
        assert!(untouched.equal(&trained));
        assert!(Noise::draw(&ac, ParamGroup::W, 7).unwrap().eps[0].equal(&eps));
        assert!(!Noise::draw(&ac, ParamGroup::W, 8).unwrap().eps[0].equal(&eps));
        let before = mean_abs(&ParamGroup::Heads.tensors(&ac).unwrap());
        let heads = Noise::draw(&ac, ParamGroup::Heads, 7).unwrap();
        let during = heads
            .with_sigma(2.0, || mean_abs(&ParamGroup::Heads.tensors(&ac).unwrap()))
            .unwrap();
        assert_ne!(before, during);
        assert!(matches!(
            noise.with_sigma(-0.1, || ()),
            Err(PerturbationError::Sigma(_))
        ));
    }

    #[test]
    fn a_plain_core_has_no_alpha_group() {
        let (_vs, ac) = model("kind = \"rnn\"\nmodulation = \"none\"");
        let err = Noise::draw(&ac, ParamGroup::Alpha, 0).err().unwrap();
        assert_eq!(
            err.to_string(),
            "the `rnn` core has no `alpha` parameters (α belongs to plastic cores); its groups \
             are `w`, `input`, `heads`"
        );
        let (_vs, plastic) = model("kind = \"plastic-lstm\"");
        assert!(ParamGroup::ALL
            .iter()
            .all(|g| g.tensors(&plastic).is_some()));
    }
}
