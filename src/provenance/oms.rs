//! Offline verification of OpenSSF model-signing (OMS) signatures made with an EC key
//! (`model_signing sign key`, PyPI `model-signing` 1.x).
//!
//! A `model.sig` is a Sigstore bundle (v0.3 JSON) whose DSSE envelope carries an in-toto
//! Statement v1 with predicate `https://model_signing/signature/v1.0`; the predicate lists
//! every file of the model with its SHA-256. Verification mirrors upstream's
//! `model_signing verify key`: check the key hint, the ECDSA signature over the DSSE PAE,
//! the statement, the ROOT digest, then re-hash the directory and require the exact file set.
//!
//! Deliberate differences from upstream, all towards failing closed:
//! - only the default serialization (`files` + `sha256`) is accepted; `shards`, `blake2b`,
//!   `blake3` and the legacy v0.2 predicate are refused with a specific error;
//! - symlinks are never followed, even when the signature says `allow_symlinks: true`;
//! - the DSSE payload type is checked before the signature (upstream signs a fixed type);
//! - exactly one DSSE signature, canonical resource names, no duplicates, at least one file;
//! - ignore paths only exempt *unsigned* files: a signed file under an ignored path is still
//!   hashed and compared (upstream would report it missing).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// The pre-1.0 predicate upstream still verifies; it has no ROOT and no serialization block.
pub const LEGACY_PREDICATE_TYPE: &str = "https://model_signing/Digests/v0.1";

/// Paths upstream's verifier ignores unless `--no-ignore-git-paths` is given.
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// A files/sha256 manifest of 100k files is ~15 MB; anything far larger is not a signature.
pub const MAX_SIGNATURE_BYTES: u64 = 64 * 1024 * 1024;

