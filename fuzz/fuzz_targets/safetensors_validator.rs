#![no_main]
//! The host's strict safetensors validator: hostile headers must be errors, never panics, and
//! whatever it accepts must describe ranges inside the file.
use libfuzzer_sys::fuzz_target;
use modelguard::output::{validate_header, Strictness};
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    for strictness in [Strictness::Reference, Strictness::Canonical] {
        if let Ok(h) = validate_header(&mut Cursor::new(data), len, strictness) {
            let data_len = len - 8 - h.header_len;
            for (_, _, _, (begin, end)) in &h.tensors {
                assert!(
                    begin <= end && *end <= data_len,
                    "accepted range outside the data"
                );
            }
        }
    }
});
