//! Forward + backward timing of one whole-episode batch, as in Backpropamine's maze training
//! (B = 30 episodes of T = 200 steps, H = 100, simple neuromodulation, 4 actions).
//! A measurement, not a test: callers (criterion, the CLI's `bench`) decide what to do with it.
//! [`gradient_errors`] measures, on the same batch, how far an engine's gradients are from
//! autograd's (`plastic bench gradients`, which `scripts/gpu_checks.py` runs on CUDA).
use crate::actor_critic::ActorCritic;
use crate::cores::{Bptt, BpttError, CoreConfig, CoreConfigError, Engine, Tape, TraceCheckpoints};
use crate::parameters::{named_gradients, zero_gradients};
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    pub batch: i64,
    pub steps: i64,
    pub input_dim: i64,
    pub num_actions: i64,
    pub core: CoreConfig,
    pub bptt: Bptt,
    /// Which steps' traces the hand-written pass keeps (`a2c.trace_checkpoint_every`).
    pub trace_checkpoint_every: TraceCheckpoints,
    pub device: Device,
    /// The parameters' and inputs' element type: f32 (as in training) or f64.
    pub kind: Kind,
    /// Untimed runs first (allocator and cache warm-up).
    pub warmup: usize,
    /// Timed runs; the report gives their median.
    pub repeats: usize,
    /// CPU threads ([`crate::threads`]; `None`: libtorch's default count).
    pub threads: Option<i32>,
    /// Call [`crate::device::keep_freed_memory`] first, as a training process should.
    pub keep_freed_memory: bool,
    pub seed: u64,
}

impl Default for BenchSpec {
    fn default() -> Self {
        Self {
            batch: 30,
            steps: 200,
            input_dim: 16,
            num_actions: 4,
            core: CoreConfig::backpropamine(100),
            bptt: Bptt::Auto,
            trace_checkpoint_every: TraceCheckpoints::Auto,
            device: Device::Cpu,
            kind: Kind::Float,
            warmup: 1,
            repeats: 5,
            threads: None,
            keep_freed_memory: true,
            seed: 0,
        }
    }
}

/// Result of [`forward_backward`].
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Median wall time of one forward + backward pass over the batch, in seconds.
    pub seconds_per_batch: f64,
    /// Every timed run, in seconds.
    pub runs: Vec<f64>,
    /// Median time of the forward pass alone (part of `seconds_per_batch`).
    pub forward_seconds: f64,
    /// `B · T / seconds_per_batch`.
    pub env_steps_per_sec: f64,
    /// CPU: growth of the resident set during the forward pass of a first, untimed run that
    /// starts with free memory handed back to the kernel: ≈ the tensors saved for backward.
    pub forward_rss_growth_bytes: Option<u64>,
    /// CPU: peak resident set during that run's forward + backward, above the level before it.
    pub peak_rss_growth_bytes: Option<u64>,
    /// CPU threads the run had ([`crate::threads`]).
    pub threads: i32,
    /// Who did the backward pass.
    pub engine: Engine,
    /// Every how many steps it kept the traces.
    pub trace_checkpoint_every: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Core(#[from] CoreConfigError),
    #[error(transparent)]
    Bptt(#[from] BpttError),
}

/// The process's peak resident memory so far (`VmHWM`), in bytes; `None` where the kernel
/// does not say.
pub fn peak_resident_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|kib| kib * 1024)
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the kernel's peak-RSS mark (`VmHWM`) so the next peak is this run's.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A prepared benchmark: network, inputs and loss weights built once, so each run times
/// only the forward and backward pass.
pub struct Bench {
    spec: BenchSpec,
    vs: nn::VarStore,
    ac: ActorCritic,
    engine: Engine,
    xs: Tensor,
    w_logits: Tensor,
    w_values: Tensor,
}

