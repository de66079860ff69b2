//! The STPN cell (short-term plasticity neurons; Rodriguez, Guo & Moraitis, ICML 2022), as the
//! authors' `STPNr` layer runs under their maze config `Maze/config/STPN_Maze_h55.json`:
//!
//! - `z_t = [x_t, h_{t−1}]`, `G_t = [W_in | W] + F_{t−1}`, `N_t[i] = ‖G_t[i, :]‖₂ + ε`,
//!   `h_t = tanh((G_t / N_t) z_t + b)` (their `weight_norm`);
//! - `F_t = clamp(λ ⊙ F_{t−1} + γ ⊙ (h_t ⊗ z_t), −c, c)`, then `F_t ← F_t / (‖[W_in | W] +
//!   F_t‖₂ per row + ε)` (their `plastic_weight_norm` with `norm = "G"`, `time = "post"`).
//!
//! ε = 1e-16 as theirs. The fast weights `F` `[B × H × (in + H)]` are per-episode state.
use super::config::StpShape;
use super::init;
use tch::{nn, Tensor};

/// What the authors' code adds to each row norm before dividing by it.
pub(crate) const NORM_EPS: f64 = 1e-16;

/// The least row norm a gradient divides by: the smallest positive f32, so that `g / norm`
/// is 0 (libtorch's gradient of a zero norm) where the row `g` is all zeros, in f32 and f64.
pub(crate) const NORM_FLOOR: f64 = f32::MIN_POSITIVE as f64;

/// STPN's learned decay λ and gain γ: `[H × (in + H)]` per synapse, or `[1]` (scalar STP).
#[derive(Debug)]
pub struct ShortTermPlasticity {
    pub(crate) lambda: Tensor,
    pub(crate) gamma: Tensor,
}

/// Their bound `1/√H` (`k_for_weight_init`) for every fixed weight and bias of the cell.
pub(super) fn weight_bound(hidden: i64) -> f64 {
    1.0 / (hidden as f64).sqrt()
}

/// A fixed weight or bias of the cell, `U(±1/√H)` as the authors draw all of them.
pub(super) fn fixed_init(dims: &[i64], hidden: i64) -> Tensor {
    let bound = weight_bound(hidden);
    init::uniform(dims, -bound, bound)
}

impl ShortTermPlasticity {
    /// λ `~ U[0, 1)` and γ `~ U(±0.001/√H)`: their maze config's `weight_lambda` (mean 0.5,
    /// spread 0.5) and `weight_gamma` (mean 0, spread 0.001, `hidden_weighting = "both"`).
    /// Unless `learned` (`core.stp_learned`), they keep those draws: no gradient reaches them.
    pub(super) fn new(
        p: &nn::Path,
        hidden: i64,
        input_dim: i64,
        shape: StpShape,
        learned: bool,
    ) -> Self {
        let dims = match shape {
            StpShape::PerSynapse => vec![hidden, input_dim + hidden],
            StpShape::Scalar => vec![1],
        };
        let gamma = 0.001 * weight_bound(hidden);
        let register = if learned { init::var } else { init::frozen };
        Self {
            lambda: register(p, "stp_lambda", &init::uniform(&dims, 0.0, 1.0)),
            gamma: register(p, "stp_gamma", &init::uniform(&dims, -gamma, gamma)),
        }
    }

    /// Learned decay λ.
    pub fn lambda(&self) -> &Tensor {
        &self.lambda
    }

    /// Learned gain γ.
    pub fn gamma(&self) -> &Tensor {
        &self.gamma
    }

    /// `F_t` from `F_{t−1}` (`fast`), the post-synaptic `h_t` `[B × H]` and the pre-synaptic
    /// `z_t = [x_t, h_{t−1}]` `[B × (in + H)]`; `w` is `[W_in | W]`.
    pub(super) fn update(
        &self,
        w: &Tensor,
        clip: f64,
        fast: &Tensor,
        h: &Tensor,
        z: &Tensor,
    ) -> Tensor {
        let (_, _, f) = self.clamped(clip, fast, h, z);
        &f / row_norms(&(w + &f))
    }

    /// The update before its normalisation: the co-activity `h_t ⊗ z_t`, `U = λ ⊙ F_{t−1} + γ ⊙
    /// (h_t ⊗ z_t)` and `clamp(U, −c, c)`.
    fn clamped(
        &self,
        clip: f64,
        fast: &Tensor,
        h: &Tensor,
        z: &Tensor,
    ) -> (Tensor, Tensor, Tensor) {
        let hebb = h.unsqueeze(2) * z.unsqueeze(1);
        let u = fast * &self.lambda + &self.gamma * &hebb;
        let c = u.clamp(-clip, clip);
        (hebb, u, c)
    }

