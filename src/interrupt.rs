//! Stop requests: Ctrl-C, and SIGTERM and SIGHUP (what `kill`, a closed terminal or a
//! scheduler's cancel sends). The first asks the training loop to save a checkpoint and
//! stop, and makes a long evaluation give up within a step; a second exits at once.
//! SIGUSR1 is SLURM's warning that the time limit is near (`sbatch --signal`): a stop too,
//! after which a sweep task requeues itself.
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
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
