//! CycloneDX 1.6 ML-BOM for one modelguard conversion or one scan.
//!
//! The BOM is built as a `serde_json::Value` from plain data so that callers (the CLI, the
//! service) need no CycloneDX types and the output is byte-for-byte testable: the serial number
//! and the timestamp are inputs, never generated here.
//!
//! Conversion shape:
//! - `metadata.component` is the **output** model (`machine-learning-model`, SHA-256), and its
//!   `pedigree.ancestors[0]` is the **input** checkpoint, which carries the Hugging Face purl
//!   and a `distribution` external reference when the source is known. `pedigree` is the
//!   standard CycloneDX way to say "derived from".
//! - `formulation[0].workflows[0]` records how the output was made: the tool (by bom-ref), the
//!   sandbox and the status of each isolation layer (as `modelguard:` properties), a `scan` and
//!   a `convert` task, and the input and output by bom-ref.
//! - Each finding is a `vulnerabilities[]` entry whose `affects` points at the file it was
//!   found in.
//!
//! Scan shape: one top-level component per scanned file, findings as vulnerabilities, no
//! formulation (nothing was produced).
//!
//! Every value that the schema constrains (serial, timestamp, hashes, severities, references)
//! is checked here and refused with a [`BomError`], so a BOM that this module returns is valid
//! against the official bom-1.6 JSON schema (the tests run `validate_bom.py` on samples).

use serde_json::{json, Map, Value};
use std::fmt;
use std::fmt::Write as _;

/// The CycloneDX version written in `specVersion`.
pub const SPEC_VERSION: &str = "1.6";
/// `$schema` as the official bom-1.6 schema enumerates it (it accepts only this value).
const SCHEMA_URL: &str = "http://cyclonedx.org/schema/bom-1.6.schema.json";
/// Property namespace: `cdx:` is reserved by the CycloneDX property taxonomy, a tool uses its
/// own name.
const NS: &str = "modelguard";

// bom-refs only need to be unique within one BOM; fixed names keep the output diffable.
const TOOL_REF: &str = "tool-modelguard";
const INPUT_REF: &str = "model-input";
const OUTPUT_REF: &str = "model-output";
const FORMULA_REF: &str = "formula-conversion";
const WORKFLOW_REF: &str = "workflow-conversion";
const SCAN_TASK_REF: &str = "task-scan";
const CONVERT_TASK_REF: &str = "task-convert";

const HF_URL: &str = "https://huggingface.co";

/// The tool that made the BOM (and did the conversion or scan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BomTool {
    pub name: String,
    pub version: String,
}

/// One model file: the input or output of a conversion, or a scanned file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BomFile {
    /// File name as shown to people (e.g. `pytorch_model.bin`); not a bom-ref.
    pub name: String,
    /// Hex SHA-256 of the file's bytes (64 hex digits, either case).
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// Detected format, e.g. `torch-zip`, `pickle`, `safetensors`.
    pub format: Option<String>,
    /// Number of tensors, when the file was parsed far enough to know.
    pub tensor_count: Option<u64>,
}

/// One finding of the scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BomFinding {
    /// Stable rule id, e.g. `MG003`; becomes the vulnerability `id`.
    pub rule_id: String,
    pub rule_name: String,
    /// `critical`, `high`, `medium`, `low` or `info` (CycloneDX also allows `none` and
    /// `unknown`); case-insensitive.
    pub severity: String,
    pub message: String,
    /// Which file the finding is about. Scan: index into [`ScanBom::files`]. Conversion: `0`
    /// is the input, `1` the output.
    pub file: usize,
}

/// One conversion of an untrusted checkpoint to safetensors.
#[derive(Debug, Clone)]
pub struct ConversionBom<'a> {
    /// A UUID, with or without the `urn:uuid:` prefix (e.g. a v4 from the job id).
    pub serial: &'a str,
    /// RFC 3339 date-time, e.g. `2026-07-01T12:00:00Z`.
    pub timestamp: &'a str,
    pub tool: BomTool,
    pub input: BomFile,
    /// Where the input came from, e.g. `hf://org/name@rev`. A source that is not a Hugging
    /// Face reference is kept as a property only (no purl can be derived from it).
    pub source: Option<&'a str>,
    pub output: BomFile,
    /// The sandbox kind, e.g. `native` or `wasi`.
    pub sandbox: &'a str,
    /// Isolation layers and their status, e.g. `("seccomp", "enforced")`.
    pub layers: Vec<(String, String)>,
    pub findings: Vec<BomFinding>,
}

