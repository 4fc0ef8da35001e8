//! SARIF 2.1.0 for GitHub code scanning, built with `serde-sarif`'s types (generated from the
//! official schema): every rule with its id, name, descriptions, help and `security-severity`;
//! one result per finding with its level, message, the file relative to the scan root, and a
//! partial fingerprint that survives re-ordering and unrelated edits.

use super::report::ScanReport;
use crate::policy::findings::{Rule, Severity};
use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, PropertyBag,
    ReportingConfiguration, ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif,
    Suppression, Tool, ToolComponent,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Content modelguard did not read although it can carry code (`verdict: unscanned`). Not a
/// finding of the pickle policy: a rule of the scan report only.
pub const UNSCANNED_RULE: &str = "MG-UNSCANNED";

fn unscanned_descriptor() -> ReportingDescriptor {
    let description =
        "A format that can carry code (Keras, TensorFlow, ONNX, TFLite, GGUF, archives \
        modelguard cannot open) was not read, so nothing is known about what it runs.";
    let mut props = BTreeMap::new();
    props.insert(
        "security-severity".to_string(),
        serde_json::json!(security_severity(Severity::High)),
    );
    props.insert("precision".to_string(), serde_json::json!("high"));
    ReportingDescriptor::builder()
        .id(UNSCANNED_RULE)
        .name("unscanned-format")
        .short_description(text(description))
        .full_description(text(description))
        .help(text(format!(
            "{description} Check the file with a tool that reads its format, or accept it in \
             modelguard.toml ([[unscanned]] with a justification)."
        )))
        .default_configuration(
            ReportingConfiguration::builder()
                .level(serde_json::json!(ResultLevel::Error))
                .build(),
        )
        .properties(
            PropertyBag::builder()
                .tags(vec!["security".to_string(), "supply-chain".to_string()])
                .additional_properties(props)
                .build(),
        )
        .build()
}

fn artifact(relative: &str) -> Location {
    Location::builder()
        .physical_location(
            PhysicalLocation::builder()
                .artifact_location(
                    ArtifactLocation::builder()
                        .uri(uri(relative))
                        .uri_base_id("%SRCROOT%")
                        .build(),
                )
                .build(),
        )
        .build()
}

fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.8",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.1",
    }
}

fn level(s: Severity) -> ResultLevel {
    match s {
        Severity::Critical | Severity::High => ResultLevel::Error,
        Severity::Medium => ResultLevel::Warning,
        Severity::Low | Severity::Info => ResultLevel::Note,
    }
}

fn text(t: impl Into<String>) -> MultiformatMessageString {
    MultiformatMessageString::builder().text(t.into()).build()
}

fn rule_descriptor(rule: Rule) -> ReportingDescriptor {
    let (name, description) = rule.describe();
    let severity = rule.typical_severity();
    let mut props = BTreeMap::new();
    props.insert(
        "security-severity".to_string(),
        serde_json::json!(security_severity(severity)),
    );
    props.insert("precision".to_string(), serde_json::json!("high"));
    ReportingDescriptor::builder()
        .id(rule.id())
        .name(name)
        .short_description(text(description))
        .full_description(text(description))
        .help(text(format!(
            "{description} modelguard reads pickles with its own allowlist machine and never runs them; \
             convert the file with `modelguard convert` to get only its tensors, or remove it."
        )))
        .default_configuration(
            ReportingConfiguration::builder()
                .level(serde_json::json!(level(severity)))
                .build(),
        )
        .properties(
            PropertyBag::builder()
                .tags(vec!["security".to_string(), "supply-chain".to_string()])
                .additional_properties(props)
                .build(),
        )
        .build()
}

/// A relative path as a URI reference: `/` separators, everything outside the unreserved set
/// and `/` percent-encoded.
fn uri(relative: &str) -> String {
    relative
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn render(report: &ScanReport) -> serde_json::Result<String> {
    let mut results = Vec::new();
    for file in &report.files {
        for u in &file.unscanned {
            let mut fp = BTreeMap::new();
            fp.insert(
                "modelguardFinding/v1".to_string(),
                crate::cli::report::hex(&Sha256::digest(
                    format!(
                        "{UNSCANNED_RULE}\0{}\0{}\0{}",
                        file.relative,
                        u.member.as_deref().unwrap_or(""),
                        u.format
                    )
                    .as_bytes(),
                )),
            );
            let at = u
                .member
                .as_deref()
                .map(|m| format!(" (member {m})"))
                .unwrap_or_default();
            let mut result = SarifResult::builder()
                .rule_id(UNSCANNED_RULE)
                .level(ResultLevel::Error)
                .message(
                    Message::builder()
                        .text(format!("{}{at}: not read: {}", file.path, u.reason))
                        .build(),
                )
                .locations(vec![artifact(&file.relative)])
                .partial_fingerprints(fp)
                .build();
            if let Some(j) = &u.justification {
                result.suppressions = Some(vec![Suppression::builder()
                    .kind(serde_json::json!("external"))
                    .status(serde_json::json!("accepted"))
                    .justification(j.clone())
                    .build()]);
            }
            results.push(result);
        }
        for f in &file.findings {
            let (rule, severity) = (f.rule, f.severity);
            let location = artifact(&file.relative);
            let mut fp = BTreeMap::new();
            fp.insert(
                "modelguardFinding/v1".to_string(),
                crate::cli::report::hex(&Sha256::digest(
                    format!("{}\0{}\0{}", rule.id(), file.relative, fingerprint_key(f)).as_bytes(),
                )),
            );
            let mut props = BTreeMap::new();
            props.insert("severity".to_string(), serde_json::json!(severity));
            if let Some(sha) = &file.sha256 {
                props.insert("sha256".to_string(), serde_json::json!(sha));
            }
            results.push(
                SarifResult::builder()
                    .rule_id(rule.id())
                    .level(level(severity))
                    .message(
                        Message::builder()
                            .text(format!("{}: {}", file.path, f.message))
                            .build(),
                    )
                    .locations(vec![location])
                    .partial_fingerprints(fp)
                    .properties(PropertyBag::builder().additional_properties(props).build())
                    .build(),
            );
        }
    }
    let driver = ToolComponent::builder()
        .name("modelguard")
        .version(env!("CARGO_PKG_VERSION"))
        .information_uri("https://github.com/modelguard/modelguard")
        .rules(
            Rule::ALL
                .iter()
                .map(|r| rule_descriptor(*r))
                .chain([unscanned_descriptor()])
                .collect::<Vec<_>>(),
        )
        .build();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(results)
        .build();
    let sarif = Sarif::builder()
        .schema(SCHEMA)
        .version(serde_json::json!("2.1.0"))
        .runs(vec![run])
        .build();
    serde_json::to_string_pretty(&sarif)
}

/// What identifies a finding inside its file, independent of its message wording.
fn fingerprint_key(f: &super::report::ScanFinding) -> String {
    format!(
        "{}\0{}\0{}",
        f.location.member.as_deref().unwrap_or(""),
        f.location.opcode.as_deref().unwrap_or(""),
        f.global.as_deref().unwrap_or("")
    )
}
