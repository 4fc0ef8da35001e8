//! Tensor specifications: dtypes, naming, bounds-checked views and the strided gather that
//! materialises them.

pub mod dtype;
pub mod gather;
pub mod layout;
pub mod naming;
pub mod numpy;
pub mod resolve;
pub mod spec;
pub mod torch_dtype;
