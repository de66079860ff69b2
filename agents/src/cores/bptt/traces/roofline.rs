//! How fast the CPU trace passes run against what they must do (`plastic bench traces`):
//! each pass timed alone on random f32 traces, with the bytes it must move and the
//! arithmetic it must do per trace cell, so its achieved GB/s can be set next to the
//! machine's memory bandwidth (a STREAM-like copy) on a roofline.
use super::{Backend, Factors, RetroFactors, TraceStep};
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
const MODEL: [(&str, f64, f64); 5] = [
    // Read Hebb_{t−1}, write Hebb_t; k·p + s·x, and the plastic input's α·n·x summed.
    ("forward", 2.0, 6.0),
    // Read Hebb_t, read and write the gradient; g·s summed over i, g·pre over j.
    ("backward update", 3.0, 4.0),
    // Read Hebb_{t−1}, read and write the gradient; r·α·p summed, k·g + r·α·x, α's r·p·x.
    ("backward input", 3.0, 10.0),
    // Read Hebb_{t−1} and E_{t−1}, write Hebb_t and E_t; p + m·e, k·e + s·x, the input.
    ("retroactive forward", 4.0, 8.0),
    // Read Hebb_t, E_{t−1}; read and write both gradients; four sums, k·GE + m·G.
    ("retroactive backward update", 6.0, 11.0),
];

/// Times every pass of `MODEL` at `batch` rows of `hidden` neurons: `repeats` timed runs
/// each (after one untimed), median. Runs on the CPU with libtorch's thread count.
/// What [`measure`] allocates at least: five `[B × H × H]` f32 tensors (the traces before and
/// after, the eligibility trace, two gradients), for the memory check before it.
pub fn memory_need(batch: i64, hidden: i64) -> plastic_envs::memory::MemoryNeed {
    plastic_envs::memory::MemoryNeed {
        what: format!("five traces of --batch {batch} × --hidden {hidden}²"),
        bytes: 5.0 * batch as f64 * (hidden as f64).powi(2) * 4.0,
    }
}

pub fn measure(batch: i64, hidden: i64, repeats: usize) -> Vec<PassRate> {
    let opts = (Kind::Float, Device::Cpu);
    let (b, h) = (batch, hidden);
    let cube = || Tensor::rand([b, h, h], opts) * 0.1;
    let row = || Tensor::rand([b, h], opts);
    let (prev, next, elig) = (cube(), cube(), cube());
    let (pre, post, draw) = (row(), row(), row());
    let alpha = Tensor::rand([h, h], opts);
    let step = TraceStep {
        backend: Backend::Loops,
        prev: &prev,
        pre: &pre,
        alpha: Some(&alpha),
        lo: -1.0,
        hi: 1.0,
    };
    let direct = Factors {
        keep: None,
        s: row(),
    };
    let retro = RetroFactors {
        m: row(),
        keep: row(),
        s: row(),
    };
    let (mut grad, mut grad_elig) = (cube(), cube());
    let mut dpre = row();
    let mut dalpha = Tensor::zeros([Backend::Loops.alpha_groups(b), h, h], opts);
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
        time(&mut || drop(step.forward(&direct, &post))),
        time(&mut || drop(step.backward_update(&direct, &next, &mut grad))),
        time(&mut || {
            let keep_s = (None, &direct.s);
            step.backward_input(keep_s, &draw, &mut grad, &mut dpre, Some(&mut dalpha));
        }),
        time(&mut || drop(step.forward_retroactive(&retro, &elig, &post))),
        time(&mut || {
            drop(step.backward_update_retroactive(&retro, &elig, &next, &mut grad, &mut grad_elig))
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
