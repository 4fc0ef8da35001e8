//! With Debian's toolchain (`guest/build.sh` without rustup's target), the C runtime start file
//! is linked explicitly, and only into this package's binaries: a dependency that is also built
//! as a `cdylib` (sevenz-rust2) has no `main` and must not get it.
fn main() {
    println!("cargo:rerun-if-env-changed=MODELGUARD_GUEST_CRT1");
    println!("cargo::rustc-check-cfg=cfg(modelguard_pthread_stubs)");
    if let Ok(crt1) = std::env::var("MODELGUARD_GUEST_CRT1") {
        println!("cargo:rustc-link-arg-bins={crt1}");
        // That C library (2022) has no pthreads: see src/pthread_stubs.rs.
        println!("cargo:rustc-cfg=modelguard_pthread_stubs");
    }
}
