//! Parameter initialisations. Random numbers are drawn on the CPU in f64 from libtorch's
//! seeded generator and then moved to the var store's device and kind, so one seed gives the
//! same network on every device and precision.
use tch::{nn, Device, Kind, Tensor};

const DRAW: (Kind, Device) = (Kind::Double, Device::Cpu);

/// `U[lo, hi)`.
pub fn uniform(dims: &[i64], lo: f64, hi: f64) -> Tensor {
    Tensor::empty(dims, DRAW).uniform_(lo, hi)
}

/// Zeros, as a drawn value is made: for a variable [`var`] registers.
pub fn zeros(dims: &[i64]) -> Tensor {
    Tensor::zeros(dims, DRAW)
}

/// PyTorch's `nn.Linear` default for weight and bias: `U(±1/√fan_in)`.
pub fn linear_default(dims: &[i64], fan_in: i64) -> Tensor {
    let bound = 1.0 / (fan_in as f64).sqrt();
    uniform(dims, -bound, bound)
}

/// Backpropamine's `0.01 · U[0, 1)` for `W` and `α`.
pub fn backpropamine(dims: &[i64]) -> Tensor {
    uniform(dims, 0.0, 0.01)
}

/// A `rows × cols` matrix with orthonormal rows (or columns, whichever are fewer) times
/// `gain`, as PyTorch's `nn.init.orthogonal_`: QR of a Gaussian matrix with the signs of `R`'s
/// diagonal folded into `Q`, so `Q` is uniformly (Haar) distributed.
pub fn orthogonal(rows: i64, cols: i64, gain: f64) -> Tensor {
    let a = Tensor::randn([rows.max(cols), rows.min(cols)], DRAW);
    let (q, r) = Tensor::linalg_qr(&a, "reduced");
    let sign = r.diag(0).sign();
    // A zero diagonal entry has probability zero, but would zero a column.
    let sign = sign.where_self(&sign.ne(0.0), &Tensor::ones_like(&sign));
    let q = q * sign.unsqueeze(0) * gain;
    match rows < cols {
        true => q.tr().contiguous(),
        false => q,
    }
}

/// `blocks` stacked `n × n` orthogonal matrices times `gain` ([`orthogonal`] each).
pub fn orthogonal_blocks(blocks: i64, n: i64, gain: f64) -> Tensor {
    let qs: Vec<Tensor> = (0..blocks).map(|_| orthogonal(n, n, gain)).collect();
    Tensor::cat(&qs, 0)
}

/// The LSTM bias `b` `[4·H]` (gates i, f, g, o) with 1 added to the forget gate's block:
/// `f = σ(1 + …) ≈ 0.73` at the start, so the cell carries its memory across many steps
/// instead of halving it at each (Gers et al. 2000; Jozefowicz et al. 2015).
pub fn with_forget_bias(b: &Tensor, h: i64) -> Tensor {
    let b = b.copy();
    let _ = b.narrow(0, h, h).g_add_scalar_(1.0);
    b
}

/// Registers `value` as a trainable variable of `p`, on its device and in its kind.
pub fn var(p: &nn::Path, name: &str, value: &Tensor) -> Tensor {
    let v = p.zeros(name, &value.size());
    tch::no_grad(|| v.shallow_clone().copy_(value));
    v
}

/// Registers `value` as a variable of `p` that no gradient reaches: saved and restored with the
/// others, left out of the optimiser (which takes the variables that require a gradient).
pub fn frozen(p: &nn::Path, name: &str, value: &Tensor) -> Tensor {
    p.add(name, value.to_kind(p.kind()).to_device(p.device()), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_blocks_are_orthogonal_times_gain() {
        tch::manual_seed(3);
        let w = orthogonal_blocks(3, 6, 0.5);
        assert_eq!(w.size(), [18, 6]);
        for b in 0..3 {
            let q = w.narrow(0, 6 * b, 6);
            let err = (q.matmul(&q.tr()) - Tensor::eye(6, DRAW) * 0.25)
                .abs()
                .max();
            assert!(err.double_value(&[]) < 1e-12);
        }
        // Blocks are independent draws, not copies.
        assert!(
            w.narrow(0, 0, 6)
                .ne_tensor(&w.narrow(0, 6, 6))
                .any()
                .int64_value(&[])
                == 1
        );
    }

    #[test]
    fn wide_and_tall_orthogonal_matrices_have_orthonormal_rows_or_columns() {
        tch::manual_seed(5);
        for (rows, cols) in [(4, 9), (9, 4)] {
            let w = orthogonal(rows, cols, 2.0_f64.sqrt());
            assert_eq!(w.size(), [rows, cols]);
            let gram = match rows < cols {
                true => w.matmul(&w.tr()),
                false => w.tr().matmul(&w),
            };
            let err = (gram - Tensor::eye(rows.min(cols), DRAW) * 2.0).abs().max();
            assert!(err.double_value(&[]) < 1e-12);
        }
    }

    #[test]
    fn backpropamine_and_linear_ranges() {
        let a = backpropamine(&[50, 50]);
        assert!(a.min().double_value(&[]) >= 0.0 && a.max().double_value(&[]) < 0.01);
        let l = linear_default(&[40, 16], 16);
        assert!(l.abs().max().double_value(&[]) <= 0.25);
        assert!(l.min().double_value(&[]) < 0.0);
    }
}
