//! The native jail: every untrusted byte is parsed in a re-executed worker process locked down
//! with namespaces, rlimits, Landlock and a seccomp allowlist. All `unsafe` of the project lives
//! in this module.

pub mod alarm;
pub mod copy;
pub mod host;
pub mod layers;
pub mod lockdown;
pub mod policy;
#[cfg(feature = "jail-probe")]
pub mod probe;
pub mod sigpipe;
pub mod worker;

pub use host::{convert, JailOptions};
pub use layers::{LayerStatus, Layers};
