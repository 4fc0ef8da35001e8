//! The restricted pickle machine: opcodes, the inert value graph, and limits. It builds values
//! and never calls anything; `policy` decides what each global means.

pub mod compat;
pub mod input;
pub mod lookup;
pub mod machine;
pub mod opcodes;
mod ops;
pub mod text;
pub mod value;

pub use input::Input;
pub use machine::{Context, Machine, Unpickled};
pub use value::{Graph, Node, NodeId};
