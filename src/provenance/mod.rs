//! Where a model came from and what changed: signatures (OMS), look-alike sources, tensor
//! digests and diffs, and the CycloneDX ML-BOM.

pub mod bom;
pub mod diff;
pub mod digest;
pub mod lookalike;
pub mod oms;
pub mod tensors;

use crate::policy::findings::{Finding, Rule, Severity};

/// The finding for a `--source` that imitates a well-known Hugging Face organisation or
/// repository (none for an exact or unrelated name); an error for a malformed source.
pub fn source_finding(source: &str) -> Result<Option<Finding>, String> {
    let hit = lookalike::LookalikeIndex::builtin()
        .check_source(source)
        .map_err(|e| format!("--source {source:?}: {e}"))?;
    Ok(hit.map(|l| Finding {
        rule: Rule::LookalikeSource,
        // The PoisonGPT pattern itself: an honest-looking model under an imitated name.
        severity: Severity::High,
        message: format!("the source {source:?} is a look-alike: {l}"),
        global: None,
        location: Default::default(),
    }))
}

/// Now as RFC 3339 UTC (`2026-11-22T12:00:00Z`), for BOM timestamps.
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A fresh `urn:uuid:` serial number for a BOM.
pub fn bom_serial() -> String {
    format!("urn:uuid:{}", uuid::Uuid::new_v4())
}

/// The BOM entries of a finding about file `file`.
pub fn bom_finding(f: &Finding, file: usize) -> bom::BomFinding {
    bom::BomFinding {
        rule_id: f.rule.id().into(),
        rule_name: f.rule.describe().0.into(),
        severity: f.severity.to_string(),
        message: f.message.clone(),
        file,
    }
}

/// Write a BOM as pretty JSON.
pub fn write_bom(path: &std::path::Path, bom: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(bom).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}
