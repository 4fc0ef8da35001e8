//! modelguard: reads untrusted model files (PyTorch pickles, numpy, joblib) with an allowlist
//! pickle machine that never executes code, and writes standard safetensors files.
//!
//! The engine (`pickle`, `policy`, `formats`, `tensors`, `output`) uses nothing but `std::io` so
//! it compiles for wasm32-wasip1; everything that touches the OS sits behind the `host` feature.

pub mod error;
pub mod formats;
pub mod limits;
pub mod output;
pub mod pickle;
pub mod policy;
pub mod tensors;

pub use error::{Error, Result};
pub use limits::Limits;
#[cfg(feature = "host")]
pub mod cli;
pub mod convert;
#[cfg(all(feature = "host", target_os = "linux"))]
pub mod jail;
#[cfg(feature = "host")]
pub mod provenance;
pub mod scan;
#[cfg(all(feature = "service", target_os = "linux"))]
pub mod service;
#[cfg(feature = "host")]
pub mod staging;
#[cfg(all(feature = "wasi", target_os = "linux"))]
pub mod wasi;
