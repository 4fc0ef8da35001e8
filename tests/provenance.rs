//! The provenance commands with the real binary: `verify` (safetensors headers, sha256, OMS
//! signatures made by the real `model-signing`), `hash` (format-independent tensor digests),
//! `diff` (the ROME-style edit of `tests/fixtures/provenance/`, checked against the ground truth
//! torch computed), `--source` (look-alike Hugging Face names) and `--bom` (CycloneDX 1.6,
//! validated against the official schema by `tests/fixtures/bom/validate_bom.py`).
//!
//! Two inputs come from `tests/run.sh`: `MODELGUARD_OMS_FIXTURES` (signatures generated with
//! model-signing, never committed) and `MODELGUARD_BOM_PYTHON` (a Python with
//! cyclonedx-python-lib). Without them the tests that need them skip with the reason; in CI they
//! fail.

mod common;

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn prov(name: &str) -> PathBuf {
    fixtures().join("provenance").join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ground_truth() -> Value {
    serde_json::from_slice(&std::fs::read(prov("ground_truth.json")).unwrap()).unwrap()
}

fn sha256_file(p: &Path) -> String {
    hex(&Sha256::digest(std::fs::read(p).unwrap()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The run's stdout as JSON.
fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", r.stdout, r.stderr))
}

/// `$VAR` as a path, or `None` (with `skipped` printed) when it is unset outside CI.
fn needs(var: &str, what: &str, skipped: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(v) => Some(PathBuf::from(v)),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide {var} ({what}; tests/run.sh sets it)"
            );
            eprintln!("{skipped}: {var} is not set ({what}; tests/run.sh sets it)");
            None
        }
    }
}

fn oms_fixtures() -> Option<PathBuf> {
    let dir = needs(
        "MODELGUARD_OMS_FIXTURES",
        "signatures made by tests/fixtures/signing/make_signatures.py",
        "skipped",
    )?;
    assert!(
        dir.join("expected.json").is_file(),
        "{} holds no complete make_signatures.py run",
        dir.display()
    );
    Some(dir)
}

fn bom_python() -> Option<PathBuf> {
    needs(
        "MODELGUARD_BOM_PYTHON",
        "a Python with tests/fixtures/bom/requirements.txt",
        "skipped the CycloneDX schema check (the other checks ran)",
    )
}

// ---------------------------------------------------------------------------------------------
// verify: safetensors headers

#[test]
fn verify_accepts_a_valid_safetensors_file_in_text_and_json() {
    let file = prov("original.safetensors");
    // The official reader agrees that the fixture is valid (52 tensors).
    assert_eq!(read_safetensors(&file).0.len(), 52);

    let r = run(&["verify", s(&file)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("ok "), "{}", r.stdout);
    assert!(r.stdout.contains("valid: 52 tensors"), "{}", r.stdout);

    let r = run(&["verify", "--format", "json", s(&file)]);
    assert_eq!(r.code, 0);
    let v = json(&r);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["checks", "errors", "exit_code", "ok", "path"]);
    assert_eq!(v["path"], s(&file));
    assert_eq!(v["ok"], true);
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["errors"], serde_json::json!([]));
    assert_eq!(
        v["checks"],
        serde_json::json!([{
            "check": "safetensors",
            "subject": s(&file),
            "ok": true,
            "detail": "valid: 52 tensors",
        }])
    );
}

