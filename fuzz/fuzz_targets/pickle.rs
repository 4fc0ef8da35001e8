#![no_main]
//! The restricted pickle machine and the state-dict interpretation on raw bytes.
use libfuzzer_sys::fuzz_target;
use modelguard_fuzz::{analysis, options};
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let opts = options();
    let mut a = analysis();
    let len = data.len() as u64;
    let _ = modelguard::formats::pickle_file::analyze(&mut Cursor::new(data), len, &opts, &mut a);
});