const READ_CHUNK: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// ECDSA over SHA-256, as upstream's `get_ec_key_hash` picks for 256-bit keys.
    P256,
    /// ECDSA over SHA-384, as upstream picks for 384-bit keys.
    P384,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedFile {
    /// POSIX path relative to the model directory, as named in the signature.
    pub path: String,
    /// Lowercase hex SHA-256 of the file's bytes (signed and recomputed).
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `subject[0].name`: the signer's directory name. Informative only (upstream does
    /// not compare it either), so renaming a model directory keeps it valid.
    pub model_name: String,
    /// `subject[0].digest.sha256`: SHA-256 over the raw digests of all resources.
    pub root_sha256: String,
    /// Every signed file, sorted by path.
    pub files: Vec<VerifiedFile>,
    pub curve: Curve,
    /// False for pre-1.1 bundles without `verificationMaterial.publicKey.hint`.
    pub key_hint_checked: bool,
    /// The signed `serialization.ignore_paths`, as written in the signature.
    pub signed_ignore_paths: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("public key is not a P-256 or P-384 SubjectPublicKeyInfo PEM: {0}")]
    InvalidPublicKey(String),
    #[error("signature file is larger than {MAX_SIGNATURE_BYTES} bytes")]
    SignatureTooLarge,
    #[error("signature is not a valid Sigstore bundle: {0}")]
    BadBundle(String),
    #[error("unsupported bundle mediaType {0:?} (expected {BUNDLE_MEDIA_TYPE:?})")]
    UnsupportedMediaType(String),
    #[error("bundle verification material is {0}, not a public key: not a key-based signature")]
    UnsupportedVerificationMaterial(String),
    #[error("public key does not match the signature's key hint (hint {hint}, key {key})")]
    KeyMismatch { hint: String, key: String },
    #[error("bad DSSE envelope: {0}")]
    BadEnvelope(String),
    #[error("unsupported DSSE payloadType {0:?} (expected {IN_TOTO_PAYLOAD_TYPE:?})")]
    UnsupportedPayloadType(String),
    #[error("signature does not verify with the given public key")]
    SignatureInvalid,
    #[error("malformed in-toto statement: {0}")]
    StatementMalformed(String),
    #[error("unsupported predicateType {0:?} (expected {PREDICATE_TYPE:?})")]
    UnsupportedPredicateType(String),
    #[error("unsupported serialization method {0:?} (only \"files\" is supported)")]
    UnsupportedSerialization(String),
    #[error("unsupported hash type {0:?} (only \"sha256\" is supported)")]
    UnsupportedHashType(String),
    #[error("ROOT digest mismatch: subject says {signed}, resources hash to {computed}")]
    RootDigestMismatch { signed: String, computed: String },
    #[error("invalid ignore path {0:?}: must be a relative path inside the model")]
    InvalidIgnorePath(String),
    #[error("{0}: model path is not a directory")]
    NotADirectory(PathBuf),
    #[error("{0}: symlinks are not followed in signed models")]
    Symlink(String),
    #[error("{0}: not a regular file or directory")]
    SpecialFile(String),
    #[error("{0}: path is not valid UTF-8")]
    NonUtf8Path(PathBuf),
    #[error("unexpected extra file {0} (not covered by the signature)")]
    UnexpectedFile(String),
    #[error("signed file {0} is missing")]
    MissingFile(String),
    #[error("digest mismatch for file {path}: signed {signed}, actual {actual}")]
    DigestMismatch {
        path: String,
        signed: String,
        actual: String,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Verifies `model_dir` against an OMS key-based signature.
///
/// `ignore` lists extra paths, relative to `model_dir` and `/`-separated, whose unsigned
/// files may be present (a directory covers everything under it). The signed
/// `ignore_paths` and [`GIT_PATHS`] are always honoured. If the signature file lives inside
/// `model_dir` under a name the signature does not itself ignore, pass that name here, or
/// use [`verify_model_with_signature_file`], which does it the way upstream's CLI does.
pub fn verify_model(
    model_dir: &Path,
    signature_json: &[u8],
    public_key_pem: &str,
    ignore: &[&str],
) -> Result<Verified, VerifyError> {
    let key = PublicKey::from_pem(public_key_pem)?;
    let caller_ignores = ignore
        .iter()
        .map(|p| match normalize_ignore(p) {
            Some(c) if !c.is_empty() => Ok(c),
            _ => Err(VerifyError::InvalidIgnorePath((*p).to_owned())),
        })
        .collect::<Result<Vec<_>, _>>()?;

    let signed = verify_signature(signature_json, &key)?;
    let manifest = parse_statement(&signed.payload)?;

    let mut ignores = caller_ignores;
    ignores.extend(GIT_PATHS.iter().map(|p| vec![(*p).to_owned()]));
    for p in &manifest.ignore_paths {
        match normalize_ignore(p) {
            // Upstream would ignore the whole model; a signature that exempts
            // everything from the extra-file check is refused rather than honoured.
            Some(c) if c.is_empty() => {
                return Err(VerifyError::StatementMalformed(format!(
                    "ignore_paths entry {p:?} covers the whole model"
                )))
            }
            Some(c) => ignores.push(c),
            // Absolute or `..` entries can never match a file inside the model
            // (upstream drops or never matches them either).
            None => {}
        }
    }

    check_tree(model_dir, &manifest.resources, &ignores)?;

    Ok(Verified {
        model_name: manifest.model_name,
        root_sha256: manifest.root_sha256,
        files: manifest
            .resources
            .into_iter()
            .map(|(path, sha256)| VerifiedFile { path, sha256 })
            .collect(),
        curve: key.curve(),
        key_hint_checked: signed.key_hint_checked,
        signed_ignore_paths: manifest.ignore_paths,
    })
}

/// Like [`verify_model`], reading the signature from `signature_path` (at most
/// [`MAX_SIGNATURE_BYTES`]) and, as upstream's CLI does, ignoring the signature file itself
/// when it lies inside `model_dir`.
pub fn verify_model_with_signature_file(
    model_dir: &Path,
    signature_path: &Path,
    public_key_pem: &str,
    ignore: &[&str],
) -> Result<Verified, VerifyError> {
    let io_err = |source| VerifyError::Io {
        path: signature_path.to_owned(),
        source,
    };
    let mut json = Vec::new();
    File::open(signature_path)
        .map_err(io_err)?
        .take(MAX_SIGNATURE_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(io_err)?;
    if json.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err(VerifyError::SignatureTooLarge);
    }

    let inside = match (signature_path.canonicalize(), model_dir.canonicalize()) {
        (Ok(sig), Ok(dir)) => sig
            .strip_prefix(&dir)
            .ok()
            .and_then(|rel| rel.to_str())
            .map(str::to_owned),
        _ => None,
    };
    let mut all: Vec<&str> = ignore.to_vec();
    if let Some(rel) = inside.as_deref() {
        all.push(rel);
    }
    verify_model(model_dir, &json, public_key_pem, &all)
}

enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    fn from_pem(pem: &str) -> Result<Self, VerifyError> {
        // The SPKI's curve OID decides which parse succeeds.
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(Self::P256(k));
        }
        match p384::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            Ok(k) => Ok(Self::P384(k)),
            Err(e) => Err(VerifyError::InvalidPublicKey(e.to_string())),
        }
    }

    fn curve(&self) -> Curve {
        match self {
            Self::P256(_) => Curve::P256,
            Self::P384(_) => Curve::P384,
        }
    }

    /// Upstream's hint: hex SHA-256 of the key re-encoded as SPKI PEM (64-column base64,
    /// LF line ends, trailing LF), so it does not depend on how the caller's PEM is laid out.
    fn hint(&self) -> Result<String, VerifyError> {
        let pem = match self {
            Self::P256(k) => k.to_public_key_pem(LineEnding::LF),
            Self::P384(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .map_err(|e| VerifyError::InvalidPublicKey(e.to_string()))?;
        Ok(hex(&Sha256::digest(pem.as_bytes())))
    }

    /// `verify` hashes with the curve's own digest: SHA-256 for P-256, SHA-384 for P-384.
    fn verify(&self, message: &[u8], der: &[u8]) -> Result<(), VerifyError> {
        let ok = match self {
            Self::P256(k) => p256::ecdsa::Signature::from_der(der)
                .map(|s| k.verify(message, &s).is_ok())
                .unwrap_or(false),
            Self::P384(k) => p384::ecdsa::Signature::from_der(der)
                .map(|s| k.verify(message, &s).is_ok())
                .unwrap_or(false),
        };
        ok.then_some(()).ok_or(VerifyError::SignatureInvalid)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    verification_material: VerificationMaterial,
    dsse_envelope: Option<Envelope>,
    message_signature: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VerificationMaterial {
    public_key: Option<PublicKeyIdentifier>,
    x509_certificate_chain: Option<serde_json::Value>,
    certificate: Option<serde_json::Value>,
    // Transparency-log and timestamp evidence is not needed when the caller names the key.
    #[serde(default)]
    #[allow(dead_code)]
    tlog_entries: Vec<serde_json::Value>,
    #[allow(dead_code)]
    timestamp_verification_data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PublicKeyIdentifier {
    hint: Option<String>,
    // Written by pre-1.1 signers; upstream drops both before verifying.
    #[allow(dead_code)]
    raw_bytes: Option<String>,
    #[allow(dead_code)]
    key_details: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeSignature {
    sig: String,
    #[allow(dead_code)]
    keyid: Option<String>,
}

struct SignedPayload {
    payload: Vec<u8>,
    key_hint_checked: bool,
}

fn verify_signature(json: &[u8], key: &PublicKey) -> Result<SignedPayload, VerifyError> {
    if json.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err(VerifyError::SignatureTooLarge);
    }
    let bundle: Bundle =
        serde_json::from_slice(json).map_err(|e| VerifyError::BadBundle(e.to_string()))?;
    if bundle.media_type != BUNDLE_MEDIA_TYPE {
        return Err(VerifyError::UnsupportedMediaType(bundle.media_type));
    }

    let vm = bundle.verification_material;
    let Some(pk) = vm.public_key else {
        let what = if vm.x509_certificate_chain.is_some() {
            "an x509CertificateChain"
        } else if vm.certificate.is_some() {
            "a certificate (Sigstore keyless)"
        } else {
            "missing"
        };
        return Err(VerifyError::UnsupportedVerificationMaterial(what.into()));
    };
    // Upstream treats an absent or empty hint as the older format and goes on.
    let key_hint_checked = match pk.hint.as_deref() {
        Some(hint) if !hint.is_empty() => {
            let actual = key.hint()?;
            if hint != actual {
                return Err(VerifyError::KeyMismatch {
                    hint: hint.to_owned(),
                    key: actual,
                });
            }
            true
        }
        _ => false,
    };

    if bundle.message_signature.is_some() {
        return Err(VerifyError::BadEnvelope(
            "bundle has a messageSignature, model signatures use a dsseEnvelope".into(),
        ));
    }
    let env = bundle
        .dsse_envelope
        .ok_or_else(|| VerifyError::BadEnvelope("bundle has no dsseEnvelope".into()))?;
    // Checked before the signature because upstream's PAE always uses the in-toto type,
    // so a relabelled envelope still carries a valid signature.
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(VerifyError::UnsupportedPayloadType(env.payload_type));
    }
    let [sig] = env.signatures.as_slice() else {
        return Err(VerifyError::BadEnvelope(format!(
            "expected exactly one signature, found {}",
            env.signatures.len()
        )));
    };
    let payload = BASE64
        .decode(&env.payload)
        .map_err(|e| VerifyError::BadEnvelope(format!("payload is not base64: {e}")))?;
    let der = BASE64
        .decode(&sig.sig)
        .map_err(|e| VerifyError::BadEnvelope(format!("signature is not base64: {e}")))?;

    key.verify(&pae(&env.payload_type, &payload), &der)?;
    Ok(SignedPayload {
        payload,
        key_hint_checked,
    })
}

/// DSSE v1 pre-authentication encoding; lengths are byte counts in decimal.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Statement {
    #[serde(rename = "_type")]
    type_: String,
    subject: serde_json::Value,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subject {
    name: String,
    digest: SubjectDigest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectDigest {
    sha256: String,
}

/// The v1.0 spec tells verifiers to ignore predicate fields they do not know.
#[derive(Deserialize)]
struct Predicate {
    serialization: serde_json::Value,
    resources: Vec<Resource>,
}

#[derive(Deserialize)]
struct SerializationMethod {
    method: String,
}

/// Unknown keys are refused here: a future knob could change which bytes get hashed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilesSerialization {
    #[allow(dead_code)]
    method: String,
    hash_type: String,
    #[allow(dead_code)]
    allow_symlinks: bool,
    #[serde(default)]
    ignore_paths: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resource {
    name: String,
    algorithm: String,
    digest: String,
}

struct Manifest {
    model_name: String,
    root_sha256: String,
    ignore_paths: Vec<String>,
    /// Path -> lowercase hex SHA-256.
    resources: BTreeMap<String, String>,
}

fn malformed(msg: impl Into<String>) -> VerifyError {
    VerifyError::StatementMalformed(msg.into())
}

fn parse_statement(payload: &[u8]) -> Result<Manifest, VerifyError> {
    let st: Statement = serde_json::from_slice(payload).map_err(|e| malformed(e.to_string()))?;
    if st.type_ != STATEMENT_TYPE {
        return Err(malformed(format!(
            "_type is {:?}, expected {STATEMENT_TYPE:?}",
            st.type_
        )));
    }
    if st.predicate_type != PREDICATE_TYPE {
        return Err(VerifyError::UnsupportedPredicateType(st.predicate_type));
    }
    let subjects: Vec<Subject> =
        serde_json::from_value(st.subject).map_err(|e| malformed(format!("subject: {e}")))?;
    let [subject] = <[Subject; 1]>::try_from(subjects)
        .map_err(|s| malformed(format!("expected one subject, found {}", s.len())))?;

    let predicate: Predicate =
        serde_json::from_value(st.predicate).map_err(|e| malformed(format!("predicate: {e}")))?;
    let method: SerializationMethod = serde_json::from_value(predicate.serialization.clone())
        .map_err(|e| malformed(format!("serialization: {e}")))?;
    if method.method != "files" {
        return Err(VerifyError::UnsupportedSerialization(method.method));
    }
    let ser: FilesSerialization = serde_json::from_value(predicate.serialization)
        .map_err(|e| malformed(format!("serialization: {e}")))?;
    if ser.hash_type != "sha256" {
        return Err(VerifyError::UnsupportedHashType(ser.hash_type));
    }

    if predicate.resources.is_empty() {
        return Err(malformed("signature covers no files"));
    }
    // ROOT is over the resources in payload order (the signer sorts them; verifiers do not).
    let mut root = Sha256::new();
    let mut resources = BTreeMap::new();
    for r in predicate.resources {
        if r.algorithm != "sha256" {
            return Err(VerifyError::UnsupportedHashType(r.algorithm));
        }
        let raw = unhex32(&r.digest)
            .ok_or_else(|| malformed(format!("digest of {:?} is not 64 hex digits", r.name)))?;
        root.update(raw);
        if !is_canonical_relpath(&r.name) {
            return Err(malformed(format!(
                "resource name {:?} is not a normalized relative path",
                r.name
            )));
        }
        if resources.insert(r.name.clone(), hex(&raw)).is_some() {
            return Err(malformed(format!("resource {:?} listed twice", r.name)));
        }
    }
    let computed = hex(&root.finalize());
    if computed != subject.digest.sha256 {
        return Err(VerifyError::RootDigestMismatch {
            signed: subject.digest.sha256,
            computed,
        });
    }

    Ok(Manifest {
        model_name: subject.name,
        root_sha256: computed,
        ignore_paths: ser.ignore_paths,
        resources,
    })
}

/// Upstream turns names into `PurePosixPath`s, which would silently merge `a//b`, `./a`
/// and `a`; only the form its signer writes is accepted so that names compare as strings.
fn is_canonical_relpath(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'))
}

/// Splits an ignore path into components the way `pathlib` would normalise it.
/// `None` for paths that cannot name anything inside the model (absolute or `..`);
/// an empty result means the model root itself.
fn normalize_ignore(path: &str) -> Option<Vec<String>> {
    if path.starts_with('/') {
        return None;
    }
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c.to_owned()),
        }
    }
    Some(out)
}

fn is_ignored(rel: &[String], ignores: &[Vec<String>]) -> bool {
    ignores.iter().any(|ig| rel.starts_with(ig))
}

/// Walks the whole tree (ignored parts too, as upstream does, so a symlink or device
/// anywhere fails), then compares it with the signed resources.
fn check_tree(
    root: &Path,
    resources: &BTreeMap<String, String>,
    ignores: &[Vec<String>],
) -> Result<(), VerifyError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| VerifyError::Io { path, source }
    };
    if !fs::metadata(root).map_err(io_err(root))?.is_dir() {
        return Err(VerifyError::NotADirectory(root.to_owned()));
    }

    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut extra: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<(PathBuf, Vec<String>)> = vec![(root.to_owned(), Vec::new())];
    while let Some((dir, rel_dir)) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let mut rel = rel_dir.clone();
            match entry.file_name().to_str() {
                Some(name) => rel.push(name.to_owned()),
                // No signed name can contain it, so it only matters if it is not ignored.
                None if is_ignored(&rel_dir, ignores) => continue,
                None => return Err(VerifyError::NonUtf8Path(path)),
            }
            let rel_str = rel.join("/");
            let ft = entry.file_type().map_err(io_err(&path))?;
            if ft.is_symlink() {
                return Err(VerifyError::Symlink(rel_str));
            } else if ft.is_dir() {
                stack.push((path, rel));
            } else if ft.is_file() {
                if !resources.contains_key(&rel_str) && !is_ignored(&rel, ignores) {
                    extra.insert(rel_str.clone());
                }
                files.insert(rel_str, path);
            } else {
                return Err(VerifyError::SpecialFile(rel_str));
            }
        }
    }

    // Cheap set checks before hashing anything.
    if let Some(name) = extra.into_iter().next() {
        return Err(VerifyError::UnexpectedFile(name));
    }
    if let Some(name) = resources.keys().find(|n| !files.contains_key(*n)) {
        return Err(VerifyError::MissingFile(name.clone()));
    }
    let mut buf = vec![0u8; READ_CHUNK];
    for (name, signed) in resources {
        let path = &files[name];
        let actual = sha256_file(path, &mut buf).map_err(io_err(path))?;
        if &actual != signed {
            return Err(VerifyError::DigestMismatch {
                path: name.clone(),
                signed: signed.clone(),
                actual,
            });
        }
    }
    Ok(())
}