/// A safetensors file: 8-byte little-endian header length `n` (the real one unless given),
/// the header, then `data`.
fn safetensors(header: &[u8], data: &[u8], n: Option<u64>) -> Vec<u8> {
    let mut out = n.unwrap_or(header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

/// (file name, bytes, what the rejection must say)
fn hostile_safetensors() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let f32x4 = |name: &str, b: u64, e: u64| {
        format!(r#""{name}":{{"dtype":"F32","shape":[4],"data_offsets":[{b},{e}]}}"#)
    };
    vec![
        (
            "length_past_eof.safetensors",
            safetensors(
                format!("{{{}}}", f32x4("w", 0, 16)).as_bytes(),
                &[0; 16],
                Some(4096),
            ),
            "header length 4096 extends beyond the end",
        ),
        (
            "overlap.safetensors",
            safetensors(
                format!("{{{},{}}}", f32x4("a", 0, 16), f32x4("b", 8, 24)).as_bytes(),
                &[0; 24],
                None,
            ),
            "data_offsets [8, 24] overlap tensor `a`",
        ),
        (
            "offsets_out_of_bounds.safetensors",
            safetensors(
                br#"{"w":{"dtype":"F32","shape":[1024],"data_offsets":[0,4096]}}"#,
                &[0; 16],
                None,
            ),
            "data buffer truncated",
        ),
        (
            "bad_dtype.safetensors",
            safetensors(
                br#"{"w":{"dtype":"F33","shape":[4],"data_offsets":[0,16]}}"#,
                &[0; 16],
                None,
            ),
            "unknown dtype `F33`",
        ),
        (
            "duplicate_key.safetensors",
            safetensors(
                format!("{{{},{}}}", f32x4("w", 0, 16), f32x4("w", 16, 32)).as_bytes(),
                &[0; 32],
                None,
            ),
            "duplicate key `w`",
        ),
        (
            "non_utf8.safetensors",
            safetensors(
                b"{\"w\xff\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                &[0; 16],
                None,
            ),
            "not valid UTF-8",
        ),
        (
            // Claims a 200 MB header; refused from the length alone, nothing allocated.
            "huge_header.safetensors",
            safetensors(b"{ }", &[], Some(200_000_000)),
            "exceeds the format's maximum",
        ),
        (
            "shape_mismatch.safetensors",
            safetensors(
                format!("{{{}}}", f32x4("w", 0, 8)).as_bytes(),
                &[0; 8],
                None,
            ),
            "span 8 bytes but F32 shape [4] needs 16",
        ),
        ("too_short.safetensors", vec![1, 2], "too short"),
    ]
}

#[test]
fn verify_rejects_hostile_safetensors_headers_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = hostile_safetensors();
    for (name, bytes, reason) in &cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let r = run(&["verify", s(&path)]);
        assert_eq!(r.code, 1, "{name}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.starts_with("FAILED") && r.stdout.contains(reason),
            "{name}: {}",
            r.stdout
        );
        let v = json(&run(&["verify", "--format", "json", s(&path)]));
        assert_eq!(
            (v["ok"].as_bool(), v["exit_code"].as_i64()),
            (Some(false), Some(1))
        );
        let c = &v["checks"][0];
        assert_eq!(
            (c["check"].as_str(), c["ok"].as_bool()),
            (Some("safetensors"), Some(false))
        );
        let detail = c["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("rejected: ") && detail.contains(reason),
            "{name}: {detail}"
        );
    }
    // A folder: every *.safetensors in it is validated; one bad file fails the folder.
    std::fs::copy(
        prov("original.safetensors"),
        tmp.path().join("good.safetensors"),
    )
    .unwrap();
    let v = json(&run(&["verify", "--format", "json", s(tmp.path())]));
    assert_eq!(v["exit_code"], 1);
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), cases.len() + 1);
    for c in checks {
        let good = c["subject"].as_str().unwrap().ends_with("good.safetensors");
        assert_eq!(c["ok"], good, "{c}");
    }
}

#[test]
fn verify_refuses_a_pickle_posing_as_safetensors_and_a_missing_path() {
    // original.pt is a torch zip: its first 8 bytes make an absurd header length.
    let r = run(&["verify", s(&prov("original.pt"))]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("rejected"), "{}", r.stdout);
    let r = run(&["verify", "/nonexistent/model.safetensors"]);
    assert_eq!(r.code, 2);
    // A folder with nothing to verify is an error, not a pass.
    let tmp = tempfile::tempdir().unwrap();
    let r = run(&["verify", s(tmp.path())]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("nothing to verify"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// verify --sha256

#[test]
fn verify_sha256_right_and_wrong() {
    let gt = ground_truth();
    let file = prov("original.safetensors");
    let want = gt["files"]["original.safetensors"]["sha256"]
        .as_str()
        .unwrap();
    assert_eq!(sha256_file(&file), want);
    for ok in [want.to_string(), want.to_uppercase()] {
        let r = run(&["verify", s(&file), "--sha256", &ok]);
        assert_eq!(r.code, 0, "{}", r.stdout);
    }
    // One wrong hex digit: the hash check fails even though the file itself is valid.
    let wrong = format!("{}0", &want[..63]);
    assert_ne!(wrong, want);
    let v = json(&run(&[
        "verify",
        "--format",
        "json",
        s(&file),
        "--sha256",
        &wrong,
    ]));
    assert_eq!(v["exit_code"], 1);
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2);
    assert_eq!(
        (&checks[0]["check"], &checks[0]["ok"]),
        (&"safetensors".into(), &true.into())
    );
    assert_eq!(
        (&checks[1]["check"], &checks[1]["ok"]),
        (&"sha256".into(), &false.into())
    );
    assert_eq!(
        checks[1]["detail"],
        format!("expected {wrong}, actual {want}")
    );
    // Any file, not only safetensors: a .pt with its ground-truth hash.
    let pt = prov("original.pt");
    let pt_sha = gt["files"]["original.pt"]["sha256"].as_str().unwrap();
    let v = json(&run(&[
        "verify",
        "--format",
        "json",
        s(&pt),
        "--sha256",
        pt_sha,
    ]));
    let sha = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "sha256")
        .unwrap();
    assert_eq!(sha["ok"], true);
}

// ---------------------------------------------------------------------------------------------
// verify --signature --public-key (OMS, made by the real model-signing 1.1.1)

fn oms_case(root: &Path, case: &str) -> PathBuf {
    root.join("cases").join(case).join("tiny-model")
}

fn oms_verify(root: &Path, case: &str, key: &Path, json_out: bool) -> Run {
    let dir = oms_case(root, case);
    let sig = dir.join("model.sig");
    let mut args = vec![
        "verify",
        s(&dir),
        "--signature",
        s(&sig),
        "--public-key",
        s(key),
    ];
    if json_out {
        args.extend(["--format", "json"]);
    }
    run(&args)
}

fn pub_key(root: &Path, name: &str) -> PathBuf {
    root.join("keys").join(format!("{name}.pub.pem"))
}

#[test]
fn verify_accepts_good_p256_and_p384_signatures() {
    let Some(root) = oms_fixtures() else { return };
    for (case, key, curve) in [("good-p256", "p256", "P256"), ("good-p384", "p384", "P384")] {
        let r = oms_verify(&root, case, &pub_key(&root, key), false);
        assert_eq!(r.code, 0, "{case}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains(&format!(
                "valid {curve} signature over 4 files of `tiny-model`"
            )),
            "{case}: {}",
            r.stdout
        );
        let v = json(&oms_verify(&root, case, &pub_key(&root, key), true));
        assert_eq!(
            (v["ok"].as_bool(), v["exit_code"].as_i64()),
            (Some(true), Some(0))
        );
        // The model folder holds no safetensors file: the signature is the only check.
        let checks = v["checks"].as_array().unwrap();
        assert_eq!(checks.len(), 1, "{v}");
        assert_eq!(checks[0]["check"], "signature");
        assert_eq!(checks[0]["ok"], true);
    }
}

