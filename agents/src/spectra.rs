//! Spectra of a recurrent agent (docs/spectra.md): the recurrent Jacobian `∂h_t/∂h_{t−1}`
//! along an episode, which says whether the dynamics sit at the edge of chaos, and the singular
//! values of `W`, `α` and the episode-averaged Hebbian trace, whose course over training shows
//! the stages (if any) in which the network learns.
use crate::acting::{obs_tensor, ActionMode, AgentPolicy};
use crate::cores::{AlphaShape, Core, State};
use crate::ActorCritic;
use plastic_envs::{EnvError, Environment, Policy};
use tch::{Device, Kind, Tensor};

/// Singular values below this count as this in `log σ`: a saturated tanh makes a Jacobian
/// singular, and one `log 0 = −∞` would hide every other step's number.
pub const LOG_FLOOR: f64 = 1e-12;

/// Steps of an episode the Jacobian is taken at; longer episodes are cut there.
pub const MAX_JACOBIAN_STEPS: usize = 500;

/// Steps an episode may run before its Hebbian trace is averaged as it stands.
const MAX_EPISODE_STEPS: usize = 10_000;

/// `∂h_t/∂h_{t−1}` of `core` at inputs `x` `[B × in]` from `state`, `[B × H × H]` (row `i`:
/// neuron `i` of `h_t`), with the traces and the LSTM cell held fixed: the Jacobian of the
/// hidden-to-hidden map the state's synapses define at that step. For the tanh RNN it is
/// `diag(tanh′(a_t)) · (W + α ⊙ Hebb)`.
pub fn recurrent_jacobian(core: &Core, x: &Tensor, state: &State) -> Tensor {
    let (b, h) = (state.batch_size(), core.hidden());
    // H copies of each row: output neuron i of copy i, summed over copies, has row i of that
    // row's Jacobian as its gradient, so one backward pass gives the whole matrix.
    let rows = Tensor::arange(b, (Kind::Int64, Device::Cpu)).repeat_interleave_self_int(h, 0, None);
    tch::with_grad(|| {
        let copies = state.rows(&rows).detach();
        let h_prev = copies.h.set_requires_grad(true);
        let copies = State {
            h: h_prev.shallow_clone(),
            ..copies
        };
        let xs = x.detach().index_select(0, &rows.to_device(x.device()));
        let (out, _) = core.step(&xs, &copies);
        let own = Tensor::eye(h, (out.kind(), out.device())).repeat([b, 1]);
        let picked = (out * own).sum(Kind::Double);
        // Gradients for `h_prev` only: the core's variables keep theirs untouched.
        let grads = Tensor::run_backward(&[picked], &[&h_prev], false, false);
        grads[0].view([b, h, h])
    })
}

/// Singular values of a matrix `[m × n]` (or of each of a stack `[… × m × n]`), computed in
/// f64, largest first.
pub fn singular_values(m: &Tensor) -> Tensor {
    // `linalg_svdvals` would need a driver name, which tch cannot leave out and the CPU refuses.
    let (_, s, _) = m.detach().to_kind(Kind::Double).svd(true, false);
    s
}

/// What the singular values of a stack of Jacobians say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JacobianSpectrum {
    /// Mean over the stack of each matrix's largest singular value: above 1, a typical step
    /// stretches some direction (chaos); below 1, it shrinks every one (order).
    pub largest: f64,
    /// Mean over the stack and over all singular values of `log σ` (σ floored at
    /// [`LOG_FLOOR`]): 0 at the edge of chaos, where volumes are kept on average.
    pub mean_log: f64,
}

/// The spectrum of `jacobians` `[T × H × H]`.
pub fn jacobian_spectrum(jacobians: &Tensor) -> JacobianSpectrum {
    let s = singular_values(jacobians);
    JacobianSpectrum {
        largest: s.select(-1, 0).mean(Kind::Double).double_value(&[]),
        mean_log: s
            .clamp_min(LOG_FLOOR)
            .log()
            .mean(Kind::Double)
            .double_value(&[]),
    }
}

/// The Jacobian's spectrum along one episode of `ac` on `env` (seeded with `seed`, actions
/// sampled), over its first [`MAX_JACOBIAN_STEPS`] steps.
pub fn episode_jacobian_spectrum(
    ac: &ActorCritic,
    env: &dyn Environment,
    seed: u64,
) -> Result<JacobianSpectrum, EnvError> {
    let mut policy = AgentPolicy::new(ac, 1, ActionMode::Sample, seed);
    let mut env = env.build(1)?;
    let mut obs = env.reset(seed)?.to_vec();
    let mut action = [0u32];
    let mut jacobians = Vec::new();
    for _ in 0..MAX_JACOBIAN_STEPS {
        let x = obs_tensor(&obs, 1, ac.core.device()).to_kind(ac.core.kind());
        jacobians.push(recurrent_jacobian(&ac.core, &x, policy.state()));
        policy.act(&obs, &mut action);
        let step = env.step(&action)?;
        if step.done(0) {
            break;
        }
        obs.copy_from_slice(step.obs);
    }
    Ok(jacobian_spectrum(&Tensor::cat(&jacobians, 0)))
}