/// One scan of one or more files.
#[derive(Debug, Clone)]
pub struct ScanBom<'a> {
    pub serial: &'a str,
    pub timestamp: &'a str,
    pub tool: BomTool,
    pub files: Vec<BomFile>,
    pub findings: Vec<BomFinding>,
}

/// An input that would make the BOM invalid against the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BomError {
    /// The serial is not a UUID (8-4-4-4-12 hex digits).
    Serial(String),
    /// The timestamp is not an RFC 3339 date-time.
    Timestamp(String),
    /// The SHA-256 of the named file is not 64 hex digits.
    Sha256 { file: String },
    /// A finding's severity is not one CycloneDX knows.
    Severity { rule_id: String, severity: String },
    /// A finding points at a file that is not in the BOM.
    FileIndex {
        rule_id: String,
        index: usize,
        files: usize,
    },
}

impl fmt::Display for BomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BomError::Serial(s) => write!(f, "BOM serial {s:?} is not a UUID"),
            BomError::Timestamp(t) => {
                write!(f, "BOM timestamp {t:?} is not an RFC 3339 date-time")
            }
            BomError::Sha256 { file } => {
                write!(f, "the SHA-256 of {file:?} is not 64 hex digits")
            }
            BomError::Severity { rule_id, severity } => write!(
                f,
                "finding {rule_id}: severity {severity:?} is not one of {}",
                SEVERITIES.join(", ")
            ),
            BomError::FileIndex {
                rule_id,
                index,
                files,
            } => write!(
                f,
                "finding {rule_id} refers to file #{index}, but the BOM has {files} file(s)"
            ),
        }
    }
}

impl std::error::Error for BomError {}

/// The `severity` enum of the bom-1.6 schema.
const SEVERITIES: [&str; 7] = [
    "critical", "high", "medium", "low", "info", "none", "unknown",
];

/// Builds the ML-BOM of one conversion.
pub fn conversion_bom(c: &ConversionBom) -> Result<Value, BomError> {
    let uuid = check_serial(c.serial)?;
    check_timestamp(c.timestamp)?;

    let mut input = file_component(&c.input, INPUT_REF, true)?;
    if let Some(source) = c.source {
        add_source(&mut input, source);
    }

    let mut output = file_component(&c.output, OUTPUT_REF, true)?;
    output.insert(
        "pedigree".into(),
        json!({
            "ancestors": [Value::Object(input)],
            "notes": format!(
                "Converted from the untrusted checkpoint {:?} to safetensors by {} {} \
                 in the {:?} sandbox.",
                c.input.name, c.tool.name, c.tool.version, c.sandbox
            ),
        }),
    );

    let file_refs = [INPUT_REF.to_string(), OUTPUT_REF.to_string()];
    let vulnerabilities = vulnerabilities(&c.tool, &c.findings, &file_refs)?;

    // Sandbox and layer status describe the whole run (scan and conversion both happen in the
    // jail), so they sit on the workflow rather than on one task.
    let mut run_props = vec![prop("sandbox", c.sandbox)];
    for (layer, status) in &c.layers {
        run_props.push(prop(&format!("layer:{layer}"), status));
    }
    let input_res = json!([{ "resource": { "ref": INPUT_REF } }]);
    let output_res = json!([{ "type": "artifact", "resource": { "ref": OUTPUT_REF } }]);
    let workflow = json!({
        "bom-ref": WORKFLOW_REF,
        // A conversion is one BOM, so the serial doubles as the run's unique id.
        "uid": format!("urn:uuid:{uuid}"),
        "name": format!("{} convert", c.tool.name),
        "description": "Scan an untrusted checkpoint and convert its tensors to safetensors \
                        inside the sandbox",
        "resourceReferences": [{ "ref": TOOL_REF }],
        "taskTypes": ["scan", "build"],
        "tasks": [
            {
                "bom-ref": SCAN_TASK_REF,
                "uid": format!("urn:uuid:{uuid}#scan"),
                "name": "scan",
                "taskTypes": ["scan"],
                "inputs": input_res,
            },
            {
                "bom-ref": CONVERT_TASK_REF,
                "uid": format!("urn:uuid:{uuid}#convert"),
                "name": "convert",
                "taskTypes": ["build"],
                "inputs": input_res,
                "outputs": output_res,
            },
        ],
        "taskDependencies": [
            { "ref": SCAN_TASK_REF },
            { "ref": CONVERT_TASK_REF, "dependsOn": [SCAN_TASK_REF] },
        ],
        "inputs": input_res,
        "outputs": output_res,
        "properties": run_props,
    });

    let mut bom = header(&uuid, c.timestamp, &c.tool);
    bom["metadata"]["component"] = Value::Object(output);
    bom["formulation"] = json!([{ "bom-ref": FORMULA_REF, "workflows": [workflow] }]);
    if !vulnerabilities.is_empty() {
        bom["vulnerabilities"] = Value::Array(vulnerabilities);
    }
    Ok(bom)
}

