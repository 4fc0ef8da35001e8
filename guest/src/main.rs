//! The WASI guest: the same engine, compiled to wasm32-wasip1. It only has to compile for now;
//! the runner that reads the input through WASI arrives with the WASI issue.

fn main() {
    let limits = modelguard::Limits::default();
    let _ = limits;
}
