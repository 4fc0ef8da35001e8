//! The malicious corpus (tests/fixtures/malicious, every payload verified once to fire under the
//! loader it targets, each only creating a marker file): every case is flagged at high or above,
//! refused with exit 1, writes no output, and never creates its marker — not even with
//! `--fail-on none`, which converts whatever tensors there are and drops everything else.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

fn cases() -> Vec<Value> {
    manifest("malicious/manifest.json")
}

#[test]
fn every_payload_is_refused_and_never_runs() {
    let cases = cases();
    assert!(cases.len() >= 40);
    let tmp = tempfile::tempdir().unwrap();
    for case in &cases {
        let name = case["case"].as_str().unwrap();
        assert_eq!(
            case["verified_fires"], true,
            "{name}: corpus case was verified to fire"
        );
        let marker = Path::new(case["marker"].as_str().unwrap());
        let _ = std::fs::remove_file(marker);
        let input = fixtures()
            .join("malicious")
            .join(case["file"].as_str().unwrap());
        let out = tmp.path().join(format!("{name}.safetensors"));
        let (r, rep) = convert_with_report(&input, &out, &[]);
        assert_eq!(r.code, 1, "{name}: refused; stderr: {}", r.stderr);
        let worst = rep["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["severity"].as_str().unwrap().to_string())
            .max_by_key(|s| {
                ["info", "low", "medium", "high", "critical"]
                    .iter()
                    .position(|x| x == s)
            })
            .unwrap_or_default();
        assert!(
            worst == "high" || worst == "critical",
            "{name}: worst finding is {worst:?}"
        );
        assert_eq!(rep["verdict"], "malicious", "{name}");
        assert!(!out.exists(), "{name}: no output on refusal");

        let r = run(&[
            "convert",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "--fail-on",
            "none",
            "-q",
        ]);
        assert!(
            r.code == 0 || r.code == 2,
            "{name}: --fail-on none converts or errors, got {}",
            r.code
        );
        assert!(!marker.exists(), "{name}: the payload ran!");
    }
}

#[test]
fn payload_hidden_in_a_real_checkpoint_is_dropped_with_fail_on_none() {
    let input = fixtures().join("malicious/files/z17_state_dict_extra_key.pth");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    let r = run(&[
        "convert",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        "--fail-on",
        "none",
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (tensors, _) = read_safetensors(&out);
    assert!(!tensors.is_empty(), "the real tensors survive");
}