/// Builds the ML-BOM of one scan.
///
/// A file with a known `format` is a `machine-learning-model`; one without is a plain `file`,
/// since the scanner could not tell that it is a model at all.
pub fn scan_bom(s: &ScanBom) -> Result<Value, BomError> {
    let uuid = check_serial(s.serial)?;
    check_timestamp(s.timestamp)?;

    let mut components = Vec::with_capacity(s.files.len());
    let mut refs = Vec::with_capacity(s.files.len());
    for (i, file) in s.files.iter().enumerate() {
        // Index-based refs: two scanned files may well share a name (`pytorch_model.bin`).
        let bom_ref = format!("file-{i}");
        components.push(Value::Object(file_component(
            file,
            &bom_ref,
            file.format.is_some(),
        )?));
        refs.push(bom_ref);
    }
    let vulnerabilities = vulnerabilities(&s.tool, &s.findings, &refs)?;

    let mut bom = header(&uuid, s.timestamp, &s.tool);
    if !components.is_empty() {
        bom["components"] = Value::Array(components);
    }
    if !vulnerabilities.is_empty() {
        bom["vulnerabilities"] = Value::Array(vulnerabilities);
    }
    Ok(bom)
}

/// The purl of a Hugging Face source `hf://org/name[@revision]`:
/// `pkg:huggingface/org/name[@revision]`.
///
/// Per the purl `huggingface` type, the namespace (the organisation or user, required) and the
/// name are case-sensitive, and a commit-hash version is lowercased; other revisions (branches,
/// tags such as `100B`) are kept as written. Each component is percent-encoded as the purl
/// specification requires: everything but ASCII letters, digits, `.-_~` and `:`, so a
/// revision like `refs/pr/1` becomes `refs%2Fpr%2F1`.
///
/// Returns `None` for anything that is not `hf://org/name[@revision]` with non-empty parts.
pub fn hf_purl(source: &str) -> Option<String> {
    let hf = HfSource::parse(source)?;
    let mut purl = format!(
        "pkg:huggingface/{}/{}",
        purl_encode(hf.org),
        purl_encode(hf.name)
    );
    if let Some(rev) = hf.revision {
        purl.push('@');
        purl.push_str(&purl_encode(&canonical_revision(rev)));
    }
    Some(purl)
}

/// The purl `huggingface` type makes a commit-hash version case-insensitive and lowercased;
/// any other revision (branch, tag such as `100B`) is an opaque, case-kept string.
fn canonical_revision(rev: &str) -> String {
    if is_commit_hash(rev) {
        rev.to_ascii_lowercase()
    } else {
        rev.to_string()
    }
}

