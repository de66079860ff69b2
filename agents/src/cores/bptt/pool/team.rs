//! The threads the host loops' parallel regions run on: the calling thread and `n − 1` helper
//! threads, each running its part of a region, the helpers spinning for a while after each
//! region before they sleep.
//!
//! A rollout's forward pass is one short region per step (tens of microseconds at B 30), with
//! the main thread's own work between them (policy head, sampling, environments). rayon's pool,
//! which this replaced, puts idle workers to sleep within microseconds and parks the calling
//! thread for the region, so each step paid a wake-up on both sides: on 2 cores the forward
//! pass ran no faster on two threads than on one (B 30, H 100: 23–27 ms an update either
//! way). Here the caller works on its own part and the helper is still spinning when the next
//! step comes: 13–14 ms.
use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a helper spins for the next region before it sleeps: well above the main
/// thread's work between two forward steps, well below what it does between rollouts (the
/// losses, the optimiser), where a sleeping helper costs nothing.
const SPIN: Duration = Duration::from_micros(300);

/// A region's work for part `i` of the team's parts, with its borrows erased (see
/// [`Team::run`]).
type Part = dyn Fn(usize) + Sync;

/// What the team's threads share.
struct Shared {
    /// Counts regions; a helper starts a region when it sees the count move.
    regions: AtomicUsize,
    /// Helpers still working on the current region.
    pending: AtomicUsize,
    /// The current region's work, set while `pending` > 0.
    part: Mutex<Option<&'static Part>>,
    /// What a helper's part panicked with in the current region, for the caller to raise.
    panicked: Mutex<Option<Box<dyn Any + Send>>>,
    /// The team is being dropped: helpers return at the next count.
    stop: AtomicBool,
    /// Helpers asleep, and where they sleep.
    asleep: Mutex<usize>,
    wake: Condvar,
}

impl Shared {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a region (or the stop) and wakes the helpers that sleep.
    fn announce(&self) {
        self.regions.fetch_add(1, Ordering::AcqRel);
        // Under the lock, after the count moved: a helper either sees the new count before it
        // waits, or is already counted here and waiting.
        if *Self::lock(&self.asleep) > 0 {
            self.wake.notify_all();
        }
    }
}

/// The calling thread and `size − 1` helpers.
pub(super) struct Team {
    size: usize,
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
}

impl Team {
    pub(super) fn new(size: usize) -> Self {
        debug_assert!(size >= 1, "a team has its caller at least");
        let mut team = Self {
            size,
            shared: Arc::new(Shared {
                regions: AtomicUsize::new(0),
                pending: AtomicUsize::new(0),
                part: Mutex::new(None),
                panicked: Mutex::new(None),
                stop: AtomicBool::new(false),
                asleep: Mutex::new(0),
                wake: Condvar::new(),
            }),
            helpers: Vec::with_capacity(size - 1),
        };
        for index in 1..size {
            let shared = team.shared.clone();
            let helper = std::thread::Builder::new()
                .name(format!("plastic-loops-{index}"))
                .spawn(move || help(&shared, index))
                // Dropping the team on the way out stops the helpers already started.
                .unwrap_or_else(|e| panic!("cannot start loop thread {index}: {e}"));
            team.helpers.push(helper);
        }
        team
    }

    /// Threads, the caller's included.
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// Runs `part(i)` for every `i` in `0..size`, part 0 on the calling thread, and returns
    /// once every part has; a panic in any part is raised here. One region at a time: `&mut`.
    pub(super) fn run<'a>(&mut self, part: &'a (dyn Fn(usize) + Sync + 'a)) {
        let s = &*self.shared;
        // SAFETY: helpers call `part` only between `announce` below and their decrement of
        // `pending`, and this function returns (or unwinds) only once `pending` is 0, so the
        // borrow outlives every call.
        let erased: &'static Part =
            unsafe { std::mem::transmute::<&'a (dyn Fn(usize) + Sync + 'a), &'static Part>(part) };
        *Shared::lock(&s.part) = Some(erased);
        s.pending.store(self.size - 1, Ordering::Release);
        s.announce();
        let mine = catch_unwind(AssertUnwindSafe(|| part(0)));
        let mut spins = 0u32;
        while s.pending.load(Ordering::Acquire) > 0 {
            // A helper that was descheduled gets the core back sooner if this one yields.
            spins = spins.saturating_add(1);
            if spins < 1 << 14 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        *Shared::lock(&s.part) = None;
        let theirs = Shared::lock(&s.panicked).take();
        if let Some(panic) = mine.err().or(theirs) {
            resume_unwind(panic);
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.announce();
        for helper in self.helpers.drain(..) {
            // A helper's panics were caught and raised on the caller already.
            let _ = helper.join();
        }
    }
}

/// Helper `index`'s loop: wait for a region (spinning, then asleep), run its part, report.
fn help(s: &Shared, index: usize) {
    let mut seen = 0;
    loop {
        wait_for_region(s, seen);
        seen = s.regions.load(Ordering::Acquire);
        if s.stop.load(Ordering::Acquire) {
            return;
        }
        let part = *Shared::lock(&s.part);
        if let Some(part) = part {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| part(index))) {
                // Kept for the caller, which raises it: nothing of it is dropped here.
                Shared::lock(&s.panicked).get_or_insert(panic);
            }
        }
        s.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Returns once the region count differs from `seen`: spinning for [`SPIN`], then asleep.
fn wait_for_region(s: &Shared, seen: usize) {
    let start = Instant::now();
    let mut spins = 0u32;
    while s.regions.load(Ordering::Acquire) == seen {
        spins = spins.wrapping_add(1);
        // The clock is read once every 64 spins.
        if !spins.is_multiple_of(64) || start.elapsed() < SPIN {
            std::hint::spin_loop();
            continue;
        }
        let mut asleep = Shared::lock(&s.asleep);
        *asleep += 1;
        while s.regions.load(Ordering::Acquire) == seen {
            asleep = s.wake.wait(asleep).unwrap_or_else(PoisonError::into_inner);
        }
        *asleep -= 1;
        return;
    }
}