#[test]
fn verify_refuses_tampered_extended_forged_and_foreign_signatures() {
    let Some(root) = oms_fixtures() else { return };
    let p256 = pub_key(&root, "p256");
    // (case, key, what the failed check must say)
    let cases = [
        (
            "tampered-file",
            &p256,
            "digest mismatch for file weights.bin",
        ),
        (
            "extra-file",
            &p256,
            "unexpected extra file tokenizer/merges.txt",
        ),
        (
            "missing-file",
            &p256,
            "signed file tokenizer/vocab.txt is missing",
        ),
        (
            "forged-payload",
            &p256,
            "signature does not verify with the given public key",
        ),
        (
            "wrong-key",
            &p256,
            "public key does not match the signature's key hint",
        ),
        (
            "wrong-key-spoofed-hint",
            &p256,
            "signature does not verify with the given public key",
        ),
        (
            "good-p256",
            &pub_key(&root, "p384"),
            "public key does not match the signature's key hint",
        ),
        (
            "shards",
            &p256,
            "unsupported serialization method \"shards\"",
        ),
    ];
    for (case, key, reason) in cases {
        let r = oms_verify(&root, case, key, false);
        assert_eq!(r.code, 1, "{case}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.starts_with("FAILED signature") && r.stdout.contains(reason),
            "{case}: {}",
            r.stdout
        );
        let v = json(&oms_verify(&root, case, key, true));
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["checks"][0]["ok"], false);
        assert!(v["checks"][0]["detail"].as_str().unwrap().contains(reason));
    }
}

#[test]
fn verify_with_an_unusable_key_or_signature_file_is_an_error() {
    let Some(root) = oms_fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    // A private key where the public key belongs is refused too, not used.
    let private = root.join("keys").join("p256.priv.pem");
    for key in [&garbage, &private] {
        let r = oms_verify(&root, "good-p256", key, false);
        assert_eq!(r.code, 2, "{}: {}{}", key.display(), r.stdout, r.stderr);
        assert!(
            r.stderr.contains("not a P-256/P-384 public key"),
            "{}",
            r.stderr
        );
        let v = json(&oms_verify(&root, "good-p256", key, true));
        assert_eq!(
            (v["ok"].as_bool(), v["exit_code"].as_i64()),
            (Some(false), Some(2))
        );
        assert_eq!(v["checks"], serde_json::json!([]));
        assert!(v["errors"][0]
            .as_str()
            .unwrap()
            .contains("not a P-256/P-384 public key"));
    }
    let dir = oms_case(&root, "good-p256");
    let key = pub_key(&root, "p256");
    // A signature file that does not exist: an error (2), not a failed check (1).
    let r = run(&[
        "verify",
        s(&dir),
        "--signature",
        s(&tmp.path().join("absent.sig")),
        "--public-key",
        s(&key),
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    // --signature needs --public-key (and the other way round).
    let r = run(&["verify", s(&dir), "--signature", s(&dir.join("model.sig"))]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--public-key"), "{}", r.stderr);
}

#[test]
fn verify_checks_the_safetensors_and_the_signature_of_a_signed_folder() {
    let Some(root) = oms_fixtures() else { return };
    let key = pub_key(&root, "p256");
    let v = json(&oms_verify(&root, "good-safetensors", &key, true));
    assert_eq!(v["exit_code"], 0, "{v}");
    let kinds: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["safetensors", "signature"]);

    // One bit flipped in the tensor data: still a perfectly valid safetensors file, so only the
    // signature can tell.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny-model");
    std::fs::create_dir(&dir).unwrap();
    let src = oms_case(&root, "good-safetensors");
    for f in ["config.json", "model.safetensors", "model.sig"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let st = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&st).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&st, &bytes).unwrap();
    let r = run(&[
        "verify",
        "--format",
        "json",
        s(&dir),
        "--signature",
        s(&dir.join("model.sig")),
        "--public-key",
        s(&key),
    ]);
    let v = json(&r);
    assert_eq!(v["exit_code"], 1, "{v}");
    assert_eq!(v["checks"][0]["check"], "safetensors");
    assert_eq!(v["checks"][0]["ok"], true);
    assert_eq!(v["checks"][1]["check"], "signature");
    assert_eq!(v["checks"][1]["ok"], false);
    assert!(v["checks"][1]["detail"]
        .as_str()
        .unwrap()
        .contains("digest mismatch for file model.safetensors"));
}

// ---------------------------------------------------------------------------------------------
// hash

/// name -> (dtype, shape, hex digest)
type Digests = BTreeMap<String, (String, Vec<u64>, String)>;

/// `hash --format json PATH`: the report and its tensor digests.
fn hash(path: &Path) -> (Value, Digests) {
    let r = run(&["hash", "--format", "json", s(path)]);
    assert_eq!(r.code, 0, "{}: {}", path.display(), r.stderr);
    let v = json(&r);
    let mut tensors = BTreeMap::new();
    for t in v["tensors"].as_array().unwrap() {
        let shape = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        let prev = tensors.insert(
            t["name"].as_str().unwrap().to_string(),
            (
                t["dtype"].as_str().unwrap().to_string(),
                shape,
                t["sha256"].as_str().unwrap().to_string(),
            ),
        );
        assert!(prev.is_none(), "{} listed twice", t["name"]);
    }
    assert_eq!(v["tensor_count"].as_u64().unwrap() as usize, tensors.len());
    (v, tensors)
}

/// The set digest as src/provenance/digest.rs documents it, from (name, hex digest) pairs.
fn set_digest<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let mut sorted: Vec<_> = pairs.collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha256::new();
    h.update(b"modelguard-tensor-set-v1\0");
    for (name, digest) in sorted {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        let raw: Vec<u8> = (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&digest[i..i + 2], 16).unwrap())
            .collect();
        h.update(raw);
    }
    hex(&h.finalize())
}