/// A split `hf://org/name[@revision]`.
///
/// Deliberately lenient about characters: modelguard's `SourceRef` (provenance::lookalike)
/// already enforces Hugging Face's naming rules, and the purl and URL are percent-encoded, so
/// any text here still yields a well-formed identifier. When this moves into modelguard it
/// can take a `SourceRef` instead.
struct HfSource<'a> {
    org: &'a str,
    name: &'a str,
    revision: Option<&'a str>,
}

impl<'a> HfSource<'a> {
    fn parse(source: &'a str) -> Option<Self> {
        // Only the explicit scheme: a bare `a/b` is as likely a relative file path.
        let scheme = source.get(..5)?;
        if !scheme.eq_ignore_ascii_case("hf://") {
            return None;
        }
        let rest = &source[5..];
        let (repo, revision) = match rest.split_once('@') {
            None => (rest, None),
            // Same rule as SourceRef: one '@' only, and not an empty revision.
            Some((_, rev)) if rev.is_empty() || rev.contains('@') => return None,
            Some((repo, rev)) => (repo, Some(rev)),
        };
        let (org, name) = repo.split_once('/')?;
        let segment_ok = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains('/');
        if !segment_ok(org) || !segment_ok(name) {
            return None;
        }
        Some(HfSource {
            org,
            name,
            revision,
        })
    }

    fn repo_url(&self) -> String {
        format!(
            "{HF_URL}/{}/{}",
            purl_encode(self.org),
            purl_encode(self.name)
        )
    }
}

/// A Git commit id as Hugging Face shows it (SHA-1, 40 hex digits).
fn is_commit_hash(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Percent-encodes one purl component (also fine for one URL path segment: everything kept
/// is an RFC 3986 `pchar`). Upper-case hex, as RFC 3986 recommends.
fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Top-level fields shared by both BOM kinds.
fn header(uuid: &str, timestamp: &str, tool: &BomTool) -> Value {
    json!({
        "$schema": SCHEMA_URL,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": format!("urn:uuid:{uuid}"),
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            // The artifacts examined already exist: post-build in CycloneDX's lifecycle terms.
            "lifecycles": [{ "phase": "post-build" }],
            // 1.5+ object form; the bare array of `tool` objects is deprecated.
            "tools": {
                "components": [{
                    "type": "application",
                    "bom-ref": TOOL_REF,
                    "name": tool.name,
                    "version": tool.version,
                }]
            },
        },
    })
}

/// The component for one file. `model` picks `machine-learning-model` (with a model card
/// holding what modelguard knows of the tensors) over a plain `file`.
fn file_component(
    file: &BomFile,
    bom_ref: &str,
    model: bool,
) -> Result<Map<String, Value>, BomError> {
    let mut c = Map::new();
    c.insert(
        "type".into(),
        json!(if model {
            "machine-learning-model"
        } else {
            "file"
        }),
    );
    c.insert("bom-ref".into(), json!(bom_ref));
    c.insert("name".into(), json!(file.name));
    if let Some(sha) = &file.sha256 {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BomError::Sha256 {
                file: file.name.clone(),
            });
        }
        c.insert(
            "hashes".into(),
            json!([{ "alg": "SHA-256", "content": sha.to_ascii_lowercase() }]),
        );
    }

    // Facts about the tensors; `modelParameters` has no slot for them (its fields describe
    // the learning approach and architecture, which modelguard does not know), so they go in
    // the model card's own properties.
    let mut card = Vec::new();
    if let Some(format) = &file.format {
        card.push(prop("format", format));
    }
    if let Some(n) = file.tensor_count {
        card.push(prop("tensor_count", &n.to_string()));
    }
    let mut props = Vec::new();
    if let Some(size) = file.size {
        props.push(prop("size_bytes", &size.to_string()));
    }
    if model {
        if !card.is_empty() {
            c.insert("modelCard".into(), json!({ "properties": card }));
        }
    } else {
        // A plain file has no model card.
        props.extend(card);
    }
    if !props.is_empty() {
        c.insert("properties".into(), Value::Array(props));
    }
    Ok(c)
}

