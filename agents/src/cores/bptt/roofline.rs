//! How fast the CPU trace passes run against what they must do (`plastic bench traces`):
//! each pass of the host loops (`trace_update/rows.rs`, the kernels training runs) timed alone over a
//! batch of random f32 traces, its rows shared out on the thread team as training shares
//! them, with the bytes it must move and the arithmetic it must do per trace cell, so its
//! achieved GB/s can be set next to the machine's memory bandwidth (a STREAM-like copy) on
//! a roofline.
use super::pool::{self, Share};
use crate::cores::trace_update::rows::{
    alpha_groups, group_rows, Before, RetroRows, RetroUpdate, Rows3, Update,
};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// One pass's model and median time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PassRate {
    pub pass: &'static str,
    /// Bytes the pass must read and write (each trace-sized operand once; the `[B × H]`
    /// vectors and α are left out, under 2% at H ≥ 50).
    pub bytes: f64,
    /// Floating-point operations (a multiply-add counts as two).
    pub flops: f64,
    /// Median seconds of one pass.
    pub seconds: f64,
}

impl PassRate {
    pub fn gb_per_s(&self) -> f64 {
        self.bytes / self.seconds / 1e9
    }

    pub fn gflop_per_s(&self) -> f64 {
        self.flops / self.seconds / 1e9
    }
}

/// Per trace cell: (pass, trace-sized operands read or written, flops), for Backpropamine's
/// passes (clipped `hebb`, simple neuromodulation, α per connection) and retroactive
/// modulation's two of its own.
const MODEL: [(&str, f64, f64); 6] = [
    // Read Hebb_{t−1}, write Hebb_t; k·p + s·x, and the plastic input's α·n·x summed.
    ("forward", 2.0, 6.0),
    // Read Hebb_t, read and write the gradient; g·s summed over i, g·pre over j.
    ("backward update", 3.0, 4.0),
    // Read Hebb_{t−1}, read and write the gradient; r·α·p summed, k·g + r·α·x, α's r·p·x.
    ("backward input", 3.0, 10.0),
    // The two in one sweep (the step before's update): what training runs between resets.
    ("backward input + update", 3.0, 14.0),
    // Read Hebb_{t−1} and E_{t−1}, write Hebb_t and E_t; p + m·e, k·e + s·x, the input.
    ("retroactive forward", 4.0, 8.0),
    // Read Hebb_t, E_{t−1}; read and write both gradients; four sums, k·GE + m·G.
    ("retroactive backward update", 6.0, 11.0),
];

/// What [`measure`] allocates at least: five `[B × H × H]` f32 tensors (the traces before and
/// after, the eligibility trace, two gradients), for the memory check before it.
pub fn memory_need(batch: i64, hidden: i64) -> plastic_envs::memory::MemoryNeed {
    plastic_envs::memory::MemoryNeed {
        what: format!("five traces of --batch {batch} × --hidden {hidden}²"),
        bytes: 5.0 * batch as f64 * (hidden as f64).powi(2) * 4.0,
    }
}

/// `n` random f32 values in [0, `scale`).
fn random(n: usize, scale: f64) -> Vec<f32> {
    let t = Tensor::rand([n as i64], (Kind::Float, Device::Cpu)) * scale;
    let mut v = vec![0.0; n];
    t.copy_data(&mut v, n);
    v
}

/// `f(row, (a, b, …))` for each batch row of `pieces` (each cut in rows of its length), on
/// the thread team as the host loops share a step's rows.
macro_rules! by_rows {
    ($cells:expr, $f:expr; ($first:expr, $n:expr) $(, ($rest:expr, $m:expr))* $(,)?) => {{
        let mut items: Vec<_> = $first.chunks_mut($n) $(.zip($rest.chunks_mut($m)))*.collect();
        pool::for_each($cells, &mut items, Share::Pinned, $f);
    }};
}

