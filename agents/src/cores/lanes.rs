//! The loop primitives the host forms of the formulas are written in: sums in fixed lanes,
//! which vectorise and give the same numbers at every vector width.
use num_traits::Float;

/// Partial sums kept apart so the compiler can vectorise reductions (floating-point addition
/// is not associative, so a single accumulator forces a sequential loop).
const LANES: usize = 8;

/// `lo ≤ u ≤ hi` by comparisons, which vectorise (and let NaN through, for the trainer's
/// non-finite check), where `Float::max`/`min` do not.
#[inline(always)]
pub(crate) fn clamp<T: Float>(u: T, lo: T, hi: T) -> T {
    if u < lo {
        lo
    } else if u > hi {
        hi
    } else {
        u
    }
}

/// `Σ_j f(a_j, b_j, c_j)` in [`LANES`] partial sums over fixed-size chunks, which vectorises.
/// Each pass writes its outputs in a plain element-wise loop first and reduces after: one
/// loop doing both does not vectorise.
#[inline(always)]
fn reduce<T: Float>(a: &[T], b: &[T], c: &[T], f: impl Fn(T, T, T) -> T) -> T {
    let n = a.len();
    let full = n - n % LANES;
    let mut acc = [T::zero(); LANES];
    for ((a, b), c) in a[..full]
        .chunks_exact(LANES)
        .zip(b[..full].chunks_exact(LANES))
        .zip(c[..full].chunks_exact(LANES))
    {
        for l in 0..LANES {
            acc[l] = acc[l] + f(a[l], b[l], c[l]);
        }
    }
    let rest = (full..n).fold(T::zero(), |s, j| s + f(a[j], b[j], c[j]));
    acc.into_iter().fold(rest, |s, x| s + x)
}

/// `Σ_j a_j b_j c_j`.
#[inline(always)]
pub(crate) fn dot3<T: Float>(a: &[T], b: &[T], c: &[T]) -> T {
    reduce(a, b, c, |a, b, c| a * b * c)
}

/// `Σ_j a_j b_j`.
#[inline(always)]
pub(crate) fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    reduce(a, b, b, |a, b, _| a * b)
}
