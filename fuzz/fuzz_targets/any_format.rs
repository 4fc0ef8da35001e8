#![no_main]
//! The whole entry point every command uses: sniffing, then whichever reader the bytes select
//! (the legacy stream is reached here, after its magic number).
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let opts = modelguard_fuzz::options();
    let _ = modelguard::formats::analyze(&mut Cursor::new(data), data.len() as u64, &opts);
});
