//! The WASI guest: the same engine compiled to wasm32-wasip1. It reads the model from stdin,
//! writes the safetensors bytes to stdout and a JSON summary to stderr, and has nothing else:
//! no files, no environment, no network (WASIp1 has no sockets). The wasmtime host that runs it
//! is the WASI issue's work; this proves the engine builds and runs without an OS.

use modelguard::convert::{self, ConvertOptions, EXIT_ERROR, EXIT_OK, EXIT_REFUSED};
use modelguard::tensors::gather::SliceReader;
use std::io::{Read, Write};

fn main() {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("{{\"error\": {:?}}}", e.to_string());
        std::process::exit(EXIT_ERROR);
    }
    let opts = ConvertOptions::default();
    let mut cursor = std::io::Cursor::new(&input[..]);
    let analysis = convert::analyze(&mut cursor, input.len() as u64, &opts);
    let findings = analysis.findings.into_vec();
    let format = analysis.format.as_str();
    let summary = |code: i32, error: Option<String>, tensors: usize| -> ! {
        finish(format, &findings, code, error, tensors)
    };
    if convert::refused(&findings, opts.fail_on) {
        summary(EXIT_REFUSED, analysis.error.map(|e| e.to_string()), 0);
    }
    if let Some(e) = analysis.error {
        summary(EXIT_ERROR, Some(e.to_string()), 0);
    }
    let plan = match convert::plan(
        analysis.tensors,
        opts.dedup,
        opts.format.limits.max_output_bytes,
    ) {
        Ok(p) => p,
        Err(e) => summary(EXIT_ERROR, Some(e.to_string()), 0),
    };
    let stdout = std::io::stdout().lock();
    match convert::write(&plan, &mut SliceReader(&input), stdout) {
        Ok(mut out) => {
            let _ = out.flush();
            summary(EXIT_OK, None, plan.tensors.len())
        }
        Err(e) => summary(EXIT_ERROR, Some(e.to_string()), 0),
    }
}

fn finish(
    format: &str,
    findings: &[modelguard::policy::findings::Finding],
    code: i32,
    error: Option<String>,
    tensors: usize,
) -> ! {
    let s = serde_json::json!({
        "format": format,
        "exit_code": code,
        "error": error,
        "tensor_count": tensors,
        "verdict": convert::verdict(findings, code == EXIT_ERROR),
        "findings": findings,
    });
    eprintln!("{s}");
    std::process::exit(code)
}
