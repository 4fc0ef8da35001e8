//! The WASI guest: the same engine, compiled to wasm32-wasip1. It has one preopened directory,
//! `/in`, holding only its input (read-only), writes the safetensors bytes to stdout and its
//! report (the engine's `Outcome` as JSON) to stderr, and takes its options as one JSON
//! argument. No environment, no other files, no network (WASIp1 has no sockets).

mod pthread_stubs;

use modelguard::convert::{self, ConvertOptions, Outcome};
use std::io::Write;

#[derive(serde::Deserialize)]
struct Args {
    input_len: u64,
    options: ConvertOptions,
}

fn main() {
    let outcome = run();
    let text = serde_json::to_string(&outcome).unwrap_or_else(|_| "{}".into());
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn error(kind: &str, message: String) -> Outcome {
    Outcome::failure(kind, message)
}

fn run() -> Outcome {
    let Some(json) = std::env::args().nth(1) else {
        return error("sandbox", "missing guest arguments".into());
    };
    let args: Args = match serde_json::from_str(&json) {
        Ok(a) => a,
        Err(e) => return error("sandbox", format!("bad guest arguments: {e}")),
    };
    let mut input = match std::fs::File::open("/in/input") {
        Ok(f) => f,
        Err(e) => return error("io", format!("cannot open the input: {e}")),
    };
    let stdout = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    convert::run(&mut input, args.input_len, &args.options, stdout, None)
}
