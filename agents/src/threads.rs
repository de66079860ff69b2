//! A run's CPU threads (`run.threads`), given either to the team the host loops run on (the
//! trace loops and the plastic cores' host step, `cores::bptt`) or to libtorch's intra-op
//! pool, never to both at once. Two pools on the same cores fight: libtorch's OpenMP threads spin for
//! a while after each operation, on the cores the loops' threads are waiting for. Measured in
//! Backpropamine's setting on 2 cores: the plastic LSTM, when its steps still called
//! libtorch, ran at 0.75× its single-pool speed with both; STPN's setting (B 512, H 73),
//! whose steps run on the host, at 0.7×.
//!
//! So where a step runs on the host ([`crate::cores::steps_on_host`]) the loops get the
//! threads and libtorch one (its work is then a few operations per update); elsewhere
//! libtorch gets them and the loops run on the calling thread. libtorch's threads for the
//! parameter gradients at the end of the backward pass alone did not pay either: its OpenMP
//! helper then spun on into the next rollout, on the core the loops' helper works on
//! (forward steps 19 ms an update against 13 ms without). The loops give the same numbers
//! for any thread count; libtorch's sums depend on its count, which this split fixes from the
//! run's count and the engine, so a run resumed with the same count goes on exactly.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The run's threads, as last assigned (0: not yet).
static RUN: AtomicUsize = AtomicUsize::new(0);
/// The host loops' thread count (0: not assigned, the calling thread).
static LOOPS: AtomicUsize = AtomicUsize::new(0);

/// libtorch's own choice of thread count (the machine's cores), read before any change.
pub fn default_count() -> usize {
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    *DEFAULT.get_or_init(|| tch::get_num_threads().max(1) as usize)
}

/// Gives a run `threads` threads (0: [`default_count`]): to the host loops if `host_steps`,
/// else to libtorch.
pub fn assign(threads: usize, host_steps: bool) {
    // Read before the first change, so that libtorch's own choice is what 0 means later too.
    let default = default_count();
    let n = match threads {
        0 => default,
        n => n,
    };
    RUN.store(n, Ordering::Relaxed);
    LOOPS.store(if host_steps { n } else { 1 }, Ordering::Relaxed);
    tch::set_num_threads(if host_steps { 1 } else { n as i32 });
}

/// The run's threads, as last assigned (else libtorch's count): what a checkpoint records.
pub fn count() -> usize {
    match RUN.load(Ordering::Relaxed) {
        0 => tch::get_num_threads().max(1) as usize,
        n => n,
    }
}

/// The host loops' thread count: the team the plastic cores' steps and trace passes share.
pub fn loop_threads() -> usize {
    LOOPS.load(Ordering::Relaxed).max(1)
}
