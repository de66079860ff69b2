//! How the host loops ([`super::host`]) share a region's items among the
//! threads: those of a [`Team`] of the size [`crate::threads`] gives it (the run's
//! `run.threads` where steps run on the host, else one: the calling thread). The loops give
//! the same numbers for any team size.
//!
//! Handing a region to the team and waiting for it costs a microsecond or so while the helpers
//! spin, and up to a scheduler time slice on a loaded machine. So a region smaller than
//! [`GRAIN`] trace cells, or any region when the team would have one thread, runs on the
//! calling thread, and a region shared out gives each thread a part of at least [`GRAIN`]
//! cells. The team runs one region at a time: a region started while another runs (from
//! another thread, or from inside a region) runs on its calling thread, with the same
//! numbers.
mod team;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};
use team::Team;

/// Trace cells (`[H]`-long rows times their count) worth one hand-off: at the loops' few
/// cells per nanosecond, tens of microseconds of work, well above the hand-off's cost on an
/// idle machine. `plastic bench traces` times the passes on both sides of it.
pub(super) const GRAIN: usize = 1 << 16;

/// How a region's items are shared among the threads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(in crate::cores::bptt) enum Share {
    /// One contiguous part per thread, the same one every region of the same length: for one
    /// step of many, whose items (batch rows) then keep their trace in the same core's cache
    /// from step to step.
    Pinned,
    /// Claimed a few at a time by whichever thread is free: for one long region, which then
    /// ends when the work does, not when the slowest thread's part does.
    Claimed,
}

fn threads() -> usize {
    crate::threads::loop_threads()
}

/// Whether a region over `cells` trace cells is shared out (else: the calling thread).
fn shared_out(cells: usize) -> bool {
    cells >= GRAIN && threads() > 1
}

/// The fewest items (batch rows or groups of them) a thread of a region shared out takes,
/// when the region covers `cells` trace cells in `items` items: enough for [`GRAIN`] cells.
fn min_items(cells: usize, items: usize) -> usize {
    let per_item = cells.div_ceil(items.max(1)).max(1);
    GRAIN.div_ceil(per_item)
}

/// The items of a region, for the team's threads to take each its own: every index is taken
/// by one thread only (`Share` decides which), so no two threads touch the same item.
struct Items<R>(*mut R);

// SAFETY: the threads take disjoint items (see above), each a `Send` value.
unsafe impl<R: Send> Sync for Items<R> {}

impl<R> Items<R> {
    /// Item `k`'s address; `k` in bounds.
    fn at(&self, k: usize) -> *mut R {
        self.0.wrapping_add(k)
    }
}

/// Calls `f(k, &mut items[k])` for every item: shared out on the team when the work covers
/// enough trace cells (`cells`), else on the calling thread. Items are independent, so either
/// way gives the same numbers.
pub(in crate::cores::bptt) fn for_each<R: Send>(
    cells: usize,
    items: &mut [R],
    share: Share,
    f: impl Fn(usize, &mut R) + Sync,
) {
    static TEAM: Mutex<Option<Team>> = Mutex::new(None);
    let team = match shared_out(cells).then(|| TEAM.try_lock()) {
        Some(Ok(team)) => Some(team),
        Some(Err(TryLockError::Poisoned(team))) => Some(team.into_inner()),
        // Too small, or another region under way (another thread's, or this one's).
        Some(Err(TryLockError::WouldBlock)) | None => None,
    };
    let Some(mut team) = team else {
        for (k, item) in items.iter_mut().enumerate() {
            f(k, item);
        }
        return;
    };
    let n = threads();
    if team.as_ref().is_some_and(|team| team.size() != n) {
        // The old helpers stop before the new ones start.
        *team = None;
    }
    let team = team.get_or_insert_with(|| Team::new(n));
    let len = items.len();
    let least = min_items(cells, len);
    let shared = Items(items.as_mut_ptr());
    // SAFETY: `k < len`, and both ways of sharing hand each index to one thread only, so
    // this is the one reference to item `k` during the region.
    let run = |k: usize| f(k, unsafe { &mut *shared.at(k) });
    match share {
        Share::Pinned => {
            let per = len.div_ceil(n).max(least);
            team.run(&|part| (part * per..((part + 1) * per).min(len)).for_each(run));
        }
        Share::Claimed => {
            let next = AtomicUsize::new(0);
            let claim = least.min(len.div_ceil(4 * n)).max(1);
            team.run(&|_| loop {
                let first = next.fetch_add(claim, Ordering::Relaxed);
                if first >= len {
                    break;
                }
                (first..(first + claim).min(len)).for_each(run);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    /// Enough trace cells for any region to be shared out.
    const MANY: usize = GRAIN * 64;

    #[test]
    fn every_item_is_taken_once_whatever_the_share_and_threads() {
        for threads in [1, 2, 3] {
            crate::threads::assign(threads, true);
            for share in [Share::Pinned, Share::Claimed] {
                for len in [0, 1, 2, 7, 30, 101] {
                    let mut items: Vec<(usize, usize)> = vec![(usize::MAX, 0); len];
                    for_each(MANY, &mut items, share, |k, item| {
                        item.0 = k;
                        item.1 += 1;
                    });
                    for (k, &(seen, visits)) in items.iter().enumerate() {
                        assert_eq!(
                            (seen, visits),
                            (k, 1),
                            "{threads} threads, {share:?}, {len} items: item {k}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_panic_on_any_thread_reaches_the_caller_and_the_team_goes_on() {
        crate::threads::assign(3, true);
        // Item 0 is the caller's, 29 a helper's; `None`: every item, on every thread at once.
        for (share, bad) in [
            (Share::Pinned, Some(0)),
            (Share::Pinned, Some(29)),
            (Share::Claimed, Some(17)),
            (Share::Pinned, None),
        ] {
            let mut items = vec![0u8; 30];
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                for_each(MANY, &mut items, share, |k, _| {
                    assert!(bad.is_some_and(|bad| k != bad), "item {k} fails");
                })
            }));
            assert!(outcome.is_err(), "{share:?}: the panic at {bad:?} was lost");
            let mut after = vec![0u8; 30];
            for_each(MANY, &mut after, share, |_, item| *item = 1);
            assert!(after.iter().all(|&v| v == 1), "{share:?}: the team stopped");
        }
    }

    #[test]
    fn regions_started_inside_a_region_or_side_by_side_run_whole() {
        crate::threads::assign(2, true);
        let fill = |items: &mut [usize]| {
            for_each(MANY, items, Share::Claimed, |k, item| *item = k + 1);
        };
        let mut outer = vec![vec![0; 40]; 8];
        for_each(MANY, &mut outer, Share::Pinned, |_, inner| fill(inner));
        let mut sides = vec![vec![0; 40]; 2];
        std::thread::scope(|scope| {
            for side in &mut sides {
                scope.spawn(|| (0..50).for_each(|_| fill(side)));
            }
        });
        for items in outer.iter().chain(&sides) {
            assert!(items.iter().enumerate().all(|(k, &v)| v == k + 1));
        }
    }
}
