//! The OMS (OpenSSF model-signing) verifier, `modelguard::provenance::oms`, against signatures
//! made by the real `model-signing` 1.1.1 package (`tests/fixtures/signing/make_signatures.py`,
//! which also checks every case with upstream's own verifier), plus bundles re-signed here with
//! the fixture keys to reach checks that the upstream signer never produces.
//!
//! The fixtures are generated, not committed (they hold test private keys): `tests/run.sh` makes
//! them in `target/oms-fixtures` and sets `MODELGUARD_OMS_FIXTURES`. Without it the tests skip
//! with the reason; in CI they fail.

use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use modelguard::provenance::oms::{
    verify_model, verify_model_with_signature_file, Curve, Verified, VerifyError,
};
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const MODEL: &str = "tiny-model";
const FILES: [&str; 4] = [
    "README.md",
    "config.json",
    "tokenizer/vocab.txt",
    "weights.bin",
];

/// `$MODELGUARD_OMS_FIXTURES`, checked to hold a complete generator run; `None` (after printing
/// why) when it is unset outside CI.
fn fixture_root() -> Option<&'static Path> {
    static ROOT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| match std::env::var_os("MODELGUARD_OMS_FIXTURES") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join("expected.json").is_file(),
                "MODELGUARD_OMS_FIXTURES={} has no expected.json: run \
                 tests/fixtures/signing/make_signatures.py into it",
                dir.display()
            );
            Some(dir)
        }
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must generate the OMS fixtures (tests/run.sh sets MODELGUARD_OMS_FIXTURES)"
            );
            None
        }
    })
    .as_deref()
}

/// Every test starts with `let Some(_) = fx() else { return };`.
fn fx() -> Option<&'static Path> {
    let root = fixture_root();
    if root.is_none() {
        eprintln!(
            "skipped: MODELGUARD_OMS_FIXTURES is not set; tests/run.sh generates the signatures \
             with model-signing (tests/fixtures/signing/make_signatures.py)"
        );
    }
    root
}

fn fixtures() -> &'static Path {
    fixture_root().expect("checked by fx()")
}

fn model(case: &str) -> PathBuf {
    fixtures().join("cases").join(case).join(MODEL)
}

fn key(name: &str) -> String {
    fs::read_to_string(fixtures().join("keys").join(format!("{name}.pub.pem"))).unwrap()
}

fn sig(case: &str) -> Vec<u8> {
    fs::read(model(case).join("model.sig")).unwrap()
}

fn verify_case(case: &str, key_name: &str) -> Result<Verified, VerifyError> {
    verify_model(&model(case), &sig(case), &key(key_name), &[])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn variant(r: &Result<Verified, VerifyError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => {
            let dbg = format!("{e:?}");
            dbg.split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap()
                .to_owned()
        }
    }
}

/// Checks the result against digests computed here, independently of the crate.
fn assert_good(v: &Verified, case: &str, curve: Curve) {
    assert_eq!(v.curve, curve);
    assert_eq!(v.model_name, MODEL);
    let paths: Vec<&str> = v.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, FILES);
    let mut root = Sha256::new();
    for f in &v.files {
        let bytes = fs::read(model(case).join(&f.path)).unwrap();
        assert_eq!(f.sha256, sha256_hex(&bytes), "{}", f.path);
        root.update(Sha256::digest(&bytes));
    }
    assert_eq!(v.root_sha256, hex(&root.finalize()));
    for p in [
        "model.sig",
        ".git",
        ".gitignore",
        ".gitattributes",
        ".github",
    ] {
        assert!(v.signed_ignore_paths.iter().any(|s| s == p), "{p}");
    }
}

