#!/usr/bin/env bash
# Build the WASI guest (guest/target/wasm32-wasip1/release/modelguard-guest.wasm).
# Uses rustup's wasm32-wasip1 target when it is installed; otherwise Debian's Rust toolchain with
# -Zbuild-std (see docs/wasi-guest.md), installing its packages when run as root on Debian.
set -euo pipefail
cd "$(dirname "$0")"
if command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  exec cargo build --release --target wasm32-wasip1 --target-dir target
fi
if [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/src/rust/library ] || ! command -v wasm-ld >/dev/null || [ ! -e /usr/lib/wasm32-wasi/crt1-command.o ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src lld wasi-libc >/dev/null
  else
    echo "guest/build.sh: install rustup's wasm32-wasip1 target (rustup target add wasm32-wasip1)" >&2
    echo "  or, on Debian as root: apt-get install rustc-web cargo-web rust-web-src lld wasi-libc" >&2
    exit 1
  fi
fi
export RUSTC=/usr/bin/rustc
export RUSTC_BOOTSTRAP=1
export __CARGO_TESTS_ONLY_SRC_ROOT=/usr/lib/rustlib/src/rust/library
export CARGO_TARGET_WASM32_WASIP1_LINKER=wasm-ld
export CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-C link-self-contained=no -L /usr/lib/wasm32-wasi"
# Linked into the guest binaries only (guest/build.rs), not into dependencies built as cdylibs.
export MODELGUARD_GUEST_CRT1=/usr/lib/wasm32-wasi/crt1-command.o
exec /usr/bin/cargo build --release --target wasm32-wasip1 -Zbuild-std=std,panic_abort --target-dir target