config_option! {
    /// A matrix of an agent whose singular values can be followed over training.
    pub enum Matrix {
        /// The fixed recurrent weights `W` (LSTM: the four gates' `[4H × H]`).
        #[default]
        W = "w",
        /// The plasticity coefficients `α` as a matrix ([`alpha_matrix`]; plastic cores).
        Alpha = "alpha",
        /// The Hebbian trace averaged over episodes' steps ([`episode_mean_hebb`]; plastic
        /// cores).
        Hebb = "hebb",
    }
}

impl Matrix {
    /// Whether `core` has this matrix.
    pub fn exists_in(self, core: &Core) -> bool {
        self == Self::W || core.plasticity().is_some()
    }

    /// The matrix of `ac` (`episodes` episodes seeded with `seed` for the trace); `None` where
    /// the core lacks it.
    pub fn of(
        self,
        ac: &ActorCritic,
        env: &dyn Environment,
        episodes: usize,
        seed: u64,
    ) -> Result<Option<Tensor>, EnvError> {
        match self {
            Self::W => Ok(Some(ac.core.w().shallow_clone())),
            Self::Alpha => Ok(alpha_matrix(&ac.core)),
            Self::Hebb => episode_mean_hebb(ac, env, episodes, seed),
        }
    }
}

/// `α` as the matrix it multiplies the Hebbian trace by: per connection, itself `[H × H]`;
/// per post-synaptic neuron, `diag(α)` (`α ⊙ Hebb = diag(α) · Hebb`); with several
/// timescales, the first's. `None` without plasticity.
pub fn alpha_matrix(core: &Core) -> Option<Tensor> {
    let alpha = core.alpha()?;
    // Several timescales stack one α per trace: the first is the one `hebb` (the first trace)
    // is read with.
    let alpha = match core.config().timescale_count() {
        1 => alpha.shallow_clone(),
        _ => alpha.get(0),
    };
    Some(match core.config().alpha {
        AlphaShape::PerConnection => alpha.shallow_clone(),
        AlphaShape::PerNeuron => alpha.flatten(0, -1).diag(0),
    })
}

