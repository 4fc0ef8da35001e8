//! What each global means: the allowlist of tensor rebuilders and safe data classes, how they
//! are interpreted, and the severity of everything else.

pub mod findings;
pub mod globals;
pub mod interpret;
