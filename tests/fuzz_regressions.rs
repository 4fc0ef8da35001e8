//! Every input a fuzz target ever stopped on (tests/fixtures/fuzz-regressions/manifest.json),
//! scanned and converted by the real binary in the jail under the 256 MiB address-space cap: the
//! recorded exit code and rule, a clear message, no panic and no output left.

mod common;

use common::*;

#[test]
fn every_fuzz_finding_stays_fixed() {
    let dir = fixtures().join("fuzz-regressions");
    let cases = manifest("fuzz-regressions/manifest.json");
    let files = std::fs::read_dir(&dir).unwrap().count() - 1;
    assert_eq!(
        cases.len(),
        files,
        "every kept input is listed in manifest.json"
    );
    for case in &cases {
        let name = case["file"].as_str().unwrap();
        let input = dir.join(name);
        let r = run_limited(&["scan", "--format", "json", input.to_str().unwrap()], 256);
        let want = case["expect_exit"].as_i64().unwrap() as i32;
        assert_eq!(r.code, want, "{name}: scan exit: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{name}: {}", r.stderr);
        if let Some(rule) = case["expect_rule"].as_str() {
            assert!(r.stdout.contains(rule), "{name}: no {rule} in {}", r.stdout);
        }

        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out.safetensors");
        let r = run_limited(
            &["convert", input.to_str().unwrap(), out.to_str().unwrap()],
            256,
        );
        assert!(matches!(r.code, 0..=2), "{name}: convert exit {}", r.code);
        assert!(!r.stderr.contains("panicked"), "{name}: {}", r.stderr);
        if r.code != 0 {
            assert!(
                !out.exists(),
                "{name}: refused or failed, yet an output exists"
            );
            assert!(
                r.stderr.contains("modelguard"),
                "{name}: says why: {}",
                r.stderr
            );
        }
    }
}