    /// Backward through [`ShortTermPlasticity::update`] (derived in `docs/backward-pass.md`):
    /// given `dfast` = `dL/dF_t` and the update's inputs, the gradients of `F_{t−1}`, `h_t`,
    /// `z_t`, `w` (summed over the batch), λ and γ (summed over the batch, in their shapes).
    /// Recomputes the update's intermediates from its inputs rather than keeping them:
    /// `[B × H × (in + H)]` each.
    pub(super) fn update_backward(
        &self,
        w: &Tensor,
        clip: f64,
        (fast, h, z): (&Tensor, &Tensor, &Tensor),
        dfast: &Tensor,
    ) -> UpdateGrads {
        let (hebb, u, c) = self.clamped(clip, fast, h, z);
        let g = w + &c;
        let norm = g.norm_scalaropt_dim(2.0, [2i64].as_slice(), true);
        let big_n = &norm + NORM_EPS;
        // F_t = C / N with N = ‖w + C‖ + ε per row: dC = dF / N − k (w + C) with
        // k = Σ_j dF_ij F_t,ij / (N ‖w + C‖); the second term reaches w too.
        let k =
            (dfast * (&c / &big_n)).sum_dim_intlist(2, true, c.kind()) / (&big_n * nonzero(&norm));
        let through_norm = -(k * &g);
        let dc = dfast / &big_n + &through_norm;
        // The clamp passes the gradient where −c ≤ u ≤ c (bounds included, as libtorch's).
        let du = dc * u.abs().le(clip).to_kind(c.kind());
        let dhebb = &du * &self.gamma;
        let batch_sum = |t: Tensor, like: &Tensor| {
            t.sum_dim_intlist(0, false, t.kind())
                .sum_to_size(like.size())
        };
        UpdateGrads {
            dfast: &du * &self.lambda,
            dh: (&dhebb * z.unsqueeze(1)).sum_dim_intlist(2, false, c.kind()),
            dz: (&dhebb * h.unsqueeze(2)).sum_dim_intlist(1, false, c.kind()),
            dw: through_norm.sum_dim_intlist(0, false, c.kind()),
            dlambda: batch_sum(&du * fast, &self.lambda),
            dgamma: batch_sum(du * hebb, &self.gamma),
        }
    }
}

/// The gradients [`ShortTermPlasticity::update_backward`] gives.
pub(super) struct UpdateGrads {
    /// `dL/dF_{t−1}` through the decay λ.
    pub dfast: Tensor,
    /// `dL/dh_t` `[B × H]` and `dL/dz_t` `[B × (in + H)]` through the Hebbian term.
    pub dh: Tensor,
    pub dz: Tensor,
    /// `dL/dw` through the normalisation, summed over the batch, `[H × (in + H)]`.
    pub dw: Tensor,
    /// λ's and γ's gradients, summed over the batch, in their own shapes.
    pub dlambda: Tensor,
    pub dgamma: Tensor,
}

/// The gradients [`backward`] gives.
pub(super) struct CellGrads {
    /// `dL/dG` `[B × H × (in + H)]`: `dL/dF_{t−1}` and, summed over the batch, `dL/dw`.
    pub dg: Tensor,
    /// `dL/dz_t` `[B × (in + H)]`.
    pub dz: Tensor,
    /// `dL/db` per batch row, `[B × H]` (the pre-activation's gradient).
    pub da: Tensor,
}

/// Backward through [`forward`] (derived in `docs/backward-pass.md`), given `h` = `h_t`,
/// `dh` = `dL/dh_t` through the state and the loss, and `dpost` = `dL/dh_t` through the fast
/// weights' update ([`UpdateGrads::dh`]).
pub(super) fn backward(
    (w, fast, z): (&Tensor, &Tensor, &Tensor),
    h: &Tensor,
    dh: &Tensor,
    dpost: &Tensor,
) -> CellGrads {
    let g = w + fast;
    let norm = g.norm_scalaropt_dim(2.0, [2i64].as_slice(), true);
    let big_n = &norm + NORM_EPS;
    let y = g.matmul(&z.unsqueeze(2));
    let da = super::rnn::backward(h, dh, dpost);
    // a = y / N + b: dy = da / N, dN = −da y / N², and N's gradient reaches G along G / ‖G‖.
    let da3 = da.unsqueeze(2);
    let dy = &da3 / &big_n;
    let dnorm = -(&da3 * y) / big_n.square();
    let dg = &dy * z.unsqueeze(1) + dnorm * (&g / nonzero(&norm));
    CellGrads {
        dz: g.transpose(1, 2).matmul(&dy).squeeze_dim(2),
        dg,
        da,
    }
}

/// `norm` raised to at least [`NORM_FLOOR`].
fn nonzero(norm: &Tensor) -> Tensor {
    norm.clamp_min(NORM_FLOOR)
}

/// The cell's output `h_t = tanh((G / N) z_t + b)`, `G = w + F_{t−1}` (`fast`), `N` its row
/// norms: `w` is `[W_in | W]`, `z` is `z_t = [x_t, h_{t−1}]`. `(G z) / N` is the same sum
/// (to rounding) without a normalised copy of `G` for autograd to keep each step.
pub(super) fn forward(w: &Tensor, b: &Tensor, fast: &Tensor, z: &Tensor) -> Tensor {
    let g = w + fast;
    let gz = g.matmul(&z.unsqueeze(2));
    ((gz / row_norms(&g)).squeeze_dim(2) + b).tanh()
}

/// `‖g[b, i, :]‖₂ + ε`, `[B × H × 1]`.
fn row_norms(g: &Tensor) -> Tensor {
    g.norm_scalaropt_dim(2.0, [2i64].as_slice(), true) + NORM_EPS
}
