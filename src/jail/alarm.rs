//! A one-shot wall-clock alarm for a single-threaded process: SIGALRM runs one signal-safe
//! action (the stacked worker's: tick wasmtime's epoch, which traps the guest). A timer needs no
//! thread, and the jail forbids creating one.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::OnceLock;
use std::time::Duration;

type Action = Box<dyn Fn() + Send + Sync>;

static ON_ALARM: OnceLock<Action> = OnceLock::new();

extern "C" fn on_alarm(_: nix::libc::c_int) {
    if let Some(action) = ON_ALARM.get() {
        action();
    }
}

/// Arm the alarm once per process; `action` must be async-signal-safe.
pub fn arm(after: Duration, action: impl Fn() + Send + Sync + 'static) -> Result<(), String> {
    ON_ALARM
        .set(Box::new(action))
        .map_err(|_| "the alarm is already armed".to_string())?;
    let handler = SigAction::new(
        SigHandler::Handler(on_alarm),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only reads a OnceLock that was set before it was installed and calls
    // the action, which the caller guarantees is async-signal-safe (an atomic increment).
    unsafe { sigaction(Signal::SIGALRM, &handler) }.map_err(|e| e.to_string())?;
    let secs = after.as_secs().clamp(1, u32::MAX as u64) as u32;
    nix::unistd::alarm::set(secs);
    Ok(())
}