/// Times every pass of `MODEL` at `batch` rows of `hidden` neurons: `repeats` timed runs
/// each (after one untimed), median, on the host loops' thread team.
pub fn measure(batch: i64, hidden: i64, repeats: usize) -> Vec<PassRate> {
    let (b, h) = (batch as usize, hidden as usize);
    let (bh, bhh) = (b * h, b * h * h);
    let (prev, next, elig) = (random(bhh, 0.1), random(bhh, 0.1), random(bhh, 0.1));
    let (pre, post, draw) = (random(bh, 1.0), random(bh, 1.0), random(bh, 1.0));
    let (keep, s, m) = (vec![1.0; bh], random(bh, 1.0), random(bh, 1.0));
    let alpha = random(h * h, 1.0);
    let update = Update {
        h,
        posts: h,
        prev: &prev,
        pre: &pre,
        keep: &keep,
        s: &s,
        alpha: &alpha,
        lo: -1.0,
        hi: 1.0,
        ahead: None,
    };
    let retro = RetroUpdate {
        base: Update { keep: &m, ..update },
        elig: &elig,
        m: &m,
    };
    let (mut out, mut out_elig, mut raw) = (vec![0.0; bhh], vec![0.0; bhh], vec![0.0; bh]);
    let (mut grad, mut grad_elig) = (random(bhh, 1.0), random(bhh, 1.0));
    let (mut ds, mut dkeep, mut dm, mut dpre) =
        (vec![0.0; bh], vec![0.0; bh], vec![0.0; bh], vec![0.0; bh]);
    let mut dpre_earlier = vec![0.0; bh];
    let rows = group_rows(b);
    let mut dalpha = vec![0.0; alpha_groups(b) * h * h];
    let time = |pass: &mut dyn FnMut()| {
        pass();
        let mut runs: Vec<f64> = (0..repeats.max(1))
            .map(|_| {
                let start = Instant::now();
                pass();
                start.elapsed().as_secs_f64()
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        runs[runs.len() / 2]
    };
    let seconds = [
        time(&mut || {
            by_rows!(bhh, |r, (next, raw)| update.forward_row(r, &post, next, raw);
                (out, h * h), (raw, h));
        }),
        time(&mut || {
            by_rows!(bhh, |r, (((grad, ds), dkeep), dpre)| {
                let rows = Rows3 { ds, dkeep, dpre };
                update.update_row(r, &next, grad, false, rows)
            }; (grad, h * h), (ds, h), (dkeep, h), (dpre, h));
        }),
        time(&mut || {
            // By groups of rows, each with its partial sum of α's gradient.
            by_rows!(bhh, |k, ((grad, dpre), sum)| {
                update.input_rows(k * rows, &draw, grad, dpre, Some(sum))
            }; (grad, rows * h * h), (dpre, rows * h), (dalpha, h * h));
        }),
        time(&mut || {
            // By groups of rows as above, a row at a time as training runs it.
            by_rows!(bhh, |k, (((((grad, dpre), sum), ds), dkeep), dpre_before)| {
                let pieces = grad.chunks_mut(h * h).zip(dpre.chunks_mut(h)).zip(
                    ds.chunks_mut(h).zip(dkeep.chunks_mut(h)).zip(dpre_before.chunks_mut(h)),
                );
                for (r, ((grad, dpre), ((ds, dkeep), dpre_before))) in pieces.enumerate() {
                    let out = Rows3 { ds, dkeep, dpre: dpre_before };
                    let before = Before::Plain { step: &update, want_dkeep: false, out };
                    update.input_update_row(k * rows + r, before, &draw, grad, dpre, Some(sum));
                }
            }; (grad, rows * h * h), (dpre, rows * h), (dalpha, h * h), (ds, rows * h),
                (dkeep, rows * h), (dpre_earlier, rows * h));
        }),
        time(&mut || {
            by_rows!(bhh, |r, ((next, next_elig), raw)| {
                retro.forward_row(r, &post, next, next_elig, raw)
            }; (out, h * h), (out_elig, h * h), (raw, h));
        }),
        time(&mut || {
            by_rows!(bhh, |r, (((((grad, grad_elig), dm), ds), dkeep), dpre)| {
                let rows = RetroRows { dm, ds, dkeep, dpre };
                retro.update_row(r, &next, grad, grad_elig, rows)
            }; (grad, h * h), (grad_elig, h * h), (dm, h), (ds, h), (dkeep, h), (dpre, h));
        }),
    ];
    let cells = (b * h * h) as f64;
    MODEL
        .iter()
        .zip(seconds)
        .map(|(&(pass, operands, flops), seconds)| PassRate {
            pass,
            bytes: operands * cells * 4.0,
            flops: flops * cells,
            seconds,
        })
        .collect()
}