fn sha256_file(path: &Path, buf: &mut [u8]) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    loop {
        match file.read(buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Accepts either case, as Python's `bytes.fromhex` does (without its whitespace leniency).
fn unhex32(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn pae_matches_dsse_spec_example() {
        // From the DSSE v1 protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn ignore_paths_normalize_like_pathlib() {
        assert_eq!(normalize_ignore(".git/"), Some(vec![".git".to_owned()]));
        assert_eq!(
            normalize_ignore("./a//b"),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(normalize_ignore("."), Some(vec![]));
        assert_eq!(normalize_ignore("/etc"), None);
        assert_eq!(normalize_ignore("a/../b"), None);
    }

    #[test]
    fn resource_names_must_be_canonical() {
        assert!(is_canonical_relpath("tokenizer/vocab.txt"));
        for bad in ["", "/a", "a/", "./a", "a//b", "a/../b", ".."] {
            assert!(!is_canonical_relpath(bad), "{bad:?}");
        }
    }

    #[test]
    fn hex_roundtrip() {
        let raw: [u8; 32] = core::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(unhex32(&hex(&raw)), Some(raw));
        assert_eq!(unhex32(&hex(&raw).to_uppercase()), Some(raw));
        assert_eq!(unhex32("zz"), None);
    }
}