/// What a benchmark of `spec` allocates at least: the episode's inputs and loss weights, the
/// recurrent state, and per step and row the activations the backward pass keeps; for the
/// memory check before [`forward_backward`].
pub fn memory_needs(spec: &BenchSpec) -> Vec<plastic_envs::memory::MemoryNeed> {
    let (b, t) = (spec.batch as f64, spec.steps as f64);
    let (h, cells) = (
        spec.core.hidden as f64,
        if spec.core.kind.is_lstm() { 2.0 } else { 1.0 },
    );
    let per_step = (spec.input_dim + spec.num_actions + 1) as f64 + 4.0 * cells * h;
    vec![
        plastic_envs::memory::MemoryNeed {
            what: format!(
                "inputs and activations (--batch {} × --steps {} × hidden {})",
                spec.batch, spec.steps, spec.core.hidden
            ),
            bytes: b * t * per_step * 4.0,
        },
        plastic_envs::memory::MemoryNeed {
            what: format!(
                "recurrent state and traces (--batch {} × hidden {}²)",
                spec.batch, spec.core.hidden
            ),
            bytes: b * spec.core.state_bytes_per_row(spec.input_dim as usize),
        },
    ]
}

impl Bench {
    pub fn new(spec: &BenchSpec) -> Result<Self, BenchError> {
        if spec.keep_freed_memory {
            crate::device::keep_freed_memory();
        }
        tch::manual_seed(spec.seed as i64);
        let mut vs = nn::VarStore::new(spec.device);
        // Variables are created in the store's kind.
        vs.set_kind(spec.kind);
        let ac = ActorCritic::new(&vs.root(), spec.input_dim, spec.num_actions, &spec.core)?;
        let engine = spec.bptt.engine(&ac.core)?;
        let threads = spec.threads.map_or(0, |n| n as usize);
        crate::threads::assign(threads, crate::cores::steps_on_host(&ac.core, engine));
        let opts = (spec.kind, spec.device);
        let (b, t) = (spec.batch, spec.steps);
        Ok(Self {
            engine,
            xs: Tensor::rand([t, b, spec.input_dim], opts),
            w_logits: Tensor::randn([t, b, spec.num_actions], opts),
            w_values: Tensor::randn([t, b], opts),
            spec: spec.clone(),
            vs,
            ac,
        })
    }

    fn sync(&self) {
        if let Device::Cuda(i) = self.spec.device {
            tch::Cuda::synchronize(i as i64);
        }
    }

    /// The whole episode through the core, as the trainer unrolls it with `engine`, and the
    /// loss `Σ logits ⊙ w + Σ values ⊙ w` on the stacked outputs (a leaf): returns the tape,
    /// the leaf and the loss.
    fn forward(&self, engine: Engine) -> (Tape<'_>, Tensor, Tensor) {
        let mut tape = Tape::new(
            &self.ac.core,
            &self.ac.initial_state(self.spec.batch),
            engine,
            self.spec.trace_checkpoint_every,
        );
        let no_start = vec![false; self.spec.batch as usize];
        let outputs: Vec<Tensor> = self
            .xs
            .unbind(0)
            .iter()
            .map(|x| tape.step(x, &no_start))
            .collect();
        let hs = Tensor::stack(&outputs, 0).set_requires_grad(true);
        let kind = self.spec.kind;
        let loss = (self.ac.policy.forward(&hs) * &self.w_logits).sum(kind)
            + (self.ac.value.forward(&hs).squeeze_dim(2) * &self.w_values).sum(kind);
        (tape, hs, loss)
    }

    fn backward(tape: Tape<'_>, hs: &Tensor, loss: &Tensor) {
        loss.backward();
        tape.backward(&hs.grad());
    }

    /// One forward + backward pass: returns (total seconds, forward seconds).
    pub fn run_once(&self) -> (f64, f64) {
        zero_gradients(&self.vs);
        self.sync();
        let start = Instant::now();
        let (tape, hs, loss) = self.forward(self.engine);
        self.sync();
        let forward = start.elapsed().as_secs_f64();
        Self::backward(tape, &hs, &loss);
        self.sync();
        (start.elapsed().as_secs_f64(), forward)
    }

