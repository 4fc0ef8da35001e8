//! The output layer: a streaming safetensors writer that emits exactly the reference crate's
//! canonical layout, and a strict header validator for files we (or anyone) produced.
//!
//! Nothing here touches the file system: the writer takes any `std::io::Write` and the validator
//! any `Read + Seek`, so both build for the wasm32-wasip1 guest.

pub mod validate;
pub mod writer;

pub use validate::{validate_header, Strictness, TensorEntry, ValidatedHeader};
pub use writer::{plan_header, OutTensor, PlannedTensor, SafetensorsWriter};

/// Largest header (`N`) the reference crate accepts or writes; fixed by the format.
pub const MAX_HEADER_SIZE: u64 = 100_000_000;

/// Largest tensor rank we write or accept (the reference crate has no limit; we keep the
/// engine-wide `max_rank` default).
pub const MAX_RANK: usize = 64;

/// Name under which limit errors about the header size are reported.
pub(crate) const HEADER_LIMIT: &str = "safetensors_header_size";
