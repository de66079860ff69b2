//! Stop requests: Ctrl-C, and SIGTERM and SIGHUP (what `kill`, a closed terminal or a
//! scheduler's cancel sends). The first asks the training loop to save a checkpoint and
//! stop, and makes a long evaluation give up within a step; a second exits at once (and
//! kills the [`children`], so that none trains on).
//! SIGUSR1 is SLURM's warning that the time limit is near (`sbatch --signal`): a stop too,
//! after which a sweep task requeues itself.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

static STOP: AtomicBool = AtomicBool::new(false);
/// Processes that exit with this one on a second signal: a sweep's workers.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static TIME_LIMIT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_time_limit(_: libc::c_int) {
    // Only atomic stores: all a signal handler may safely do.
    TIME_LIMIT.store(true, Ordering::SeqCst);
    STOP.store(true, Ordering::SeqCst);
}

/// Status of a process stopped by a signal before it finished (the shell's code for SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Installs the handler; without it the signals end the process as usual.
pub fn install() {
    let installed = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting now; the last checkpoint is intact");
            // Each child's files are written atomically too, so it may stop at any instant;
            // it must not train on after this process is gone (its parent-death signal
            // would only ask it to save first).
            for &pid in children().iter() {
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            // `_exit`, not `exit`: exit handlers and C++ static destructors would run while
            // libtorch's threads are still working, and crash. Every file of the run is
            // written atomically, so nothing is left half-done.
            unsafe { libc::_exit(i32::from(EXIT_INTERRUPTED)) };
        }
        eprintln!("\ninterrupted: saving a checkpoint after this update (again to quit now)");
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C and SIGTERM will not save a checkpoint: {e}");
    }
    let handler = on_time_limit as extern "C" fn(libc::c_int) as libc::sighandler_t;
    unsafe { libc::signal(libc::SIGUSR1, handler) };
}

/// The child processes that a second signal kills before this process exits. The caller
/// keeps the list current while holding the guard: a process reaped (its id free for reuse)
/// must be gone from it before the guard is dropped.
pub fn children() -> MutexGuard<'static, Vec<u32>> {
    CHILDREN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether the stop came from the time-limit warning (SIGUSR1).
pub fn time_limit() -> bool {
    TIME_LIMIT.load(Ordering::SeqCst)
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Lets a closed pipe end the process quietly, as it ends `ls | head` (Rust ignores SIGPIPE,
/// so printing to a closed pipe would panic). Not for training, which must save first.
pub fn quiet_on_closed_pipe() {
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}
