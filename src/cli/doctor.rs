//! `modelguard doctor`: which isolation layers this machine enforces. It runs a real worker
//! through the same lock-down as a conversion (on an empty input) and prints what it reported.

use crate::convert::ConvertOptions;
use crate::jail::host;

pub fn run() -> i32 {
    println!("modelguard {}", env!("CARGO_PKG_VERSION"));
    println!(
        "kernel: {}",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );
    #[cfg(feature = "wasi")]
    match crate::wasi::guest_sha256() {
        Some(h) => println!(
            "wasi guest: sha256 {h} (wasmtime {})",
            crate::wasi::WASMTIME_VERSION
        ),
        None => println!(
            "wasi guest: not built into this binary ({})",
            crate::wasi::missing_guest_message()
        ),
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("modelguard doctor: cannot create a temporary folder: {e}");
            return 2;
        }
    };
    let input = dir.path().join("empty");
    let output = dir.path().join("out");
    let (Ok(_), Ok(inp), Ok(out)) = (
        std::fs::write(&input, b""),
        std::fs::File::open(&input),
        std::fs::File::create(&output),
    ) else {
        eprintln!("modelguard doctor: cannot create probe files");
        return 2;
    };
    let opts = ConvertOptions::default();
    let (outcome, layers) =
        host::convert(&inp, 0, &out, &opts, &crate::jail::JailOptions::default());
    let Some(layers) = layers else {
        println!(
            "native jail: NOT WORKING: {}",
            outcome.error.map(|e| e.message).unwrap_or_default()
        );
        return 2;
    };
    println!("native jail layers:");
    for (name, status) in layers.all() {
        println!("  {name:<11} {:<12} {}", status.label(), status.detail());
    }
    let missing = layers.missing();
    if missing.is_empty() {
        println!("all layers enforced (--require-full-jail will run)");
    } else {
        println!(
            "not fully enforced here: {} (conversions run; --require-full-jail refuses)",
            missing.join(", ")
        );
    }
    if !layers.seccomp.is_enforced() {
        return 2;
    }
    0
}
