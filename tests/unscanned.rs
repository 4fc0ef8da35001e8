//! Fail closed on what we cannot read: every model format that can carry code but that
//! modelguard does not read is `unscanned` and fails `scan` (exit 2) unless modelguard.toml
//! accepts it with a justification; 7z archives (the nullifAI vehicle) are read member by
//! member in both sandboxes, bounded, and refused by `convert`. Fixtures are real files made by
//! tests/fixtures/unscanned/make_fixtures.py.

mod common;

use common::*;
use modelguard::formats::registry;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    fixtures().join("unscanned")
}

fn scan_json(args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = vec!["scan", "--format", "json"];
    all.extend_from_slice(args);
    let r = run(&all);
    let v: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("scan prints JSON ({e}): {}\n{}", r.stdout, r.stderr));
    (r.code, v, r.stderr)
}

fn only_file(report: &serde_json::Value) -> &serde_json::Value {
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{report}");
    &files[0]
}

fn file<'a>(report: &'a serde_json::Value, suffix: &str) -> &'a serde_json::Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("{suffix} not in the report: {report}"))
}

/// Whether the WASI guest is embedded (CI must build it; see tests/sandboxes.rs).
fn guest_built() -> bool {
    let doctor = run(&["doctor"]);
    assert!(doctor.stdout.contains("wasi guest:"), "{}", doctor.stderr);
    let built = doctor.stdout.contains("wasi guest: sha256");
    if !built {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must build the WASI guest before the tests (guest/build.sh)"
        );
        eprintln!("skipped the WASI half: the guest is not built (guest/build.sh)");
    }
    built
}

#[test]
fn the_readme_table_is_the_registry() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("<!-- unscanned-formats -->")
        .expect("README marks the table");
    let end = readme.find("<!-- /unscanned-formats -->").unwrap();
    let rows: Vec<&str> = readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .collect();
    let expected: Vec<String> = registry::TABLE.iter().map(registry::readme_row).collect();
    assert_eq!(
        rows,
        expected,
        "README's table differs from src/formats/registry.rs; expected rows:\n{}",
        expected.join("\n")
    );
}

/// Real files of every unread format, and the format each is reported as.
const CASES: &[(&str, &str)] = &[
    ("keras_lambda.h5", "hdf5"),
    ("keras_lambda.keras", "keras"),
    ("saved_model/saved_model.pb", "tf-savedmodel"),
    ("custom_op.onnx", "onnx"),
    ("model.tflite", "tflite"),
    ("chat.gguf", "gguf"),
    ("handler.mar", "torchserve-mar"),
    ("archive.rar", "rar"),
    ("dump.joblib.bz2", "bzip2"),
    ("dump.joblib.xz", "xz"),
    ("dump.joblib.lzma", "lzma"),
    ("dump.joblib.lz4", "lz4"),
    ("bundle.tar.zst", "zstd"),
];

