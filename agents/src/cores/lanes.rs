//! The loop primitives the host forms of the formulas are written in: sums in fixed lanes,
//! which vectorise and give the same numbers at every vector width, and the cells' scalar
//! activations.
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

/// The gradient `g` of a clipped value `n` where it passed the clip (`lo < n < hi`, hardtanh's
/// rule), else zero. A select, which vectorises where a branch does not; and `g + 0` (not
/// foldable to `g`: it turns −0 into +0) keeps LLVM from turning `*g = passed(*g, ..)` into a
/// masked store of the zeros alone, which AMD's CPUs run many times slower than a full store.
#[inline(always)]
pub(crate) fn passed<T: Float>(g: T, n: T, lo: T, hi: T) -> T {
    let inside = (n > lo) & (n < hi);
    if inside {
        g + T::zero()
    } else {
        T::zero()
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

/// `tanh x = 1 − 2 / (e^{2x} + 1)`: within a rounding error of 1 (absolute) of libm's
/// `tanh`, at a fraction of its cost (`exp` is the cheaper call; the cell takes `B·H` of them
/// per step), and ±1 or NaN where `x` is infinite or NaN.
#[inline(always)]
pub(crate) fn tanh<T: Float>(x: T) -> T {
    let one = T::one();
    one - (one + one) / ((x + x).exp() + one)
}

/// `σ(x) = 1 / (1 + e^{−x})`.
#[inline(always)]
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}
