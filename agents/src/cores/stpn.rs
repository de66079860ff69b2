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
const NORM_EPS: f64 = 1e-16;

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
    pub(super) fn new(p: &nn::Path, hidden: i64, input_dim: i64, shape: StpShape) -> Self {
        let dims = match shape {
            StpShape::PerSynapse => vec![hidden, input_dim + hidden],
            StpShape::Scalar => vec![1],
        };
        let gamma = 0.001 * weight_bound(hidden);
        Self {
            lambda: init::var(p, "stp_lambda", &init::uniform(&dims, 0.0, 1.0)),
            gamma: init::var(p, "stp_gamma", &init::uniform(&dims, -gamma, gamma)),
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
        let hebb = h.unsqueeze(2) * z.unsqueeze(1);
        let f = (fast * &self.lambda + &self.gamma * hebb).clamp(-clip, clip);
        &f / row_norms(&(w + &f))
    }
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
