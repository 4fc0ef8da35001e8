//! Checkpoints torch writes that safetensors cannot hold (quantized, sparse, meta, complex128)
//! and a naming collision: each is a clear error naming the tensor (exit 2, nothing written);
//! with --skip-unsupported the rest converts and matches what torch loads.

mod common;

use common::*;

#[test]
fn unsupported_tensors_are_named_or_skipped() {
    let dir = fixtures().join("edge");
    let manifest = manifest("edge/manifest.json");
    let tmp = tempfile::tempdir().unwrap();
    for case in &manifest {
        let name = case["case"].as_str().unwrap();
        let input = dir.join(case["input"].as_str().unwrap());
        let out = tmp.path().join(format!("{name}.safetensors"));
        let r = run(&["convert", input.to_str().unwrap(), out.to_str().unwrap()]);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        for needle in case["error_mentions"].as_array().unwrap() {
            assert!(
                r.stderr.contains(needle.as_str().unwrap()),
                "{name}: error should mention {needle}: {}",
                r.stderr
            );
        }
        assert!(!out.exists(), "{name}: nothing written on error");
        if let Some(expected) = case["skip_expected"].as_str() {
            let r = run(&[
                "convert",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "--skip-unsupported",
            ]);
            assert_eq!(r.code, 0, "{name}: {}", r.stderr);
            assert!(
                r.stderr.contains("skipped"),
                "{name}: the skip is reported: {}",
                r.stderr
            );
            let (got, _) = read_safetensors(&out);
            let (want, _) = read_safetensors(&dir.join(expected));
            assert_eq!(got, want, "{name}: what remains equals what torch loads");
        }
    }
}