#[test]
fn expected_json_matches_every_fixture() {
    let Some(_) = fx() else { return };
    let exp: Value =
        serde_json::from_slice(&fs::read(fixtures().join("expected.json")).unwrap()).unwrap();
    assert_eq!(exp["model_signing_version"], "1.1.1");
    let cases = exp["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 13);
    for (name, c) in cases {
        // The generator checked each case with upstream's own verifier.
        assert_eq!(
            c["upstream"], c["upstream_want"],
            "{name}: upstream outcome"
        );
        let got = variant(&verify_case(name, c["key"].as_str().unwrap()));
        assert_eq!(got, c["rust"].as_str().unwrap(), "{name}");
    }
}

#[test]
fn good_p256_verifies() {
    let Some(_) = fx() else { return };
    let v = verify_case("good-p256", "p256").unwrap();
    assert_good(&v, "good-p256", Curve::P256);
    assert!(v.key_hint_checked);
}

#[test]
fn good_p384_verifies() {
    let Some(_) = fx() else { return };
    let v = verify_case("good-p384", "p384").unwrap();
    assert_good(&v, "good-p384", Curve::P384);
    assert!(v.key_hint_checked);
}

#[test]
fn bundle_without_hint_verifies_but_says_so() {
    let Some(_) = fx() else { return };
    let v = verify_case("good-p256-no-hint", "p256").unwrap();
    assert_good(&v, "good-p256-no-hint", Curve::P256);
    assert!(!v.key_hint_checked);
    // With no hint, only the ECDSA check stands between another key and success.
    let e = verify_case("good-p256-no-hint", "other-p256").unwrap_err();
    assert!(matches!(e, VerifyError::SignatureInvalid), "{e:?}");
}

#[test]
fn tampered_file_is_a_digest_mismatch() {
    let Some(_) = fx() else { return };
    match verify_case("tampered-file", "p256") {
        Err(VerifyError::DigestMismatch {
            path,
            signed,
            actual,
        }) => {
            assert_eq!(path, "weights.bin");
            let bytes = fs::read(model("tampered-file").join("weights.bin")).unwrap();
            assert_eq!(actual, sha256_hex(&bytes));
            assert_ne!(signed, actual);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn extra_file_is_unexpected() {
    let Some(_) = fx() else { return };
    match verify_case("extra-file", "p256") {
        Err(VerifyError::UnexpectedFile(p)) => assert_eq!(p, "tokenizer/merges.txt"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn removed_file_is_missing() {
    let Some(_) = fx() else { return };
    match verify_case("missing-file", "p256") {
        Err(VerifyError::MissingFile(p)) => assert_eq!(p, "tokenizer/vocab.txt"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn forged_payload_fails_the_signature() {
    let Some(_) = fx() else { return };
    // The forged manifest matches the tampered directory, so only the ECDSA check can fail.
    let e = verify_case("forged-payload", "p256").unwrap_err();
    assert!(matches!(e, VerifyError::SignatureInvalid), "{e:?}");
}

#[test]
fn other_signer_is_caught_by_hint_then_by_signature() {
    let Some(_) = fx() else { return };
    let e = verify_case("wrong-key", "p256").unwrap_err();
    assert!(matches!(e, VerifyError::KeyMismatch { .. }), "{e:?}");
    let e = verify_case("wrong-key-spoofed-hint", "p256").unwrap_err();
    assert!(matches!(e, VerifyError::SignatureInvalid), "{e:?}");
    // Sanity: the same bundle is fine with its real key once the hint is not spoofed.
    verify_case("wrong-key", "other-p256").unwrap();
}

#[test]
fn curve_mismatch_is_a_key_mismatch() {
    let Some(_) = fx() else { return };
    let e = verify_case("good-p384", "p256").unwrap_err();
    assert!(matches!(e, VerifyError::KeyMismatch { .. }), "{e:?}");
    let e = verify_case("good-p256", "p384").unwrap_err();
    assert!(matches!(e, VerifyError::KeyMismatch { .. }), "{e:?}");
}

#[test]
fn relabelled_payload_type_is_refused() {
    let Some(_) = fx() else { return };
    match verify_case("wrong-payload-type", "p256") {
        Err(VerifyError::UnsupportedPayloadType(t)) => assert_eq!(t, "application/json"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn shards_and_blake2_are_unsupported() {
    let Some(_) = fx() else { return };
    match verify_case("shards", "p256") {
        Err(VerifyError::UnsupportedSerialization(m)) => assert_eq!(m, "shards"),
        other => panic!("{other:?}"),
    }
    match verify_case("blake2", "p256") {
        Err(VerifyError::UnsupportedHashType(h)) => assert_eq!(h, "blake2b"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_public_key_is_refused() {
    let Some(_) = fx() else { return };
    let e = verify_model(&model("good-p256"), &sig("good-p256"), "not a key", &[]).unwrap_err();
    assert!(matches!(e, VerifyError::InvalidPublicKey(_)), "{e:?}");
    let private = fs::read_to_string(fixtures().join("keys").join("p256.priv.pem")).unwrap();
    let e = verify_model(&model("good-p256"), &sig("good-p256"), &private, &[]).unwrap_err();
    assert!(matches!(e, VerifyError::InvalidPublicKey(_)), "{e:?}");
}

// ---- a copy of the good model in a temporary directory ----

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn scratch_copy(case: &str, dir_name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(dir_name);
    copy_dir(&model(case), &dir);
    (tmp, dir)
}

#[test]
fn git_paths_and_signature_file_are_ignored_but_other_files_are_not() {
    let Some(_) = fx() else { return };
    let (_tmp, dir) = scratch_copy("good-p256", "renamed-model");
    fs::create_dir_all(dir.join(".git/objects")).unwrap();
    fs::write(dir.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    fs::write(dir.join(".gitattributes"), "*.bin filter=lfs\n").unwrap();
    let s = sig("good-p256");
    let v = verify_model(&dir, &s, &key("p256"), &[]).unwrap();
    // The directory name is informative only, as upstream.
    assert_eq!(v.model_name, MODEL);

    fs::write(dir.join("notes.txt"), "x").unwrap();
    match verify_model(&dir, &s, &key("p256"), &[]) {
        Err(VerifyError::UnexpectedFile(p)) => assert_eq!(p, "notes.txt"),
        other => panic!("{other:?}"),
    }
    verify_model(&dir, &s, &key("p256"), &["notes.txt"]).unwrap();
    verify_model(&dir, &s, &key("p256"), &["./notes.txt"]).unwrap();
}

#[test]
fn ignoring_a_signed_file_does_not_skip_its_check() {
    let Some(_) = fx() else { return };
    let (_tmp, dir) = scratch_copy("good-p256", MODEL);
    fs::write(dir.join("weights.bin"), "replaced").unwrap();
    let e = verify_model(&dir, &sig("good-p256"), &key("p256"), &["weights.bin"]).unwrap_err();
    assert!(matches!(e, VerifyError::DigestMismatch { .. }), "{e:?}");
}

#[test]
fn invalid_caller_ignore_paths_are_refused() {
    let Some(_) = fx() else { return };
    for bad in ["", ".", "/etc", "../x"] {
        let e =
            verify_model(&model("good-p256"), &sig("good-p256"), &key("p256"), &[bad]).unwrap_err();
        assert!(
            matches!(e, VerifyError::InvalidIgnorePath(_)),
            "{bad:?}: {e:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn symlinks_are_refused_even_in_ignored_dirs() {
    let Some(_) = fx() else { return };
    let (_tmp, dir) = scratch_copy("good-p256", MODEL);
    fs::create_dir(dir.join(".git")).unwrap();
    std::os::unix::fs::symlink("../config.json", dir.join(".git/link")).unwrap();
    match verify_model(&dir, &sig("good-p256"), &key("p256"), &[]) {
        Err(VerifyError::Symlink(p)) => assert_eq!(p, ".git/link"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn signature_file_under_another_name() {
    let Some(_) = fx() else { return };
    let (_tmp, dir) = scratch_copy("good-p256", MODEL);
    fs::rename(dir.join("model.sig"), dir.join("sig.json")).unwrap();
    let s = fs::read(dir.join("sig.json")).unwrap();
    match verify_model(&dir, &s, &key("p256"), &[]) {
        Err(VerifyError::UnexpectedFile(p)) => assert_eq!(p, "sig.json"),
        other => panic!("{other:?}"),
    }
    verify_model_with_signature_file(&dir, &dir.join("sig.json"), &key("p256"), &[]).unwrap();
    // Outside the model it needs no ignoring at all.
    let outside = dir.parent().unwrap().join("outside.sig");
    fs::rename(dir.join("sig.json"), &outside).unwrap();
    verify_model_with_signature_file(&dir, &outside, &key("p256"), &[]).unwrap();
}

#[test]
fn model_path_must_be_a_directory() {
    let Some(_) = fx() else { return };
    let file = model("good-p256").join("config.json");
    let e = verify_model(&file, &sig("good-p256"), &key("p256"), &[]).unwrap_err();
    assert!(matches!(e, VerifyError::NotADirectory(_)), "{e:?}");
}

// ---- bundles edited here; re-signed with the fixture key where the edit is signed ----

/// (what is edited, the edit, the expected error variant)
type Edit = (&'static str, fn(&mut Value), &'static str);

fn good_bundle() -> Value {
    serde_json::from_slice(&sig("good-p256")).unwrap()
}

fn statement(bundle: &Value) -> Value {
    let b64 = bundle["dsseEnvelope"]["payload"].as_str().unwrap();
    serde_json::from_slice(&BASE64.decode(b64).unwrap()).unwrap()
}

/// Signs `stmt` like upstream does (ECDSA P-256/SHA-256 over the DSSE PAE).
fn resign(mut bundle: Value, stmt: &Value) -> Vec<u8> {
    let pem = fs::read_to_string(fixtures().join("keys").join("p256.priv.pem")).unwrap();
    let sk = p256::ecdsa::SigningKey::from_pkcs8_pem(&pem).unwrap();
    let payload = serde_json::to_vec(stmt).unwrap();
    let ty = "application/vnd.in-toto+json";
    let mut pae = format!("DSSEv1 {} {} {} ", ty.len(), ty, payload.len()).into_bytes();
    pae.extend_from_slice(&payload);
    let s: p256::ecdsa::Signature = sk.sign(&pae);
    bundle["dsseEnvelope"]["payload"] = json!(BASE64.encode(&payload));
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = json!(BASE64.encode(s.to_der()));
    serde_json::to_vec(&bundle).unwrap()
}

fn set_root(stmt: &mut Value) {
    let mut root = Sha256::new();
    for r in stmt["predicate"]["resources"].as_array().unwrap() {
        let hex = r["digest"].as_str().unwrap();
        let raw: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        root.update(raw);
    }
    stmt["subject"][0]["digest"]["sha256"] = json!(hex(&root.finalize()));
}

fn check(json: &[u8]) -> Result<Verified, VerifyError> {
    verify_model(&model("good-p256"), json, &key("p256"), &[])
}

#[test]
fn resigning_an_unchanged_statement_verifies() {
    let Some(_) = fx() else { return };
    // Guards the tests below: their failures come from the edit, not from `resign`.
    let b = good_bundle();
    let st = statement(&b);
    check(&resign(b, &st)).unwrap();
}

#[test]
fn unsigned_bundle_edits_are_refused() {
    let Some(_) = fx() else { return };
    let cases: Vec<Edit> = vec![
        (
            "mediaType",
            |b| b["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=0.2"),
            "UnsupportedMediaType",
        ),
        (
            "cert",
            |b| {
                b["verificationMaterial"] =
                    json!({"certificate": {"rawBytes": "AA=="}, "tlogEntries": []})
            },
            "UnsupportedVerificationMaterial",
        ),
        (
            "two sigs",
            |b| {
                let s = b["dsseEnvelope"]["signatures"][0].clone();
                b["dsseEnvelope"]["signatures"]
                    .as_array_mut()
                    .unwrap()
                    .push(s);
            },
            "BadEnvelope",
        ),
        (
            "no sigs",
            |b| b["dsseEnvelope"]["signatures"] = json!([]),
            "BadEnvelope",
        ),
        (
            "no envelope",
            |b| {
                b.as_object_mut().unwrap().remove("dsseEnvelope");
            },
            "BadEnvelope",
        ),
        (
            "sig flipped",
            |b| {
                let mut der = BASE64
                    .decode(b["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap())
                    .unwrap();
                let n = der.len() - 1;
                der[n] ^= 1;
                b["dsseEnvelope"]["signatures"][0]["sig"] = json!(BASE64.encode(der));
            },
            "SignatureInvalid",
        ),
        (
            "sig not DER",
            |b| b["dsseEnvelope"]["signatures"][0]["sig"] = json!(BASE64.encode([0u8; 64])),
            "SignatureInvalid",
        ),
        (
            "payload not base64",
            |b| b["dsseEnvelope"]["payload"] = json!("!!"),
            "BadEnvelope",
        ),
        ("unknown field", |b| b["extra"] = json!(1), "BadBundle"),
    ];
    for (what, edit, want) in cases {
        let mut b = good_bundle();
        edit(&mut b);
        let r = check(&serde_json::to_vec(&b).unwrap());
        assert_eq!(variant(&r), want, "{what}");
    }
    assert_eq!(variant(&check(b"{")), "BadBundle");
}

#[test]
fn signed_statement_edits_are_refused() {
    let Some(_) = fx() else { return };
    let cases: Vec<Edit> = vec![
        (
            "_type",
            |s| s["_type"] = json!("https://in-toto.io/Statement/v0.1"),
            "StatementMalformed",
        ),
        (
            "legacy predicate",
            |s| s["predicateType"] = json!("https://model_signing/Digests/v0.1"),
            "UnsupportedPredicateType",
        ),
        (
            "two subjects",
            |s| {
                let x = s["subject"][0].clone();
                s["subject"].as_array_mut().unwrap().push(x);
            },
            "StatementMalformed",
        ),
        (
            "root",
            |s| s["subject"][0]["digest"]["sha256"] = json!("00".repeat(32)),
            "RootDigestMismatch",
        ),
        (
            "blake3",
            |s| s["predicate"]["serialization"]["hash_type"] = json!("blake3"),
            "UnsupportedHashType",
        ),
        (
            "unknown knob",
            |s| s["predicate"]["serialization"]["case_fold"] = json!(true),
            "StatementMalformed",
        ),
        (
            "no resources",
            |s| {
                s["predicate"]["resources"] = json!([]);
                set_root(s);
            },
            "StatementMalformed",
        ),
        (
            "duplicate",
            |s| {
                let x = s["predicate"]["resources"][0].clone();
                s["predicate"]["resources"].as_array_mut().unwrap().push(x);
                set_root(s);
            },
            "StatementMalformed",
        ),
        (
            "dot path",
            |s| {
                s["predicate"]["resources"][0]["name"] = json!("./README.md");
            },
            "StatementMalformed",
        ),
        (
            "parent path",
            |s| {
                s["predicate"]["resources"][0]["name"] = json!("../README.md");
            },
            "StatementMalformed",
        ),
        (
            "bad hex",
            |s| {
                s["predicate"]["resources"][0]["digest"] = json!("xy".repeat(32));
            },
            "StatementMalformed",
        ),
        (
            "algorithm",
            |s| s["predicate"]["resources"][0]["algorithm"] = json!("sha512"),
            "UnsupportedHashType",
        ),
        (
            "ignore all",
            |s| s["predicate"]["serialization"]["ignore_paths"] = json!(["."]),
            "StatementMalformed",
        ),
        (
            "dropped file",
            |s| {
                s["predicate"]["resources"].as_array_mut().unwrap().pop();
                set_root(s);
            },
            "UnexpectedFile",
        ),
        (
            "signed extra file",
            |s| {
                s["predicate"]["resources"].as_array_mut().unwrap().push(
                    json!({"name": "zz.bin", "algorithm": "sha256", "digest": "00".repeat(32)}),
                );
                set_root(s);
            },
            "MissingFile",
        ),
    ];
    for (what, edit, want) in cases {
        let b = good_bundle();
        let mut st = statement(&b);
        edit(&mut st);
        let r = check(&resign(b, &st));
        assert_eq!(variant(&r), want, "{what}");
    }
}

#[test]
fn signed_ignore_path_exempts_unsigned_files() {
    let Some(_) = fx() else { return };
    let (_tmp, dir) = scratch_copy("good-p256", MODEL);
    fs::create_dir(dir.join("cache")).unwrap();
    fs::write(dir.join("cache/tmp.bin"), "x").unwrap();
    let b = good_bundle();
    let mut st = statement(&b);
    let s = resign(b.clone(), &st);
    assert_eq!(
        variant(&verify_model(&dir, &s, &key("p256"), &[])),
        "UnexpectedFile"
    );
    st["predicate"]["serialization"]["ignore_paths"]
        .as_array_mut()
        .unwrap()
        .push(json!("cache/"));
    let s = resign(b, &st);
    verify_model(&dir, &s, &key("p256"), &[]).unwrap();
}

// ---- the file-based entry point the CLI uses, key layouts, and what a folder may hold ----

#[test]
fn the_signature_file_entry_point_agrees_on_every_case() {
    let Some(_) = fx() else { return };
    let exp: Value =
        serde_json::from_slice(&fs::read(fixtures().join("expected.json")).unwrap()).unwrap();
    for (name, c) in exp["cases"].as_object().unwrap() {
        let r = verify_model_with_signature_file(
            &model(name),
            &model(name).join("model.sig"),
            &key(c["key"].as_str().unwrap()),
            &[],
        );
        assert_eq!(variant(&r), c["rust"].as_str().unwrap(), "{name}");
    }
}

#[test]
fn the_key_hint_does_not_depend_on_the_pem_layout() {
    let Some(_) = fx() else { return };
    // CRLF line ends: the same key, so the same hint (the hint is taken from the key re-encoded
    // the way upstream writes it, not from the caller's bytes).
    let crlf = key("p256").replace('\n', "\r\n");
    let v = verify_model(&model("good-p256"), &sig("good-p256"), &crlf, &[]).unwrap();
    assert!(v.key_hint_checked);
    assert_eq!(v.curve, Curve::P256);
}

#[test]
fn an_oversized_signature_file_is_refused_unread() {
    let Some(_) = fx() else { return };
    let (_tmp, dir) = scratch_copy("good-p256", MODEL);
    let big = dir.parent().unwrap().join("big.sig");
    let f = fs::File::create(&big).unwrap();
    // Sparse: 64 MiB + 1 bytes of nothing.
    f.set_len(modelguard::provenance::oms::MAX_SIGNATURE_BYTES + 1)
        .unwrap();
    let e = verify_model_with_signature_file(&dir, &big, &key("p256"), &[]).unwrap_err();
    assert!(matches!(e, VerifyError::SignatureTooLarge), "{e:?}");
    let e = verify_model_with_signature_file(&dir, &dir.join("absent.sig"), &key("p256"), &[])
        .unwrap_err();
    assert!(matches!(e, VerifyError::Io { .. }), "{e:?}");
}

#[cfg(unix)]
#[test]
fn a_fifo_or_a_non_utf8_name_in_the_model_is_refused() {
    let Some(_) = fx() else { return };
    use std::os::unix::ffi::OsStrExt;
    let (_tmp, dir) = scratch_copy("good-p256", MODEL);
    let fifo = dir.join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    match verify_model(&dir, &sig("good-p256"), &key("p256"), &[]) {
        Err(VerifyError::SpecialFile(p)) => assert_eq!(p, "pipe"),
        other => panic!("{other:?}"),
    }
    fs::remove_file(&fifo).unwrap();
    let odd = dir.join(std::ffi::OsStr::from_bytes(b"w\xffeights.bin"));
    fs::write(&odd, "x").unwrap();
    let e = verify_model(&dir, &sig("good-p256"), &key("p256"), &[]).unwrap_err();
    assert!(matches!(e, VerifyError::NonUtf8Path(_)), "{e:?}");
}
