//! The threads the trace loops of [`super::cpu`] run on: a rayon pool as large as libtorch's
//! intra-op thread count (`run.threads`, `plastic bench core --threads`), so one setting says
//! how many cores a run uses. The loops give the same numbers for any pool size.
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, Mutex, PoisonError};

/// Runs `work` in the pool sized to libtorch's current thread count, built on first use and
/// again when that count changes.
pub(super) fn install<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    static POOL: Mutex<Option<(usize, Arc<ThreadPool>)>> = Mutex::new(None);
    let threads = tch::get_num_threads().max(1) as usize;
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
