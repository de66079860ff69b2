//! Every plasticity rule's formula, in one place: the per-neuron factors of its trace update
//! and their derivatives, as scalar functions for the host loops and as tensor operations for
//! autograd and the libtorch-operations engine, side by side.
//!
//! Every rule has the form `Hebb_t[i,j] = keep_i Hebb_{t−1}[i,j] + s_i h_{t−1}[j]`, clipped
//! at ±c where [`Rule::clipped`] says, with `keep_i` and `s_i` functions of the plasticity
//! rate `r` (η, or the modulator's `M_t`) and the post-synaptic activity `post_i` (`h_t[i]`,
//! or the LSTM's `g_t[i]`). The trace passes only ever see `keep` and `s`, so a new rule is a
//! variant of [`Rule`] (config.rs) and one arm in each function here: nothing else.
//!
//! The scalar and tensor forms of one rule write the same operations in the same order, so
//! every engine gives the same numbers bit for bit where the operations are the same.
use super::config::Rule;
use num_traits::Float;
use tch::Tensor;

/// θ of `bcm`: the post-synaptic activity above which a co-active connection is potentiated
/// and below which (down to 0) it is depressed. Half the tanh range: a power of two, so
/// `post − θ` is exact near θ.
const BCM_THRESHOLD: f64 = 0.5;

impl Rule {
    /// Whether the trace is clipped at ±`clip`: the purely additive `hebb` has nothing else
    /// to bound it; the rules that forget part of the old trace stay bounded by themselves.
    pub fn clipped(self) -> bool {
        match self {
            Self::Hebb | Self::Bcm => true,
            Self::Decay | Self::Oja | Self::Instar => false,
        }
    }

    /// Whether `keep` depends on the parameters (`hebb` keeps the whole trace: `keep` = 1,
    /// with no gradient to carry).
    pub(crate) fn has_keep(self) -> bool {
        match self {
            Self::Hebb | Self::Bcm => false,
            Self::Decay | Self::Oja | Self::Instar => true,
        }
    }

    /// `(keep, s)` of one neuron at rate `rate` and post-synaptic activity `post`.
    #[inline(always)]
    pub(crate) fn factors_at<T: Float>(self, rate: T, post: T) -> (T, T) {
        let one = T::one();
        let keep = match self {
            Self::Hebb | Self::Bcm => one,
            Self::Decay => one - rate,
            Self::Oja => one - post * rate * post,
            Self::Instar => one - post * rate,
        };
        let s = match self {
            Self::Bcm => post * rate * (post - bcm_threshold()),
            Self::Hebb | Self::Decay | Self::Oja | Self::Instar => post * rate,
        };
        (keep, s)
    }

    /// `(dL/dpost, dL/drate)` of one neuron through [`Rule::factors_at`], given `dL/ds` and
    /// `dL/dkeep` (ignored where [`Rule::has_keep`] is false).
    #[inline(always)]
    pub(crate) fn factors_backward_at<T: Float>(self, rate: T, post: T, ds: T, dkeep: T) -> (T, T) {
        let (mut dpost, mut drate) = (ds * rate, ds * post);
        match self {
            // `keep` = 1, a constant.
            Self::Hebb => {}
            // s = r · post · (post − θ): ∂s/∂post = r (post − θ) + r post, ∂s/∂r = post (post − θ).
            Self::Bcm => {
                let gap = post - bcm_threshold();
                dpost = ds * rate * (gap + post);
                drate = ds * post * gap;
            }
            Self::Decay => drate = drate - dkeep,
            Self::Oja => {
                let two = T::one() + T::one();
                dpost = dpost - rate * post * dkeep * two;
                drate = drate - post * post * dkeep;
            }
            Self::Instar => {
                dpost = dpost - rate * dkeep;
                drate = drate - post * dkeep;
            }
        }
        (dpost, drate)
    }

    /// [`Rule::factors_at`] for whole tensors: `rate` is `[1]`, `[H]`, `[B × 1]` or `[B × H]`,
    /// `post` `[B × H]`; `keep` is `None` where [`Rule::has_keep`] is false.
    pub(crate) fn factors(self, rate: &Tensor, post: &Tensor) -> (Option<Tensor>, Tensor) {
        let keep = match self {
            Self::Hebb | Self::Bcm => None,
            Self::Decay => Some(-rate + 1.0),
            Self::Oja => Some(-(post * rate * post) + 1.0),
            Self::Instar => Some(-(post * rate) + 1.0),
        };
        let s = match self {
            Self::Bcm => post * rate * (post - BCM_THRESHOLD),
            Self::Hebb | Self::Decay | Self::Oja | Self::Instar => post * rate,
        };
        (keep, s)
    }

    /// [`Rule::factors_backward_at`] for whole tensors: `(dL/dpost, dL/drate)` given `dL/ds`
    /// and `dL/dkeep` (`None` where the rule keeps the whole trace).
    pub(crate) fn factors_backward(
        self,
        rate: &Tensor,
        post: &Tensor,
        ds: &Tensor,
        dkeep: Option<&Tensor>,
    ) -> (Tensor, Tensor) {
        let mut dpost = ds * rate;
        let mut drate = ds * post;
        if self == Self::Bcm {
            let gap = post - BCM_THRESHOLD;
            dpost = ds * rate * (&gap + post);
            drate = ds * post * gap;
        }
        if let Some(dkeep) = dkeep {
            match self {
                Self::Hebb | Self::Bcm => {}
                Self::Decay => drate -= dkeep,
                Self::Oja => {
                    dpost -= rate * post * dkeep * 2.0;
                    drate -= post.square() * dkeep;
                }
                Self::Instar => {
                    dpost -= rate * dkeep;
                    drate -= post * dkeep;
                }
            }
        }
        (dpost, drate)
    }
}

/// The rule of the eligibility trace under retroactive modulation: it decays towards the
/// co-activity at rate `η_E` (`decay`, unclipped, whatever the configured rule).
pub(crate) const ELIGIBILITY: Rule = Rule::Decay;

/// `(keep, s)` of the eligibility trace at rate `eta_e` ([`ELIGIBILITY`]'s factors).
pub(crate) fn eligibility_factors(eta_e: &Tensor, post: &Tensor) -> (Tensor, Tensor) {
    let (keep, s) = ELIGIBILITY.factors(eta_e, post);
    // `decay` always has a `keep`; 1 would be keeping the whole trace.
    (keep.unwrap_or_else(|| post.ones_like()), s)
}

/// [`BCM_THRESHOLD`] as `T`.
#[inline(always)]
fn bcm_threshold<T: Float>() -> T {
    T::from(BCM_THRESHOLD).unwrap_or_else(T::zero)
}