#[test]
fn hash_of_a_pt_equals_hash_of_its_conversion() {
    let tmp = tempfile::tempdir().unwrap();
    let pt = prov("original.pt");
    let out = tmp.path().join("original.safetensors");
    let r = run(&["convert", "-q", s(&pt), s(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (vp, tp) = hash(&pt);
    let (vo, to) = hash(&out);
    assert_eq!(vp["format"], "torch-zip");
    assert_eq!(vo["format"], "safetensors");
    // The file hashes differ (different containers), the tensor digests do not.
    assert_eq!(
        vp["sha256"],
        ground_truth()["files"]["original.pt"]["sha256"]
    );
    assert_eq!(vo["sha256"].as_str().unwrap(), sha256_file(&out));
    assert_ne!(vp["sha256"], vo["sha256"]);
    assert_eq!(tp.len(), 53);
    assert_eq!(tp, to);
    assert_eq!(vp["tensors_sha256"], vo["tensors_sha256"]);
    // The set digest is what the documented formula gives over the listed tensor digests.
    assert_eq!(
        vp["tensors_sha256"].as_str().unwrap(),
        set_digest(tp.iter().map(|(n, (_, _, d))| (n, d)))
    );
    assert_eq!(vp["findings"], serde_json::json!([]));
}

#[test]
fn hash_agrees_across_formats_except_for_the_tied_lm_head() {
    let gt = ground_truth();
    let digest = &gt["digest"];
    let common: Vec<String> = digest["common_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert_eq!(common.len(), 52);
    let (vp, tp) = hash(&prov("original.pt"));
    let (vs, ts) = hash(&prov("original.safetensors"));
    assert_eq!(ts.keys().cloned().collect::<Vec<_>>(), common);
    let only_pt: Vec<&String> = tp.keys().filter(|n| !ts.contains_key(*n)).collect();
    assert_eq!(only_pt, ["lm_head.weight"]);
    assert_eq!(digest["only_in_pt"], serde_json::json!(["lm_head.weight"]));
    for name in &common {
        assert_eq!(tp[name], ts[name], "{name}");
        let want = &digest["tensors"][name];
        assert_eq!(tp[name].0, want["dtype"].as_str().unwrap(), "{name}");
        let shape: Vec<u64> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(tp[name].1, shape, "{name}");
    }
    // The whole-set digests differ only because the .pt also names the tied lm_head.weight:
    // without it, the .pt's digests give exactly the safetensors file's set digest.
    assert_ne!(vp["tensors_sha256"], vs["tensors_sha256"]);
    assert_eq!(
        vs["tensors_sha256"].as_str().unwrap(),
        set_digest(
            tp.iter()
                .filter(|(n, _)| *n != "lm_head.weight")
                .map(|(n, (_, _, d))| (n, d))
        )
    );
}

#[test]
fn tensor_digests_follow_the_documented_formula() {
    // Recomputed from the bytes the official safetensors crate reads, independently of
    // modelguard; and those bytes are the ones torch saw (ground truth sha256_raw_le).
    let gt = ground_truth();
    let file = prov("original.safetensors");
    let (tensors, _) = read_safetensors(&file);
    let (_, got) = hash(&file);
    for (name, (dtype, shape, bytes)) in &tensors {
        assert_eq!(
            hex(&Sha256::digest(bytes)),
            gt["digest"]["tensors"][name]["sha256_raw_le"]
                .as_str()
                .unwrap(),
            "{name}"
        );
        let dtype = dtype.to_uppercase();
        let mut h = Sha256::new();
        h.update(b"modelguard-tensor-v1\0");
        for field in [name.as_bytes(), dtype.as_bytes()] {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field);
        }
        h.update((shape.len() as u64).to_le_bytes());
        for d in shape {
            h.update((*d as u64).to_le_bytes());
        }
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
        assert_eq!(got[name].2, hex(&h.finalize()), "{name}");
    }
    assert_eq!(got.len(), tensors.len());
}

#[test]
fn hash_of_a_malicious_pickle_reports_its_findings_and_never_runs_it() {
    // Hashing reads tensors, it does not load the model: the jail reads the pickle, the
    // findings are reported (exit 0), and the payload never runs.
    for case in manifest("malicious/manifest.json")
        .iter()
        .filter(|c| ["t01", "z01"].contains(&c["case"].as_str().unwrap()))
    {
        let file = fixtures()
            .join("malicious")
            .join(case["file"].as_str().unwrap());
        let marker = Path::new(case["marker"].as_str().unwrap());
        let _ = std::fs::remove_file(marker);
        let (v, tensors) = hash(&file);
        assert!(tensors.is_empty(), "{v}");
        assert_eq!(v["sha256"].as_str().unwrap(), sha256_file(&file));
        let findings = v["findings"].as_array().unwrap();
        assert!(
            findings
                .iter()
                .any(|f| f["rule"] == "MG001" && f["severity"] == "critical"),
            "{v}"
        );
        let r = run(&["hash", s(&file)]);
        assert_eq!(r.code, 0);
        assert!(r.stderr.contains("[critical] MG001"), "{}", r.stderr);
        assert!(!marker.exists(), "{} ran its payload", case["case"]);
    }
    // An object array is a pickle numpy.load runs: read like one, its payload is a finding and
    // it holds no tensors (numpy.load would return Python objects, not numeric arrays).
    let npy = fixtures().join("malicious/files/z10_object_array.npy");
    let marker = Path::new("/tmp/modelguard-marker-z10");
    let _ = std::fs::remove_file(marker);
    let (v, tensors) = hash(&npy);
    assert!(tensors.is_empty(), "{v}");
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "MG001" && f["severity"] == "critical"),
        "{v}"
    );
    assert!(!marker.exists(), "z10 ran its payload");
}

// ---------------------------------------------------------------------------------------------
// diff

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| {
            x.as_str()
                .or_else(|| x["name"].as_str())
                .unwrap()
                .to_string()
        })
        .collect()
}

