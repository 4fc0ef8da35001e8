//! Every fixture in tests/fixtures/manifest.json, converted by the real binary and compared with
//! the ground truth that torch/numpy/joblib produced (saved with the official safetensors
//! package): same names, dtypes, shapes and bytes. Real checkpoints must carry no finding at
//! high or above.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

fn compare(ours: &Path, expected: &Path, case: &str) {
    let (got, meta) = read_safetensors(ours);
    let (want, _) = read_safetensors(expected);
    assert_eq!(
        meta.get("format").map(String::as_str),
        Some("pt"),
        "{case}: __metadata__.format"
    );
    let got_names: Vec<_> = got.keys().collect();
    let want_names: Vec<_> = want.keys().collect();
    assert_eq!(got_names, want_names, "{case}: tensor names");
    for (name, (dt, shape, bytes)) in &want {
        let (gdt, gshape, gbytes) = &got[name];
        assert_eq!(gdt, dt, "{case}: dtype of {name}");
        assert_eq!(gshape, shape, "{case}: shape of {name}");
        assert!(gbytes == bytes, "{case}: bytes of {name} differ");
    }
}

#[test]
fn every_fixture_matches_its_ground_truth() {
    let root = fixtures();
    let manifest = manifest("manifest.json");
    assert!(manifest.len() >= 40, "the manifest lists every fixture");
    let tmp = tempfile::tempdir().unwrap();
    for case in &manifest {
        let name = case["case"].as_str().unwrap();
        let input = root.join(case["input"].as_str().unwrap());
        let folder = case["format"] == "hf-folder";
        let out = tmp.path().join(if folder {
            name.to_string()
        } else {
            format!("{name}.safetensors")
        });
        let report = tmp.path().join(format!("{name}.json"));
        let mut args = vec![
            "convert",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "-q",
        ];
        let opts = case_options(case);
        args.extend(opts.iter().map(String::as_str));
        let r = run(&args);
        assert_eq!(
            r.code as i64,
            case["expect_exit"].as_i64().unwrap(),
            "{name}: exit code; stderr: {}",
            r.stderr
        );
        let rep: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        for f in rep["findings"].as_array().unwrap() {
            let sev = f["severity"].as_str().unwrap();
            assert!(
                !matches!(sev, "high" | "critical"),
                "{name}: real checkpoint got a {sev} finding: {f}"
            );
        }
        if folder {
            let expected = root.join(case["expected"].as_str().unwrap());
            for entry in std::fs::read_dir(&expected).unwrap() {
                let p = entry.unwrap().path();
                let file = p.file_name().unwrap();
                if p.extension().is_some_and(|e| e == "safetensors") {
                    compare(&out.join(file), &p, name);
                } else {
                    let a: Value =
                        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                    let b: Value =
                        serde_json::from_str(&std::fs::read_to_string(out.join(file)).unwrap())
                            .unwrap();
                    assert_eq!(a["weight_map"], b["weight_map"], "{name}: index weight_map");
                }
            }
        } else {
            compare(&out, &root.join(case["expected"].as_str().unwrap()), name);
            if let Some(dedup) = case["expected_dedup_metadata"].as_object() {
                let (_, meta) = read_safetensors(&out);
                for (dropped, kept) in dedup {
                    assert_eq!(
                        meta.get(dropped).map(String::as_str),
                        kept.as_str(),
                        "{name}: dedup metadata for {dropped}"
                    );
                }
            }
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&out).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o644, "{name}: output mode");
        }
    }
    // Nothing but outputs and reports is left in the destination folder (no temp files).
    for e in std::fs::read_dir(tmp.path()).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !n.contains("modelguard-tmp"),
            "temporary file left behind: {n}"
        );
    }
}

#[test]
fn report_names_format_hashes_and_tensors() {
    let root = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    let input = root.join("models/sd_sequential.pt");
    let (r, rep) = convert_with_report(&input, &out, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(rep["format"], "torch-zip");
    assert_eq!(rep["verdict"], "clean");
    assert_eq!(rep["tensor_count"], 7);
    let sha = |p: &Path| {
        use sha2::Digest;
        common_hex(&sha2::Sha256::digest(std::fs::read(p).unwrap()))
    };
    assert_eq!(rep["input_sha256"], sha(&input));
    assert_eq!(rep["output_sha256"], sha(&out));
}

fn common_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
