//! The neuromodulator `M_t = tanh(w_M · h_t + b_M)` (fanned out per neuron: `M_t[i] = f_i m_t`):
//! its forward and its derivative as tensor operations (autograd, the operations engine) and
//! as loops over one batch row (the host loops), in one place.
use super::config::ModulatorShape;
use super::init;
use super::lanes::dot;
use num_traits::Float;
use tch::{nn, Tensor};

/// `M_t = tanh(w_M · h_t + b_M)`, optionally fanned out per neuron: `M_t[i] = f_i · m_t`.
#[derive(Debug)]
pub struct Modulator {
    /// `w_M`, `[1 × H]`.
    pub w: Tensor,
    /// `b_M`, `[1]`.
    pub b: Tensor,
    /// `f`, `[H]` (fan-out modulator only).
    pub fan_out: Option<Tensor>,
}

impl Modulator {
    pub(crate) fn new(p: &nn::Path, h: i64, shape: ModulatorShape) -> Self {
        Self {
            w: init::var(p, "mod_w", &init::linear_default(&[1, h], h)),
            b: init::var(p, "mod_b", &init::linear_default(&[1], h)),
            // nn.Linear(1, H)'s default, as Backpropamine's fan-out layer.
            fan_out: (shape == ModulatorShape::FanOut)
                .then(|| init::var(p, "fan_out", &init::linear_default(&[h], 1))),
        }
    }

    /// `[B × 1]` (scalar) or `[B × H]` (fan-out).
    pub fn forward(&self, h: &Tensor) -> Tensor {
        self.apply_fan_out(&self.tanh_output(h))
    }

    /// `M_t` from `m_t` ([`Modulator::tanh_output`]): `m_t` itself, or `f · m_t` (fan-out).
    pub(crate) fn apply_fan_out(&self, m: &Tensor) -> Tensor {
        match &self.fan_out {
            Some(f) => m * f,
            None => m.shallow_clone(),
        }
    }

    /// `m_t = tanh(w_M · h_t + b_M)`, `[B × 1]`, before any fan-out.
    pub(crate) fn tanh_output(&self, h: &Tensor) -> Tensor {
        h.linear(&self.w, Some(&self.b)).tanh()
    }

    /// `(m_t, M_t)`: the output before and after the fan-out.
    pub(crate) fn modulate(&self, h: &Tensor) -> (Tensor, Tensor) {
        let m = self.tanh_output(h);
        let big_m = self.apply_fan_out(&m);
        (m, big_m)
    }

    /// `dL/dh` through the modulator, given `dL/dM` (`[B × H]`, or `[B × 1]` without a
    /// fan-out) and `m` of [`Modulator::modulate`].
    pub(crate) fn backward(&self, m: &Tensor, dbig_m: &Tensor) -> Tensor {
        let kind = m.kind();
        let dm = match &self.fan_out {
            Some(f) => (dbig_m * f).sum_dim_intlist(1, true, kind),
            None => dbig_m.sum_dim_intlist(1, true, kind),
        };
        // tanh' = 1 − m²; `[B × 1] · [1 × H]`.
        (dm * (-m.square() + 1.0)).matmul(&self.w)
    }
}

/// [`Modulator`] on the host, for the loops: `w_M`, `b_M` and the fan-out `f` as values.
pub(crate) struct HostModulator<T> {
    pub w: Vec<T>,
    pub b: T,
    pub fan_out: Option<Vec<T>>,
}

impl<T: Float> HostModulator<T> {
    /// `m = tanh(w_M · h + b_M)` (libm's tanh, as libtorch's).
    #[inline(always)]
    pub fn output(&self, h: &[T]) -> T {
        (dot(&self.w, h) + self.b).tanh()
    }

    /// `M_i`.
    #[inline(always)]
    pub fn at(&self, m: T, i: usize) -> T {
        self.fan_out.as_ref().map_or(m, |f| f[i] * m)
    }

    /// `M_t`'s columns: 1, or `H` with a fan-out.
    pub fn columns(&self, hidden: usize) -> usize {
        if self.fan_out.is_some() {
            hidden
        } else {
            1
        }
    }

    /// Adds `dL/dh` through the modulator to `dh`, given `dL/dM_i` (`dbig_m`, `[H]`) and `m`:
    /// `dL/dm = Σ_i dL/dM_i (· f_i)`, tanh' = 1 − m².
    #[inline(always)]
    pub fn backward(&self, m: T, dbig_m: &[T], dh: &mut [T]) {
        let dm = match &self.fan_out {
            Some(f) => dot(dbig_m, f),
            None => dbig_m.iter().fold(T::zero(), |a, &d| a + d),
        };
        let gm = dm * (T::one() - m * m);
        for (d, &w) in dh.iter_mut().zip(&self.w) {
            *d = *d + gm * w;
        }
    }
}