/// `diff --format json` of a ground-truth pair, checked against what torch computed.
fn check_pair(pair: &Value) {
    let (a, b) = (pair["a"].as_str().unwrap(), pair["b"].as_str().unwrap());
    let r = run(&["diff", "--format", "json", s(&prov(a)), s(&prov(b))]);
    let v = json(&r);
    let what = format!("{a} vs {b}");
    let differs = !pair["differing"].as_array().unwrap().is_empty()
        || !pair["only_in_a"].as_array().unwrap().is_empty()
        || !pair["only_in_b"].as_array().unwrap().is_empty();
    assert_eq!(r.code, if differs { 1 } else { 0 }, "{what}: {v}");
    assert_eq!(v["exit_code"], r.code);
    assert_eq!(v["common"], pair["num_common"], "{what}");
    assert_eq!(names(&v["changed"]), names(&pair["differing"]), "{what}");
    assert_eq!(names(&v["only_in_a"]), names(&pair["only_in_a"]), "{what}");
    assert_eq!(names(&v["only_in_b"]), names(&pair["only_in_b"]), "{what}");
    assert_eq!(
        names(&v["retyped"]),
        names(&pair["dtype_or_shape_mismatch"]),
        "{what}"
    );
    assert_eq!(
        v["identical"].as_u64().unwrap(),
        pair["num_common"].as_u64().unwrap() - pair["differing"].as_array().unwrap().len() as u64,
        "{what}"
    );
    for c in v["changed"].as_array().unwrap() {
        let want = &pair["differing_details"][c["name"].as_str().unwrap()];
        assert_eq!(c["dtype"], want["dtype"], "{what}");
        assert_eq!(c["shape"], want["shape"], "{what}");
        assert_eq!(c["elements"], want["num_elements"], "{what}");
        assert_eq!(c["differing"], want["num_differing_elements"], "{what}");
        // Both sides work in float64 on the same float32 values; 1e-6 relative leaves room for
        // summation order (and even float32 accumulation of the L2 norms), nothing more.
        for (got, want) in [
            (&c["max_abs_diff"], &want["max_abs_diff"]),
            (&c["relative_l2"], &want["relative_l2_change"]),
        ] {
            let (g, w) = (got.as_f64().unwrap(), want.as_f64().unwrap());
            assert!(close(g, w, 1e-6), "{what}: {g} vs {w}");
        }
    }
}

