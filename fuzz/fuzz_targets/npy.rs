#![no_main]
//! The npy reader (header dict, dtypes, shapes, object arrays).
use libfuzzer_sys::fuzz_target;
use modelguard_fuzz::{analysis, options};
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let opts = options();
    let mut a = analysis();
    let len = data.len() as u64;
    let _ = modelguard::formats::npy::analyze(&mut Cursor::new(data), len, &opts, &mut a);
});
