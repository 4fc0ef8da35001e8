//! Tensor specifications: dtypes, naming, bounds-checked views and the strided gather that
//! materialises them.

pub mod dtype;
pub mod numpy;
pub mod torch_dtype;
pub mod gather;
pub mod naming;
pub mod resolve;
pub mod spec;
