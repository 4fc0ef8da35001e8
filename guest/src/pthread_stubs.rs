//! Thread creation that always fails, for Debian's wasi-libc (2022), which has no pthreads.
//!
//! std's `thread::spawn` is linked in as dead code: sevenz-rust2 holds a multi-threaded LZMA2
//! decoder that the engine never selects (it asks for one thread), and the WASI guest never
//! starts a thread. Newer wasi-libc (the one rustup ships for wasm32-wasip1) defines these
//! symbols itself with the same outcome, so this module is linked only when the build script
//! says the C library lacks them (`guest/build.rs`, Debian's toolchain).
#![cfg(modelguard_pthread_stubs)]

/// WASI's `EAGAIN`: "no resources for another thread".
const EAGAIN: i32 = 6;

#[no_mangle]
extern "C" fn pthread_create(_: *mut usize, _: *const u8, _: usize, _: *mut u8) -> i32 {
    EAGAIN
}

#[no_mangle]
extern "C" fn pthread_detach(_: usize) -> i32 {
    0
}

#[no_mangle]
extern "C" fn pthread_attr_init(_: *mut u8) -> i32 {
    0
}

#[no_mangle]
extern "C" fn pthread_attr_setstacksize(_: *mut u8, _: usize) -> i32 {
    0
}

#[no_mangle]
extern "C" fn pthread_attr_destroy(_: *mut u8) -> i32 {
    0
}
