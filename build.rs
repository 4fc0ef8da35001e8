//! Embeds the WASI guest when it has been built (guest/build.sh), so a plain `cargo build` of
//! the host still works on a machine without any wasm toolchain.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(modelguard_guest)");
    println!("cargo::rerun-if-env-changed=MODELGUARD_GUEST_WASM");
    let path = std::env::var_os("MODELGUARD_GUEST_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
                .join("guest/target/wasm32-wasip1/release/modelguard-guest.wasm")
        });
    println!("cargo::rerun-if-changed={}", path.display());
    // The guest itself is built from this crate for wasm32: it never embeds itself.
    let target = std::env::var("TARGET").unwrap_or_default();
    if path.is_file() && !target.starts_with("wasm32") {
        println!("cargo::rustc-cfg=modelguard_guest");
        println!(
            "cargo::rustc-env=MODELGUARD_GUEST_WASM_PATH={}",
            path.display()
        );
    }
}