/// Adds what is known of where the input came from to its component.
fn add_source(input: &mut Map<String, Value>, source: &str) {
    let mut props = match input.remove("properties") {
        Some(Value::Array(p)) => p,
        _ => Vec::new(),
    };
    // The source as given, even when it is not a Hugging Face reference.
    props.push(prop("source", source));
    if let (Some(hf), Some(purl)) = (HfSource::parse(source), hf_purl(source)) {
        if let Some(rev) = hf.revision {
            // Same spelling as in the purl, so the two never disagree.
            input.insert("version".into(), json!(canonical_revision(rev)));
        }
        input.insert("purl".into(), json!(purl));
        // The repository page; the exact revision is in the purl.
        input.insert(
            "externalReferences".into(),
            json!([{ "type": "distribution", "url": hf.repo_url() }]),
        );
    }
    input.insert("properties".into(), Value::Array(props));
}

/// One vulnerability per finding, each pointing at the file it was found in.
fn vulnerabilities(
    tool: &BomTool,
    findings: &[BomFinding],
    file_refs: &[String],
) -> Result<Vec<Value>, BomError> {
    findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let severity = f.severity.to_ascii_lowercase();
            if !SEVERITIES.contains(&severity.as_str()) {
                return Err(BomError::Severity {
                    rule_id: f.rule_id.clone(),
                    severity: f.severity.clone(),
                });
            }
            let target = file_refs.get(f.file).ok_or_else(|| BomError::FileIndex {
                rule_id: f.rule_id.clone(),
                index: f.file,
                files: file_refs.len(),
            })?;
            Ok(json!({
                // `vulnerabilities` is a uniqueItems array: the same rule can fire twice with
                // the same message on the same file, so each entry gets its own bom-ref.
                "bom-ref": format!("finding-{i}"),
                "id": f.rule_id,
                "source": { "name": tool.name },
                "ratings": [{
                    "source": { "name": tool.name },
                    "severity": severity,
                    // modelguard's severities come from its own rules, not CVSS/OWASP/SSVC.
                    "method": "other",
                }],
                "description": f.message,
                "affects": [{ "ref": target }],
                "properties": [prop("rule_name", &f.rule_name)],
            }))
        })
        .collect()
}

fn prop(name: &str, value: &str) -> Value {
    json!({ "name": format!("{NS}:{name}"), "value": value })
}

/// Returns the UUID in the lower-case form the schema's `serialNumber` pattern requires.
fn check_serial(serial: &str) -> Result<String, BomError> {
    let uuid = serial.strip_prefix("urn:uuid:").unwrap_or(serial);
    let groups: Vec<&str> = uuid.split('-').collect();
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(uuid.to_ascii_lowercase())
    } else {
        Err(BomError::Serial(serial.to_string()))
    }
}