#[test]
fn diff_names_the_edited_tensor_and_nothing_else() {
    let gt = ground_truth();
    let pairs = gt["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 3);
    for pair in pairs.iter().chain(gt["extra_pairs"].as_array().unwrap()) {
        check_pair(pair);
    }
    // The three pairs the ground truth's README spells out, stated plainly as well.
    let edited = "transformer.h.2.mlp.c_proj.weight";
    let r = run(&["diff", s(&prov("original.pt")), s(&prov("edited.pt"))]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("53 common tensors: 52 identical, 1 changed, 0 changed dtype or shape; 0 only in A, 0 only in B"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "  {edited}  F32 [192, 48]: 9216/9216 elements differ, max |Δ| 6.309e-4, relative L2 1.000e-2"
        )),
        "{}",
        r.stdout
    );
    let v = json(&run(&[
        "diff",
        "--format",
        "json",
        s(&prov("original.pt")),
        s(&prov("edited.safetensors")),
    ]));
    assert_eq!(names(&v["changed"]), [edited]);
    assert_eq!(names(&v["only_in_a"]), ["lm_head.weight"]);
    assert_eq!(
        (v["a_format"].as_str(), v["b_format"].as_str()),
        (Some("torch-zip"), Some("safetensors"))
    );
    let v = json(&run(&[
        "diff",
        "--format",
        "json",
        s(&prov("original.safetensors")),
        s(&prov("original.pt")),
    ]));
    assert_eq!(v["changed"], serde_json::json!([]));
    assert_eq!(names(&v["only_in_b"]), ["lm_head.weight"]);
    assert_eq!(v["exit_code"], 1);
}

#[test]
fn diff_of_a_model_with_itself_or_its_conversion_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let pt = prov("original.pt");
    let out = tmp.path().join("converted.safetensors");
    assert_eq!(run(&["convert", "-q", s(&pt), s(&out)]).code, 0);
    for (a, b) in [
        (pt.clone(), pt.clone()),
        (prov("edited.safetensors"), prov("edited.safetensors")),
        (pt.clone(), out.clone()),
    ] {
        let r = run(&["diff", s(&a), s(&b)]);
        assert_eq!(
            r.code,
            0,
            "{} vs {}: {}",
            a.display(),
            b.display(),
            r.stdout
        );
        let v = json(&run(&["diff", "--format", "json", s(&a), s(&b)]));
        assert_eq!(v["identical"], v["common"]);
        assert_eq!(v["exit_code"], 0);
    }
    // An unreadable side is an error, not "different".
    let r = run(&["diff", s(&pt), "/nonexistent.pt"]);
    assert_eq!(r.code, 2);
}

// ---------------------------------------------------------------------------------------------
// --source

const LOOKALIKES: [(&str, &str); 3] = [
    ("hf://EleuterAI/gpt-j-6B", "EleutherAI"),
    ("hf://meta-1lama/Llama-2-7b-hf", "meta-llama"),
    ("hf://rnicrosoft/phi-2", "microsoft"),
];

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_lookalike_source_refuses_the_conversion() {
    for (source, real) in LOOKALIKES {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("model.safetensors");
        let (r, report) = convert_with_report(&prov("original.pt"), &out, &["--source", source]);
        assert_eq!(r.code, 1, "{source}: {}", r.stderr);
        assert_eq!(report["exit_code"], 1);
        assert_eq!(report["verdict"], "malicious");
        let f = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == "MG020")
            .unwrap_or_else(|| panic!("{source}: no MG020 in {report}"));
        assert_eq!(f["severity"], "high");
        let msg = f["message"].as_str().unwrap();
        assert!(msg.contains(source) && msg.contains(real), "{msg}");
        // Nothing written: no output, no temporary file.
        assert!(!out.exists());
        assert_eq!(entries(tmp.path()), Vec::<String>::new());
    }
}

#[test]
fn the_real_source_converts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("model.safetensors");
    let (r, report) = convert_with_report(
        &prov("original.pt"),
        &out,
        &["--source", "hf://EleutherAI/gpt-j-6B@main"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(report["findings"], serde_json::json!([]));
    assert_eq!(read_safetensors(&out).0.len(), 53);
}

#[test]
fn a_malformed_source_is_an_error() {
    // A NUL cannot be passed on a command line at all (execve ends the string there), so the
    // control character here is U+0001.
    for source in ["hf://a/b/c", "hf://x\u{1}y/z", "hf://org/name@", ""] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("model.safetensors");
        let r = run(&[
            "convert",
            s(&prov("original.pt")),
            s(&out),
            "--source",
            source,
        ]);
        assert_eq!(r.code, 2, "{source:?}: {}", r.stderr);
        assert!(r.stderr.contains("--source"), "{}", r.stderr);
        assert!(!out.exists());
        let r = run(&["scan", "--source", source, s(&prov("original.pt"))]);
        assert_eq!(r.code, 2, "{source:?}: {}", r.stderr);
    }
}

