#![no_main]
//! joblib's compressed containers (zlib and gzip streams of pickles with numpy arrays).
use libfuzzer_sys::fuzz_target;
use modelguard_fuzz::{analysis, options};
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let opts = options();
    let mut a = analysis();
    let len = data.len() as u64;
    let _ = modelguard::formats::compressed::analyze(
        &mut Cursor::new(data),
        len,
        modelguard::formats::compressed::Compression::Zlib,
        &opts,
        &mut a,
    );
});
