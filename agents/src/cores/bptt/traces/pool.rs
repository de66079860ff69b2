//! The threads the trace loops of [`super::cpu`] and the host step run on: a rayon pool of the
//! size [`crate::threads`] gives it (the run's `run.threads` where steps run on the host, else
//! one: the calling thread). The loops give the same numbers for any pool size.
//!
//! Handing a pass to the pool and waiting for it costs a few microseconds on an idle machine
//! and up to a scheduler time slice on a loaded one, paid once per pass (two or three per step
//! and batch). So a pass smaller than [`GRAIN`] trace cells, or any pass when the pool would
//! have one thread, runs on the calling thread, and a pass shared out gives each task at least
//! [`GRAIN`] cells.
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, Mutex, PoisonError};

/// Trace cells (`[H]`-long rows times their count) worth one hand-off: at the loops' few
/// cells per nanosecond, tens of microseconds of work, well above the hand-off's cost on an
/// idle machine. `plastic bench traces` times the passes on both sides of it.
pub(super) const GRAIN: usize = 1 << 16;

fn threads() -> usize {
    crate::threads::loop_threads()
}

/// Whether a pass over `cells` trace cells goes to the pool (else: the calling thread).
pub(super) fn shared_out(cells: usize) -> bool {
    cells >= GRAIN && threads() > 1
}

/// The fewest items (batch rows or groups of them) a task of a pass shared out takes, when the
/// pass covers `cells` trace cells in `items` items: enough for [`GRAIN`] cells.
pub(super) fn min_items(cells: usize, items: usize) -> usize {
    let per_item = cells.div_ceil(items.max(1)).max(1);
    GRAIN.div_ceil(per_item)
}

/// Runs `work` in the pool of [`crate::threads`]'s size, built on first use and again when
/// that size changes.
pub(super) fn install<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    static POOL: Mutex<Option<(usize, Arc<ThreadPool>)>> = Mutex::new(None);
    let threads = threads();
    let pool = {
        let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
        match &*pool {
            Some((n, p)) if *n == threads => p.clone(),
            _ => {
                let p = ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("plastic-traces-{i}"))
                    .build()
                    .map(Arc::new)
                    .unwrap_or_else(|e| panic!("cannot start {threads} trace threads: {e}"));
                *pool = Some((threads, p.clone()));
                p
            }
        }
    };
    pool.install(work)
}

/// Calls `f(k, &mut items[k])` for every item: shared out in the pool when the work covers
/// enough trace cells (`cells`, [`shared_out`]), else on the calling thread. Items are
/// independent, so either way gives the same numbers.
pub(in crate::cores::bptt) fn for_each<R: Send>(
    cells: usize,
    items: &mut [R],
    f: impl Fn(usize, &mut R) + Send + Sync,
) {
    use rayon::prelude::*;
    if shared_out(cells) {
        let min = min_items(cells, items.len());
        install(|| {
            items
                .par_iter_mut()
                .enumerate()
                .with_min_len(min)
                .for_each(|(k, item)| f(k, item))
        })
    } else {
        items
            .iter_mut()
            .enumerate()
            .for_each(|(k, item)| f(k, item))
    }
}