#[test]
fn scan_reports_a_lookalike_source_on_every_file() {
    let files = [prov("original.pt"), prov("original.safetensors")];
    let mut args = vec!["scan", "--format", "json"];
    args.extend(files.iter().map(|p| s(p)));
    let r = run(&args);
    assert_eq!(r.code, 0, "without --source both are clean: {}", r.stdout);
    for (source, _) in LOOKALIKES {
        let mut with = args.clone();
        with.extend(["--source", source]);
        let r = run(&with);
        assert_eq!(r.code, 1, "{source}");
        let v = json(&r);
        let scanned = v["files"].as_array().unwrap();
        assert_eq!(scanned.len(), files.len());
        for f in scanned {
            assert!(
                f["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["rule_id"] == "MG020" && x["severity"] == "high"),
                "{source}: {f}"
            );
            assert_eq!(f["verdict"], "malicious");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// --bom

/// Runs validate_bom.py on `bom`; `None` when no validator Python is configured (outside CI).
fn validate_bom(bom: &Path) -> Option<()> {
    let python = bom_python()?;
    let script = fixtures().join("bom/validate_bom.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(bom)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(2),
        "the validator could not run (MODELGUARD_BOM_PYTHON={}):\n{text}",
        python.display()
    );
    assert!(
        out.status.success(),
        "{} is not valid CycloneDX 1.6:\n{text}\n{}",
        bom.display(),
        std::fs::read_to_string(bom).unwrap()
    );
    // All three checks ran and passed (the library's, plain jsonschema's, the spec rules).
    assert_eq!(text.matches(": ok").count(), 3, "{text}");
    Some(())
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn sha_of(component: &Value) -> &str {
    let h = &component["hashes"][0];
    assert_eq!(h["alg"], "SHA-256", "{component}");
    h["content"].as_str().unwrap()
}

fn props(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_string(),
                        p["value"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn conversion_bom_records_output_input_source_and_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let input = prov("original.pt");
    let out = tmp.path().join("model.safetensors");
    let bom_path = tmp.path().join("bom.json");
    let (r, report) = convert_with_report(
        &input,
        &out,
        &[
            "--source",
            "hf://EleutherAI/gpt-j-6B@main",
            "--bom",
            s(&bom_path),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bom = read_json(&bom_path);
    assert_eq!(
        (bom["bomFormat"].as_str(), bom["specVersion"].as_str()),
        (Some("CycloneDX"), Some("1.6"))
    );
    let output = &bom["metadata"]["component"];
    assert_eq!(output["type"], "machine-learning-model");
    assert_eq!(output["name"], "model.safetensors");
    assert_eq!(sha_of(output), sha256_file(&out));
    assert_eq!(
        props(&output["modelCard"]["properties"])["modelguard:tensor_count"],
        "53"
    );
    let ancestors = output["pedigree"]["ancestors"].as_array().unwrap();
    assert_eq!(ancestors.len(), 1);
    let input_c = &ancestors[0];
    assert_eq!(sha_of(input_c), sha256_file(&input));
    assert_eq!(
        sha_of(input_c),
        ground_truth()["files"]["original.pt"]["sha256"]
    );
    assert_eq!(input_c["purl"], "pkg:huggingface/EleutherAI/gpt-j-6B@main");
    assert_eq!(input_c["version"], "main");
    assert_eq!(
        input_c["externalReferences"][0]["url"],
        "https://huggingface.co/EleutherAI/gpt-j-6B"
    );
    assert_eq!(
        props(&input_c["properties"])["modelguard:source"],
        "hf://EleutherAI/gpt-j-6B@main"
    );
    // The sandbox and each isolation layer, as the conversion report saw them.
    let workflow = &bom["formulation"][0]["workflows"][0];
    let run_props = props(&workflow["properties"]);
    assert_eq!(run_props["modelguard:sandbox"], "native");
    let layers = report["sandbox"]
        .as_object()
        .expect("the report lists the layers");
    assert_eq!(layers.len(), 4);
    for (layer, status) in layers {
        assert_eq!(
            run_props[&format!("modelguard:layer:{layer}")],
            status["status"].as_str().unwrap(),
            "{layer}"
        );
    }
    assert_eq!(workflow["outputs"][0]["resource"]["ref"], "model-output");
    assert_eq!(workflow["inputs"][0]["resource"]["ref"], "model-input");
    assert!(
        bom.get("vulnerabilities").is_none(),
        "a clean conversion has no findings"
    );
    validate_bom(&bom_path);
}

#[test]
fn conversion_bom_without_source_and_with_findings() {
    let tmp = tempfile::tempdir().unwrap();
    // Plain: no purl, no source.
    let input = prov("original.pt");
    let out = tmp.path().join("a.safetensors");
    let bom_path = tmp.path().join("a.json");
    let r = run(&["convert", "-q", s(&input), s(&out), "--bom", s(&bom_path)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bom = read_json(&bom_path);
    let output = &bom["metadata"]["component"];
    assert_eq!(sha_of(output), sha256_file(&out));
    let input_c = &output["pedigree"]["ancestors"][0];
    assert_eq!(sha_of(input_c), sha256_file(&input));
    assert!(input_c.get("purl").is_none(), "{input_c}");
    assert!(!props(&input_c["properties"]).contains_key("modelguard:source"));
    validate_bom(&bom_path);

    // A checkpoint with medium findings (zeroed CRCs) still converts; the findings are
    // vulnerabilities of the input.
    let input = fixtures().join("models/zip_no_crc.pt");
    let out = tmp.path().join("b.safetensors");
    let bom_path = tmp.path().join("b.json");
    let r = run(&["convert", "-q", s(&input), s(&out), "--bom", s(&bom_path)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bom = read_json(&bom_path);
    assert_eq!(sha_of(&bom["metadata"]["component"]), sha256_file(&out));
    let vulns = bom["vulnerabilities"].as_array().unwrap();
    assert!(!vulns.is_empty());
    for v in vulns {
        assert_eq!(v["id"], "MG013", "{v}");
        assert_eq!(v["ratings"][0]["severity"], "medium");
        assert_eq!(v["affects"][0]["ref"], "model-input");
    }
    validate_bom(&bom_path);
}

#[test]
fn a_refused_conversion_still_writes_its_bom() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("model.safetensors");
    let bom_path = tmp.path().join("bom.json");
    let r = run(&[
        "convert",
        "-q",
        s(&prov("original.pt")),
        s(&out),
        "--source",
        "hf://EleuterAI/gpt-j-6B",
        "--bom",
        s(&bom_path),
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!out.exists());
    let bom = read_json(&bom_path);
    // Nothing was produced: no output component, no formulation; the input and the finding.
    assert!(bom["metadata"].get("component").is_none(), "{bom}");
    assert!(bom.get("formulation").is_none());
    let components = bom["components"].as_array().unwrap();
    assert_eq!(components.len(), 1);
    assert_eq!(components[0]["name"], "original.pt");
    let vulns = bom["vulnerabilities"].as_array().unwrap();
    assert_eq!(vulns.len(), 1);
    assert_eq!(vulns[0]["id"], "MG020");
    assert_eq!(vulns[0]["ratings"][0]["severity"], "high");
    assert_eq!(vulns[0]["affects"][0]["ref"], components[0]["bom-ref"]);
    validate_bom(&bom_path);

    // A malicious checkpoint refused by its own findings: the BOM names the file by hash.
    let case = &manifest("malicious/manifest.json")[0];
    let evil = fixtures()
        .join("malicious")
        .join(case["file"].as_str().unwrap());
    let bom_path = tmp.path().join("evil.json");
    let r = run(&["convert", "-q", s(&evil), s(&out), "--bom", s(&bom_path)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!out.exists());
    let bom = read_json(&bom_path);
    let c = &bom["components"][0];
    assert_eq!(sha_of(c), sha256_file(&evil));
    assert!(bom["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["id"] == "MG001" && v["ratings"][0]["severity"] == "critical"));
    validate_bom(&bom_path);
}

#[test]
fn scan_bom_lists_every_file_with_its_hash_and_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let malicious = manifest("malicious/manifest.json");
    let evil: Vec<PathBuf> = malicious
        .iter()
        .filter(|c| ["t01", "z01"].contains(&c["case"].as_str().unwrap()))
        .map(|c| {
            fixtures()
                .join("malicious")
                .join(c["file"].as_str().unwrap())
        })
        .collect();
    assert_eq!(evil.len(), 2);
    let clean = [prov("original.pt"), prov("edited.safetensors")];
    let files: Vec<&PathBuf> = clean.iter().chain(&evil).collect();
    // The default text report: the BOM still carries every file's hash.
    let bom_path = tmp.path().join("scan.json");
    let mut args = vec!["scan", "--bom", s(&bom_path)];
    args.extend(files.iter().map(|p| s(p)));
    let r = run(&args);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let bom = read_json(&bom_path);
    assert!(bom.get("formulation").is_none());
    let components = bom["components"].as_array().unwrap();
    assert_eq!(components.len(), files.len());
    let mut refs = BTreeMap::new();
    for f in &files {
        let c = components
            .iter()
            .find(|c| c["name"] == s(f))
            .unwrap_or_else(|| panic!("{} not in the BOM", f.display()));
        assert_eq!(sha_of(c), sha256_file(f), "{}", f.display());
        refs.insert(s(f).to_string(), c["bom-ref"].as_str().unwrap().to_string());
    }
    let vulns = bom["vulnerabilities"].as_array().unwrap();
    for f in &evil {
        assert!(
            vulns.iter().any(|v| v["id"] == "MG001"
                && v["ratings"][0]["severity"] == "critical"
                && v["affects"][0]["ref"] == refs[s(f)]),
            "no MG001 for {}",
            f.display()
        );
    }
    for f in &clean {
        assert!(
            !vulns.iter().any(|v| v["affects"][0]["ref"] == refs[s(f)]),
            "a finding on clean {}",
            f.display()
        );
    }
    validate_bom(&bom_path);

    // With a look-alike source every file gets MG020.
    let bom_path = tmp.path().join("scan-source.json");
    let mut args = vec![
        "scan",
        "--format",
        "json",
        "--source",
        "hf://meta-1lama/Llama-2-7b-hf",
        "--bom",
        s(&bom_path),
    ];
    args.extend(clean.iter().map(|p| s(p)));
    assert_eq!(run(&args).code, 1);
    let bom = read_json(&bom_path);
    let vulns = bom["vulnerabilities"].as_array().unwrap();
    assert_eq!(vulns.len(), clean.len());
    assert!(vulns.iter().all(|v| v["id"] == "MG020"));
    validate_bom(&bom_path);
}