/// RFC 3339 `date-time`, which is what the schema's `format: date-time` checks (jsonschema
/// uses rfc3339-validator): `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`, real calendar days.
fn check_timestamp(ts: &str) -> Result<(), BomError> {
    let bad = || BomError::Timestamp(ts.to_string());
    let b = ts.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let s = b.get(from..from + len)?;
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
    };
    let sep = |at: usize, chars: &[u8]| b.get(at).is_some_and(|c| chars.contains(c));
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return Err(bad());
    };
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return Err(bad());
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    // 60 is a leap second, which RFC 3339 allows.
    if day == 0 || day > days || hour > 23 || min > 59 || sec > 60 {
        return Err(bad());
    }
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err(bad());
        }
        at += 1 + digits;
    }
    let zone_ok = match b.get(at) {
        Some(b'Z' | b'z') => at + 1 == b.len(),
        Some(b'+' | b'-') => {
            at + 6 == b.len()
                && sep(at + 3, b":")
                && num(at + 1, 2).is_some_and(|h| h <= 23)
                && num(at + 4, 2).is_some_and(|m| m <= 59)
        }
        _ => false,
    };
    if zone_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purl_org_name_rev() {
        assert_eq!(
            hf_purl("hf://EleutherAI/gpt-neo-1.3B@797174552ae47f449ab70b684cabcb6603e5e85e")
                .as_deref(),
            Some(
                "pkg:huggingface/EleutherAI/gpt-neo-1.3B@797174552ae47f449ab70b684cabcb6603e5e85e"
            )
        );
    }

    #[test]
    fn purl_commit_is_lowercased_but_names_and_tags_keep_case() {
        // Both cases straight from the purl-spec huggingface test suite.
        assert_eq!(
            hf_purl("hf://EleutherAI/gpt-neo-1.3B@797174552AE47F449AB70B684CABCB6603E5E85E")
                .as_deref(),
            Some(
                "pkg:huggingface/EleutherAI/gpt-neo-1.3B@797174552ae47f449ab70b684cabcb6603e5e85e"
            )
        );
        assert_eq!(
            hf_purl("hf://LumiOpen/Poro-34B@100B").as_deref(),
            Some("pkg:huggingface/LumiOpen/Poro-34B@100B")
        );
    }

    #[test]
    fn purl_without_revision() {
        assert_eq!(
            hf_purl("hf://openai-community/gpt2").as_deref(),
            Some("pkg:huggingface/openai-community/gpt2")
        );
        // The scheme is case-insensitive, like SourceRef's.
        assert_eq!(
            hf_purl("HF://openai-community/gpt2").as_deref(),
            Some("pkg:huggingface/openai-community/gpt2")
        );
    }

    #[test]
    fn purl_percent_encodes() {
        // '/' inside a revision is data, not a separator.
        assert_eq!(
            hf_purl("hf://EleutherAI/gpt-j-6b@refs/pr/12").as_deref(),
            Some("pkg:huggingface/EleutherAI/gpt-j-6b@refs%2Fpr%2F12")
        );
        // Space, '+', '%', '#', '?' and non-ASCII (UTF-8 bytes) are encoded; ':' and '~' are not.
        assert_eq!(
            hf_purl("hf://my org/a+b%c#d?e@v1:x~y").as_deref(),
            Some("pkg:huggingface/my%20org/a%2Bb%25c%23d%3Fe@v1:x~y")
        );
        assert_eq!(
            hf_purl("hf://m\u{435}ta/mod\u{e9}l").as_deref(),
            Some("pkg:huggingface/m%D0%B5ta/mod%C3%A9l")
        );
    }

    #[test]
    fn purl_refuses_non_hf_sources() {
        for s in [
            "",
            "hf://",
            "hf://org",
            "hf://org/",
            "hf:///name",
            "hf://a/b/c",
            "hf://org/name@",
            "hf://org/name@a@b",
            "hf://./x",
            "org/name",
            "/models/pytorch_model.bin",
            "https://huggingface.co/org/name",
        ] {
            assert_eq!(hf_purl(s), None, "{s:?}");
        }
    }

    #[test]
    fn serial_forms() {
        let u = "3E671687-395B-41F5-A30F-A58921A69B79";
        assert_eq!(
            check_serial(u).unwrap(),
            "3e671687-395b-41f5-a30f-a58921a69b79"
        );
        assert!(check_serial(&format!("urn:uuid:{u}")).is_ok());
        for bad in [
            "",
            "urn:uuid:",
            "3e671687395b41f5a30fa58921a69b79",
            "3e671687-395b-41f5-a30f-a58921a69b7g",
        ] {
            assert!(check_serial(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps() {
        for ok in [
            "2026-07-01T12:00:00Z",
            "2024-02-29T23:59:60.123456+05:30",
            "2026-07-01t12:00:00-00:00",
        ] {
            assert!(check_timestamp(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "2026-07-01",
            "2026-07-01 12:00:00Z",
            "2026-07-01T12:00:00",
            "2026-02-29T12:00:00Z",
            "2026-13-01T12:00:00Z",
            "2026-07-01T24:00:00Z",
            "2026-07-01T12:00:00.Z",
            "2026-07-01T12:00:00+0530",
            "2026-07-01T12:00:00Zjunk",
        ] {
            assert!(check_timestamp(bad).is_err(), "{bad:?}");
        }
    }
}
