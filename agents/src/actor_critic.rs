//! Policy and value heads on top of any recurrent core.
use crate::cores::{init, Core, CoreConfig, CoreConfigError, State};
use crate::encoders::{Encoder, Pixels};
use tch::{nn, Tensor};

/// A linear layer with PyTorch's default initialisation (`U(±1/√fan_in)` for weight and bias).
#[derive(Debug)]
pub struct Head {
    /// `[out × H]`.
    pub w: Tensor,
    /// `[out]`.
    pub b: Tensor,
}

impl Head {
    pub(crate) fn new(p: &nn::Path, fan_in: i64, out: i64) -> Self {
        Self {
            w: init::var(p, "weight", &init::linear_default(&[out, fan_in], fan_in)),
            b: init::var(p, "bias", &init::linear_default(&[out], fan_in)),
        }
    }

    /// A layer with an orthogonal weight times `gain` ([`init::orthogonal`]) and a zero bias,
    /// as Stable-Baselines3 starts its networks.
    pub(crate) fn orthogonal(p: &nn::Path, fan_in: i64, out: i64, gain: f64) -> Self {
        Self {
            w: init::var(p, "weight", &init::orthogonal(out, fan_in, gain)),
            b: init::var(p, "bias", &init::zeros(&[out])),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.w, Some(&self.b))
    }
}

/// Recurrent actor-critic: observations → encoder → core → policy head (logits of discrete actions, or the
/// means of a continuous action's components) and state value. Variables live under `core.`,
/// `policy.`, `value.` (and `log_std` for continuous actions) of the path given to
/// [`ActorCritic::new`].
#[derive(Debug)]
pub struct ActorCritic {
    /// What the core reads: flat observations as they are, images through convolutions.
    pub encoder: Encoder,
    pub core: Core,
    pub policy: Head,
    pub value: Head,
    /// Continuous actions: the diagonal Gaussian's learned log standard deviations, `[A]`
    /// (crate `gaussian`). `None`: the policy head's outputs are logits of discrete actions.
    pub log_std: Option<Tensor>,
}

/// One step of an actor-critic.
#[derive(Debug)]
pub struct AcStep {
    /// The policy head's outputs, `[B × A]`: unnormalised action log-probabilities, or with
    /// [`ActorCritic::log_std`] the Gaussian's means.
    pub logits: Tensor,
    /// State values, `[B]`.
    pub value: Tensor,
    pub state: State,
}

impl ActorCritic {
    pub fn new(
        p: &nn::Path,
        input_dim: i64,
        num_actions: i64,
        config: &CoreConfig,
    ) -> Result<Self, CoreConfigError> {
        if num_actions < 1 {
            return Err(CoreConfigError::ZeroActions);
        }
        let core = Core::new(&(p / "core"), input_dim, config)?;
        let h = core.hidden();
        Ok(Self {
            policy: Head::new(&(p / "policy"), h, num_actions),
            value: Head::new(&(p / "value"), h, 1),
            encoder: Encoder::Flat {
                pixels: Pixels::AsIs,
            },
            core,
            log_std: None,
        })
    }

    /// An actor-critic reading its observations through `encoder` (built first, under the
    /// same path `p`): the core's input is the encoder's features.
    pub fn with_encoder(
        encoder: Encoder,
        p: &nn::Path,
        features: i64,
        num_actions: i64,
        config: &CoreConfig,
    ) -> Result<Self, CoreConfigError> {
        Ok(Self {
            encoder,
            ..Self::new(p, features, num_actions, config)?
        })
    }

    /// The same network acting in a continuous action space: its policy head's outputs become
    /// a diagonal Gaussian's means, with learned log standard deviations under `p` (the path
    /// given to [`ActorCritic::new`]). No random draw: discrete networks built beside it keep
    /// their weights.
    pub fn with_gaussian_policy(self, p: &nn::Path) -> Self {
        let log_std = crate::gaussian::log_std_var(p, self.num_actions());
        Self {
            log_std: Some(log_std),
            ..self
        }
    }

    pub fn initial_state(&self, batch: i64) -> State {
        self.core.initial_state(batch)
    }

    /// `(obs [B × obs_dim], state) → (logits [B × A], value [B], new state)`.
    pub fn step(&self, obs: &Tensor, state: &State) -> AcStep {
        self.step_silenced(obs, state, None)
    }

    /// [`ActorCritic::step`] with the hidden neurons where `alive` is 0 silenced
    /// ([`Core::step_silenced`]).
    pub fn step_silenced(&self, obs: &Tensor, state: &State, alive: Option<&Tensor>) -> AcStep {
        let (h, state) = self
            .core
            .step_silenced(&self.encoder.encode(obs), state, alive);
        AcStep {
            logits: self.policy.forward(&h),
            value: self.value.forward(&h).squeeze_dim(1),
            state,
        }
    }

    pub fn num_actions(&self) -> i64 {
        self.policy.b.size()[0]
    }
}