#[test]
fn every_unread_format_is_unscanned_and_fails_the_gate() {
    for (name, format) in CASES {
        let path = dir().join(name);
        let (code, report, stderr) = scan_json(&[path.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {stderr}");
        assert_eq!(report["exit_code"], 2, "{name}");
        let f = only_file(&report);
        assert_eq!(f["verdict"], "unscanned", "{name}: {f}");
        assert_eq!(f["format"], *format, "{name}: {f}");
        assert_eq!(f["unscanned"][0]["format"], *format, "{name}");
        assert!(f["unscanned"][0].get("member").is_none(), "{name}");
        assert!(
            f["reason"].as_str().unwrap().starts_with("not read:"),
            "{name}: {f}"
        );
        assert_eq!(report["summary"]["verdicts"]["unscanned"], 1, "{name}");
        // The text report says it too.
        let r = run(&["scan", path.to_str().unwrap()]);
        assert_eq!(r.code, 2);
        assert!(
            r.stdout.contains(&format!(": unscanned ({format})")),
            "{name}: {}",
            r.stdout
        );
    }
}

#[test]
fn content_decides_and_the_extension_only_when_content_cannot() {
    let tmp = tempfile::tempdir().unwrap();
    // Renamed: the content still says what it is.
    std::fs::copy(dir().join("custom_op.onnx"), tmp.path().join("weights.bin")).unwrap();
    std::fs::copy(dir().join("keras_lambda.h5"), tmp.path().join("model.pt")).unwrap();
    std::fs::copy(dir().join("chat.gguf"), tmp.path().join("chat.txt")).unwrap();
    // No known content, but a name that says ONNX / SavedModel: not read, so unscanned.
    std::fs::write(
        tmp.path().join("exported.onnx"),
        b"\x0a\x0b\xff\xfe not protobuf",
    )
    .unwrap();
    std::fs::write(tmp.path().join("saved_model.pbtxt"), b"meta_graphs {\n}\n").unwrap();
    // Files that cannot carry code stay skipped.
    std::fs::write(tmp.path().join("notes.txt"), b"plain notes").unwrap();
    std::fs::write(tmp.path().join("config.json"), br#"{"a": 1}"#).unwrap();
    // An HDF5 superblock behind a 512-byte user block, after a text head.
    let mut blocked = vec![b' '; 512];
    blocked.extend_from_slice(&std::fs::read(dir().join("keras_lambda.h5")).unwrap());
    std::fs::write(tmp.path().join("userblock.dat"), &blocked).unwrap();
    let (code, report, _) = scan_json(&[tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    for (name, format) in [
        ("weights.bin", "onnx"),
        ("model.pt", "hdf5"),
        ("chat.txt", "gguf"),
        ("exported.onnx", "onnx"),
        ("saved_model.pbtxt", "tf-savedmodel"),
        ("userblock.dat", "hdf5"),
    ] {
        let f = file(&report, name);
        assert_eq!(f["verdict"], "unscanned", "{name}: {f}");
        assert_eq!(f["unscanned"][0]["format"], format, "{name}: {f}");
    }
    for name in ["exported.onnx", "saved_model.pbtxt"] {
        let reason = file(&report, name)["unscanned"][0]["reason"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(reason.contains("the extension"), "{name}: {reason}");
    }
    assert!(
        file(&report, "userblock.dat")["unscanned"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("offset 512"),
        "{report}"
    );
    // A renamed file also carries the content/extension mismatch finding.
    assert!(file(&report, "weights.bin")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["rule_id"] == "MG016"));
    // Named as what it is: no mismatch.
    let (_, onnx, _) = scan_json(&[dir().join("custom_op.onnx").to_str().unwrap()]);
    assert!(only_file(&onnx)["findings"].as_array().unwrap().is_empty());
    for name in ["notes.txt", "config.json"] {
        assert_eq!(file(&report, name)["verdict"], "skipped", "{name}");
    }
}

#[test]
fn sarif_reports_unscanned_files_and_accepted_ones_as_suppressed() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(dir().join("keras_lambda.h5"), tmp.path().join("model.h5")).unwrap();
    std::fs::copy(dir().join("custom_op.onnx"), tmp.path().join("model.onnx")).unwrap();
    let cfg = tmp.path().join("modelguard.toml");
    std::fs::write(
        &cfg,
        "[[unscanned]]\nformats = [\"onnx\"]\njustification = \"our exports; onnxruntime without custom op libraries\"\n",
    )
    .unwrap();
    let out = tmp.path().join("scan.sarif");
    let r = run(&[
        "scan",
        "--format",
        "sarif",
        "--config",
        cfg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "the h5 is not accepted: {}", r.stderr);
    let sarif: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let run0 = &sarif["runs"][0];
    let rule = run0["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "MG-UNSCANNED")
        .expect("the unscanned rule is described");
    assert_eq!(rule["properties"]["security-severity"], "8.0");
    let results = run0["results"].as_array().unwrap();
    let of = |file: &str| {
        results
            .iter()
            .find(|x| {
                x["ruleId"] == "MG-UNSCANNED"
                    && x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == file
            })
            .unwrap_or_else(|| panic!("no result for {file}: {results:?}"))
    };
    let h5 = of("model.h5");
    assert_eq!(h5["level"], "error");
    assert!(h5.get("suppressions").is_none());
    assert!(h5["message"]["text"].as_str().unwrap().contains("Lambda"));
    let onnx = of("model.onnx");
    assert_eq!(onnx["suppressions"][0]["status"], "accepted");
    assert_eq!(
        onnx["suppressions"][0]["justification"],
        "our exports; onnxruntime without custom op libraries"
    );
    let schema = fixtures().join("sarif-schema-2.1.0.json");
    let check = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))",
            out.to_str().unwrap(),
            schema.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    if stderr.contains("No module named 'jsonschema'") && std::env::var_os("CI").is_none() {
        eprintln!("skipped the schema check: python3 has no jsonschema");
        return;
    }
    assert!(check.status.success(), "SARIF does not validate: {stderr}");
}

#[test]
fn a_config_justification_lowers_unscanned_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("exports")).unwrap();
    std::fs::copy(
        dir().join("custom_op.onnx"),
        tmp.path().join("exports/a.onnx"),
    )
    .unwrap();
    std::fs::copy(dir().join("custom_op.onnx"), tmp.path().join("b.onnx")).unwrap();
    std::fs::copy(dir().join("with_h5.7z"), tmp.path().join("bundle.7z")).unwrap();
    let cfg = tmp.path().join("modelguard.toml");
    std::fs::write(
        &cfg,
        "[[unscanned]]\nformats = [\"onnx\"]\npaths = [\"exports/**\"]\njustification = \"reviewed exports\"\n\
         [[unscanned]]\nformats = [\"hdf5\"]\npaths = [\"bundle.7z\"]\njustification = \"weights only, checked with h5dump\"\n",
    )
    .unwrap();
    let (code, report, stderr) = scan_json(&[
        "--config",
        cfg.to_str().unwrap(),
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "b.onnx is outside the accepted paths: {stderr}");
    let a = file(&report, "exports/a.onnx");
    assert_eq!(a["verdict"], "skipped", "{a}");
    assert!(a["reason"].as_str().unwrap().contains("reviewed exports"));
    assert_eq!(a["unscanned"][0]["justification"], "reviewed exports");
    assert_eq!(file(&report, "b.onnx")["verdict"], "unscanned");
    // The 7z was read; its only unread member is accepted, so its verdict comes from what was read.
    let bundle = file(&report, "bundle.7z");
    assert_eq!(bundle["verdict"], "clean", "{bundle}");
    assert_eq!(bundle["unscanned"][0]["member"], "keras_lambda.h5");
    // Accepting everything that is unread lets the gate pass.
    std::fs::remove_file(tmp.path().join("b.onnx")).unwrap();
    let (code, _, stderr) = scan_json(&[
        "--config",
        cfg.to_str().unwrap(),
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    // A justification is required, and formats must exist.
    std::fs::write(
        &cfg,
        "[[unscanned]]\nformats = [\"onnx\"]\njustification = \" \"\n",
    )
    .unwrap();
    let r = run(&[
        "scan",
        "--config",
        cfg.to_str().unwrap(),
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("justification"), "{}", r.stderr);
    std::fs::write(
        &cfg,
        "[[unscanned]]\nformats = [\"onx\"]\njustification = \"x\"\n",
    )
    .unwrap();
    let r = run(&[
        "scan",
        "--config",
        cfg.to_str().unwrap(),
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown format"), "{}", r.stderr);
}

fn seven_zip_cases(sandbox: &str) {
    let marker = Path::new("/tmp/modelguard-marker-z08");
    let _ = std::fs::remove_file(marker);
    let evil = fixtures().join("malicious/files/z08_nullifai_7z.7z");
    let s = ["--sandbox", sandbox];
    let (code, report, stderr) = scan_json(&[s[0], s[1], evil.to_str().unwrap()]);
    assert_eq!(code, 1, "{sandbox}: {stderr}");
    let f = only_file(&report);
    assert_eq!(f["verdict"], "malicious", "{sandbox}: {f}");
    assert_eq!(f["format"], "7z");
    let findings = f["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|x| x["severity"] == "critical"
            && x["global"] == "posix.system"
            && x["location"]["member"] == "pytorch_model/data.pkl"),
        "{sandbox}: {f}"
    );
    assert!(!marker.exists(), "the payload ran");

    let (code, report, stderr) =
        scan_json(&[s[0], s[1], dir().join("benign.7z").to_str().unwrap()]);
    assert_eq!(code, 0, "{sandbox}: {stderr}");
    let f = only_file(&report);
    assert_eq!(
        (f["verdict"].as_str(), f["format"].as_str()),
        (Some("clean"), Some("7z")),
        "{f}"
    );

    let (code, report, _) = scan_json(&[s[0], s[1], dir().join("with_h5.7z").to_str().unwrap()]);
    assert_eq!(code, 2, "{sandbox}");
    let f = only_file(&report);
    assert_eq!(f["verdict"], "unscanned", "{sandbox}: {f}");
    assert_eq!(f["unscanned"][0]["member"], "keras_lambda.h5");
    assert_eq!(f["unscanned"][0]["format"], "hdf5");

    let (code, report, _) = scan_json(&[s[0], s[1], dir().join("encrypted.7z").to_str().unwrap()]);
    assert_eq!(code, 2, "{sandbox}");
    let f = only_file(&report);
    assert_eq!(f["verdict"], "unscanned", "{sandbox}: {f}");
    assert_eq!(f["unscanned"][0]["format"], "7z-undecodable");
    assert!(f["unscanned"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("encrypted"));

    // Bombs end with a limit error, quickly and within 256 MiB (the test harness's cap is 4 GiB;
    // run_limited enforces the address space).
    for (name, limit) in [
        ("bomb_member.7z", "max_inflated_member"),
        ("bomb_total.7z", "max_archive_inflated"),
    ] {
        let path = dir().join(name);
        let r = run_limited(
            &[
                "scan",
                "--format",
                "json",
                s[0],
                s[1],
                path.to_str().unwrap(),
            ],
            1024,
        );
        assert_eq!(r.code, 2, "{sandbox} {name}: {}", r.stderr);
        let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let f = only_file(&report);
        assert_eq!(f["verdict"], "error", "{sandbox} {name}: {f}");
        assert!(
            f["reason"].as_str().unwrap().contains(limit),
            "{sandbox} {name}: {f}"
        );
        assert!(
            r.elapsed.as_secs() < 30,
            "{sandbox} {name}: {:?}",
            r.elapsed
        );
    }
}

#[test]
fn seven_zip_archives_are_read_in_the_native_jail() {
    seven_zip_cases("native");
}

#[test]
fn seven_zip_archives_are_read_in_the_wasi_guest() {
    if guest_built() {
        seven_zip_cases("wasi");
    }
}

#[test]
fn convert_refuses_seven_zip_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = Path::new("/tmp/modelguard-marker-z08");
    let mut sandboxes = vec!["native"];
    if guest_built() {
        sandboxes.push("wasi");
    }
    for sandbox in sandboxes {
        let out = tmp.path().join("o.safetensors");
        let evil = fixtures().join("malicious/files/z08_nullifai_7z.7z");
        let (r, rep) = convert_with_report(&evil, &out, &["--sandbox", sandbox]);
        assert_eq!(
            r.code, 1,
            "{sandbox}: a payload inside refuses: {}",
            r.stderr
        );
        assert_eq!(rep["verdict"], "malicious");
        assert!(rep["error"]
            .as_str()
            .unwrap()
            .contains("7z archive is not a checkpoint"));
        assert!(!out.exists() && !marker.exists());
        let benign = dir().join("benign.7z");
        let r = run(&[
            "convert",
            benign.to_str().unwrap(),
            out.to_str().unwrap(),
            "--sandbox",
            sandbox,
        ]);
        assert_eq!(r.code, 2, "{sandbox}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("7z archive is not a checkpoint: torch.load cannot open it"),
            "{sandbox}: {}",
            r.stderr
        );
        assert!(!out.exists());
        // Formats modelguard does not read are never converted either.
        let h5 = dir().join("keras_lambda.h5");
        let r = run(&[
            "convert",
            h5.to_str().unwrap(),
            out.to_str().unwrap(),
            "--sandbox",
            sandbox,
        ]);
        assert_eq!(r.code, 2);
        assert!(r.stderr.contains("not read by modelguard"), "{}", r.stderr);
        assert!(!out.exists());
    }
}

#[test]
fn archives_of_arbitrary_files_are_read_member_by_member() {
    let tmp = tempfile::tempdir().unwrap();
    let evil = std::fs::read(fixtures().join("malicious/files/t01_os_system_proto4.pkl")).unwrap();
    // A tar of arbitrary files holding a pickle.
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("bundle/readme.md", &b"# model\n"[..]),
        ("bundle/model.pkl", &evil[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    std::fs::write(tmp.path().join("bundle.tar"), b.into_inner().unwrap()).unwrap();
    // A zip holding the nullifAI 7z: nested archives are read too.
    let sevenz = std::fs::read(fixtures().join("malicious/files/z08_nullifai_7z.7z")).unwrap();
    let mut z = ZipBuilder::new();
    z.stored("release/notes.txt", b"v1")
        .stored("release/model.7z", &sevenz);
    std::fs::write(tmp.path().join("release.zip"), z.finish()).unwrap();
    let (code, report, stderr) = scan_json(&[tmp.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    let tar = file(&report, "bundle.tar");
    assert_eq!(
        (tar["verdict"].as_str(), tar["format"].as_str()),
        (Some("malicious"), Some("tar"))
    );
    assert!(tar["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["location"]["member"] == "bundle/model.pkl" && x["severity"] == "critical"));
    let zip = file(&report, "release.zip");
    assert_eq!(zip["verdict"], "malicious", "{zip}");
    assert!(
        zip["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["location"]["member"] == "release/model.7z/pytorch_model/data.pkl"),
        "{zip}"
    );
    // The committed benign tar.gz: read, clean.
    let (code, report, _) = scan_json(&[dir().join("bundle.tar.gz").to_str().unwrap()]);
    assert_eq!(code, 0);
    let f = only_file(&report);
    assert_eq!(
        (f["verdict"].as_str(), f["format"].as_str()),
        (Some("clean"), Some("gzip")),
        "{f}"
    );
}
