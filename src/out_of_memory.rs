//! libtorch reports a failed allocation as an error that tch's generated methods unwrap, so it
//! reaches `plastic` as a panic with a page of C++ frames. It is the size the user asked for,
//! not a bug: the panic hook turns it into a one-line error that says what to lower.
use plastic_agents::out_of_memory::{describe, panic_message};

/// Installs the panic hook: libtorch's out-of-memory errors are reported plainly (status 1);
/// panics inside `tensorboard-rs` (on I/O errors, in its writer thread too) stay silent,
/// since the TensorBoard sink catches them and warns once; every other panic goes to the
/// default hook.
pub fn report_plainly() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(what) = describe(panic_message(info.payload())) {
            eprintln!(
                "error: out of memory: {what}. Lower env.num_envs, core.hidden or \
                 a2c.rollout_len (in `plastic bench`: --batch, --steps or hidden). Files written so far \
                 are intact."
            );
            std::process::exit(1);
        }
        let in_tensorboard = info
            .location()
            .is_some_and(|l| l.file().contains("tensorboard-rs"));
        if !in_tensorboard {
            default(info);
        }
    }));
}
