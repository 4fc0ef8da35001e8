//! The scan report: one entry per file (path, sha256, size, format, verdict, findings), a
//! summary, and the text rendering. JSON is this structure; SARIF is built from it.

use crate::policy::findings::{Finding, Severity};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanVerdict {
    Clean,
    Suspicious,
    Malicious,
    Error,
    /// A format that can carry code but that modelguard does not read (the file, or members of
    /// an archive): fails the gate like an error unless the config accepts it.
    Unscanned,
    Skipped,
}

impl ScanVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanVerdict::Clean => "clean",
            ScanVerdict::Suspicious => "suspicious",
            ScanVerdict::Malicious => "malicious",
            ScanVerdict::Error => "error",
            ScanVerdict::Unscanned => "unscanned",
            ScanVerdict::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanFinding {
    #[serde(skip)]
    pub rule: crate::policy::findings::Rule,
    pub rule_id: &'static str,
    pub rule_name: &'static str,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
    pub location: crate::error::Location,
    /// Why the config allowed or suppressed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

impl From<Finding> for ScanFinding {
    fn from(f: Finding) -> Self {
        ScanFinding {
            rule: f.rule,
            rule_id: f.rule.id(),
            rule_name: f.rule.describe().0,
            severity: f.severity,
            message: f.message,
            global: f.global,
            location: f.location,
            justification: None,
        }
    }
}

/// Something in the file that was not read although it can carry code.
#[derive(Debug, Clone, Serialize)]
pub struct UnscannedPart {
    /// The archive member (`outer/inner` when nested); none for the file itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    pub format: String,
    pub reason: String,
    /// Why the config accepts it (then it does not fail the scan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    /// As the user reaches it (a Hugging Face snapshot path, not the blob it links to).
    pub path: String,
    /// Relative to the scan root it was found under (SARIF artifact locations).
    #[serde(skip)]
    pub relative: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub size: u64,
    pub format: String,
    pub verdict: ScanVerdict,
    /// Why a file was skipped, or what made it an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub findings: Vec<ScanFinding>,
    /// Findings a config suppression matched (not counted, listed with the justification).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<ScanFinding>,
    /// What was not read although it can carry code (see `verdict` `unscanned`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unscanned: Vec<UnscannedPart>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl FileResult {
    pub fn verdict_from_findings(findings: &[ScanFinding]) -> ScanVerdict {
        match findings.iter().map(|f| f.severity).max() {
            Some(Severity::High | Severity::Critical) => ScanVerdict::Malicious,
            Some(Severity::Medium) => ScanVerdict::Suspicious,
            _ => ScanVerdict::Clean,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub files: usize,
    pub verdicts: BTreeMap<String, usize>,
    pub findings: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub tool: &'static str,
    pub version: &'static str,
    pub fail_on: Option<Severity>,
    pub files: Vec<FileResult>,
    pub summary: Summary,
    pub exit_code: i32,
}

impl ScanReport {
    pub fn new(files: Vec<FileResult>, fail_on: Option<Severity>) -> ScanReport {
        let mut summary = Summary {
            files: files.len(),
            ..Default::default()
        };
        for f in &files {
            *summary
                .verdicts
                .entry(f.verdict.as_str().to_string())
                .or_default() += 1;
            for finding in &f.findings {
                *summary
                    .findings
                    .entry(finding.severity.to_string())
                    .or_default() += 1;
            }
        }
        // What could not be read, or was not, fails the gate: errors and unscanned files.
        let errors = files
            .iter()
            .any(|f| matches!(f.verdict, ScanVerdict::Error | ScanVerdict::Unscanned));
        let failing = fail_on.is_some_and(|level| {
            files
                .iter()
                .flat_map(|f| &f.findings)
                .any(|f| f.severity >= level)
        });
        let exit_code = match (errors, failing) {
            (true, _) => crate::convert::EXIT_ERROR,
            (false, true) => crate::convert::EXIT_REFUSED,
            _ => crate::convert::EXIT_OK,
        };
        ScanReport {
            tool: "modelguard",
            version: env!("CARGO_PKG_VERSION"),
            fail_on,
            files,
            summary,
            exit_code,
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            let v = f.verdict.as_str();
            out.push_str(&format!("{}: {v} ({})", f.path, f.format));
            if let Some(r) = &f.reason {
                out.push_str(&format!(": {r}"));
            }
            out.push('\n');
            for u in &f.unscanned {
                out.push_str(&format!(
                    "  [unscanned] {}{}: {}{}\n",
                    u.member
                        .as_deref()
                        .map(|m| format!("{m}: "))
                        .unwrap_or_default(),
                    u.format,
                    u.reason,
                    u.justification
                        .as_deref()
                        .map(|j| format!(" (accepted by the config: {j})"))
                        .unwrap_or_default()
                ));
            }
            for finding in &f.findings {
                let loc = finding.location.to_string();
                out.push_str(&format!(
                    "  [{}] {} {}: {}{}\n",
                    finding.severity,
                    finding.rule_id,
                    finding.rule_name,
                    finding.message,
                    if loc.is_empty() {
                        String::new()
                    } else {
                        format!(" ({loc})")
                    }
                ));
            }
        }
        let counts: Vec<String> = self
            .summary
            .verdicts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        out.push_str(&format!(
            "{} files: {}; exit {}\n",
            self.summary.files,
            counts.join(", "),
            self.exit_code
        ));
        out
    }
}
