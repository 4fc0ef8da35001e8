#![no_main]
//! The torch zip container (zip reader, TorchScript and npz layouts included).
use libfuzzer_sys::fuzz_target;
use modelguard_fuzz::{analysis, options};
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let opts = options();
    let mut a = analysis();
    let len = data.len() as u64;
    let _ = modelguard::formats::torch_zip::analyze_zip(&mut Cursor::new(data), len, &opts, &mut a);
});