    /// CPU resident-set growth over one pass (forward only, and peak over forward +
    /// backward), starting from a heap whose free pages were handed back to the kernel.
    pub fn memory(&self) -> (Option<u64>, Option<u64>) {
        if self.spec.device != Device::Cpu || !crate::device::release_free_memory() {
            return (None, None);
        }
        zero_gradients(&self.vs);
        // Traces dropped and rebuilt within the pass (`trace_checkpoint_every`) would stay
        // resident on the heap: measured from their own mappings, resident memory is what
        // the pass holds.
        let mapped = crate::device::map_large_blocks(Some(1 << 20));
        let before = proc_status_kib("VmRSS:");
        let peak_ok = reset_peak_rss();
        let (tape, hs, loss) = self.forward(self.engine);
        let after_fwd = proc_status_kib("VmRSS:");
        Self::backward(tape, &hs, &loss);
        let peak = proc_status_kib("VmHWM:").filter(|_| peak_ok);
        if mapped && self.spec.keep_freed_memory {
            crate::device::map_large_blocks(None);
        }
        let growth = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) * 1024);
        (growth(before, after_fwd), growth(before, peak))
    }

    /// Every parameter's gradient, by name, after one forward + backward pass with `engine`.
    fn gradients(&self, engine: Engine) -> Vec<(String, Tensor)> {
        zero_gradients(&self.vs);
        let (tape, hs, loss) = self.forward(engine);
        Self::backward(tape, &hs, &loss);
        named_gradients(&self.vs)
    }
}

/// How far one parameter's gradient is from autograd's.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GradientError {
    pub parameter: String,
    /// The largest `|engine − autograd|` over its entries, relative to autograd's largest
    /// `|entry|` (absolute where that is 0), as `agents/tests/fused.rs` measures it.
    pub relative_error: f64,
}

/// The engine `spec.bptt` picks and, on the same weights and batch (one forward + backward
/// pass of [`Bench`]), each parameter's [`GradientError`] against autograd: how the engines
/// that never run on the CPU by default are checked on a GPU (`plastic bench gradients`).
pub fn gradient_errors(spec: &BenchSpec) -> Result<(Engine, Vec<GradientError>), BenchError> {
    let bench = Bench::new(spec)?;
    let reference = bench.gradients(Engine::Autograd);
    let checked = bench.gradients(bench.engine);
    let errors = reference
        .into_iter()
        .zip(checked)
        .map(|((parameter, a), (_, b))| {
            let scale = a.abs().max().double_value(&[]);
            let diff = (&a - &b).abs().max().double_value(&[]);
            let relative_error = if scale > 0.0 { diff / scale } else { diff };
            GradientError {
                parameter,
                relative_error,
            }
        })
        .collect();
    Ok((bench.engine, errors))
}

/// The median of timed runs (the upper one of an even count; NaN for none).
pub fn median(runs: &[f64]) -> f64 {
    let mut v = runs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Times forward + backward of one whole-episode batch through an actor-critic: a memory
/// run, `warmup` untimed runs, then the median of `repeats` timed runs.
pub fn forward_backward(spec: &BenchSpec) -> Result<BenchReport, BenchError> {
    let bench = Bench::new(spec)?;
    let (fwd_growth, peak_growth) = bench.memory();
    for _ in 0..spec.warmup {
        bench.run_once();
    }
    let (runs, forwards): (Vec<f64>, Vec<f64>) =
        (0..spec.repeats).map(|_| bench.run_once()).unzip();
    let seconds = median(&runs);
    Ok(BenchReport {
        seconds_per_batch: seconds,
        env_steps_per_sec: (spec.batch * spec.steps) as f64 / seconds,
        forward_seconds: median(&forwards),
        runs,
        forward_rss_growth_bytes: fwd_growth,
        peak_rss_growth_bytes: peak_growth,
        threads: crate::threads::count() as i32,
        engine: bench.engine,
        trace_checkpoint_every: spec
            .trace_checkpoint_every
            .every(&bench.ac.core, bench.engine),
    })
}