/// The Hebbian trace averaged over the steps of `episodes` episodes of `ac` on `env` (seeded
/// with `seed`, one environment each, actions sampled) and then over the episodes, `[H × H]`;
/// `None` for a core without plasticity.
pub fn episode_mean_hebb(
    ac: &ActorCritic,
    env: &dyn Environment,
    episodes: usize,
    seed: u64,
) -> Result<Option<Tensor>, EnvError> {
    let mut policy = AgentPolicy::new(ac, episodes, ActionMode::Sample, seed);
    let Some(first) = policy.state().hebb() else {
        return Ok(None);
    };
    let mut sum = Tensor::zeros_like(first).to_kind(Kind::Double);
    let mut steps = vec![0usize; episodes];
    let mut env = env.build(episodes)?;
    let mut obs = env.reset(seed)?.to_vec();
    let mut actions = vec![0u32; episodes];
    // Rows whose first episode is still under way; auto-reset starts second ones, not counted.
    let mut running = vec![true; episodes];
    for _ in 0..MAX_EPISODE_STEPS {
        policy.act(&obs, &mut actions);
        let mask: Vec<f64> = running.iter().map(|&r| f64::from(u8::from(r))).collect();
        let mask = Tensor::from_slice(&mask).view([episodes as i64, 1, 1]);
        let hebb = policy.state().hebb().expect("a plastic core");
        sum += hebb.to_device(Device::Cpu).to_kind(Kind::Double) * mask;
        let step = env.step(&actions)?;
        for (row, run) in running.iter_mut().enumerate() {
            steps[row] += usize::from(*run);
            *run &= !step.done(row);
        }
        if running.iter().all(|r| !r) {
            break;
        }
        obs.copy_from_slice(step.obs);
    }
    let steps: Vec<f64> = steps.iter().map(|&s| s.max(1) as f64).collect();
    let per_episode = sum / Tensor::from_slice(&steps).view([episodes as i64, 1, 1]);
    Ok(Some(per_episode.mean_dim(0, false, Kind::Double)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cores::{CoreConfig, CoreKind, InitScheme, Modulation};
    use tch::nn;

    fn core(kind: CoreKind, hidden: usize) -> (nn::VarStore, Core) {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = CoreConfig {
            kind,
            hidden,
            modulation: if kind.is_plastic() {
                Modulation::Simple
            } else {
                Modulation::None
            },
            init: InitScheme::Orthogonal,
            gain: 0.7,
            ..CoreConfig::default()
        };
        let core = Core::new(&vs.root(), 3, &config).unwrap();
        (vs, core)
    }

    /// With no input and no state, what reaches the neurons is then 0: tanh's linear regime.
    fn zero_bias(core: &Core) {
        let _ = tch::no_grad(|| core.bias().shallow_clone().zero_());
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
            .abs()
            .max()
            .double_value(&[])
    }

    #[test]
    fn the_jacobian_of_the_linear_regime_is_w() {
        // Zero input, zero bias, zero state: every pre-activation is 0, where tanh′ = 1, and
        // the Hebbian trace is 0 at an episode's start, so J = W exactly.
        for kind in [CoreKind::Rnn, CoreKind::PlasticRnn] {
            tch::manual_seed(5);
            let (_vs, core) = core(kind, 6);
            zero_bias(&core);
            let state = core.initial_state(2);
            let j = recurrent_jacobian(
                &core,
                &Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)),
                &state,
            );
            assert_eq!(j.size(), [2, 6, 6]);
            for row in 0..2 {
                assert!(max_abs_diff(&j.get(row), core.w()) < 1e-6, "{kind:?}");
            }
        }
    }

    #[test]
    fn the_jacobian_with_a_trace_is_the_slope_times_w_plus_alpha_hebb() {
        tch::manual_seed(9);
        let (_vs, core) = core(CoreKind::PlasticRnn, 5);
        let x = Tensor::randn([1, 3], (Kind::Float, Device::Cpu));
        let mut state = core.initial_state(1);
        for _ in 0..4 {
            state = core.step(&x, &state).1;
        }
        let j = recurrent_jacobian(&core, &x, &state).get(0);
        // The same map by hand: diag(tanh′(a)) · (W + α ⊙ Hebb).
        let hebb = state.hebb().unwrap().get(0);
        let a = x.linear(core.w_in(), Some(core.bias()))
            + state
                .h()
                .matmul(&(core.w() + core.alpha().unwrap() * &hebb).tr());
        let slope = a.tanh().square().neg() + 1.0;
        let expected = slope.tr() * (core.w() + core.alpha().unwrap() * &hebb);
        assert!(max_abs_diff(&j, &expected) < 1e-5);
    }

    #[test]
    fn the_spectrum_of_known_matrices() {
        let opts = (Kind::Double, Device::Cpu);
        let diag = Tensor::from_slice(&[3.0, 0.5, 2.0]).diag(0).unsqueeze(0);
        let s = jacobian_spectrum(&diag);
        assert!((s.largest - 3.0).abs() < 1e-12);
        let mean_log = (3f64.ln() + 0.5f64.ln() + 2f64.ln()) / 3.0;
        assert!((s.mean_log - mean_log).abs() < 1e-12);
        // An orthogonal matrix times g has every singular value g.
        tch::manual_seed(1);
        let q = crate::cores::init::orthogonal_blocks(2, 7, 1.3).view([2, 7, 7]);
        let s = jacobian_spectrum(&q);
        assert!((s.largest - 1.3).abs() < 1e-12);
        assert!((s.mean_log - 1.3f64.ln()).abs() < 1e-12);
        // A singular matrix's zero counts as the floor, not −∞.
        let s = jacobian_spectrum(&Tensor::zeros([1, 2, 2], opts));
        assert_eq!(s.mean_log, LOG_FLOOR.ln());
    }

    #[test]
    fn per_neuron_alpha_is_diagonal() {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = CoreConfig {
            hidden: 4,
            alpha: AlphaShape::PerNeuron,
            ..CoreConfig::default()
        };
        let plastic = Core::new(&vs.root(), 2, &config).unwrap();
        let m = alpha_matrix(&plastic).unwrap();
        assert_eq!(m.size(), [4, 4]);
        let hebb = Tensor::randn([4, 4], (Kind::Float, Device::Cpu));
        let row_scaled = plastic.alpha().unwrap().view([4, 1]) * &hebb;
        assert!(max_abs_diff(&m.matmul(&hebb), &row_scaled) < 1e-7);
        let (_vs, plain) = core(CoreKind::Rnn, 3);
        assert!(alpha_matrix(&plain).is_none());
    }

    #[test]
    fn critical_init_puts_every_singular_value_at_one_at_the_origin() {
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let config = CoreConfig {
            hidden: 8,
            init: InitScheme::Critical,
            ..CoreConfig::default()
        };
        let core = Core::new(&vs.root(), 3, &config).unwrap();
        zero_bias(&core);
        let x = Tensor::zeros([1, 3], (Kind::Float, Device::Cpu));
        let s = jacobian_spectrum(&recurrent_jacobian(&core, &x, &core.initial_state(1)));
        assert!(
            (s.largest - 1.0).abs() < 1e-5 && s.mean_log.abs() < 1e-5,
            "{s:?}"
        );
        // The LSTM's forget gate starts biased open by 1 (its other gates as PyTorch's).
        let vs = nn::VarStore::new(Device::Cpu);
        let lstm = Core::new(
            &vs.root(),
            4,
            &CoreConfig {
                kind: CoreKind::Lstm,
                modulation: Modulation::None,
                ..config
            },
        )
        .unwrap();
        let forget = lstm.bias().narrow(0, 8, 8);
        let bound = 0.5; // 1/√fan_in
        assert!(forget.min().double_value(&[]) >= 1.0 - bound);
        assert!(lstm.bias().narrow(0, 0, 8).max().double_value(&[]) <= bound);
    }
}
