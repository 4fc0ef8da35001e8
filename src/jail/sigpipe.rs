//! `modelguard scan … | head`: writing into a closed pipe ends the process quietly, as it does
//! for every Unix tool, instead of Rust's default (SIGPIPE ignored, then `println!` panics on
//! the EPIPE). The host only reads from its worker's pipe, so no conversion can die this way;
//! `serve` keeps the default, because a client hanging up must not kill the service.

use nix::sys::signal::{signal, SigHandler, Signal};

pub fn exit_quietly_on_closed_stdout() {
    // SAFETY: SIG_DFL installs no handler code, and this runs first thing in `main`, before any
    // thread exists.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
