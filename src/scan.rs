//! The pipeline a scan runs inside the jail: read every pickle stream of a file for findings
//! (the same analysis `convert` runs, nothing written), or strictly validate a safetensors file.

use crate::convert::{ConvertOptions, Outcome};
use crate::formats::Format;
use crate::output::{validate_header, Strictness};
use crate::policy::findings::{Finding, Rule, Severity};
use std::io::{Read, Seek, SeekFrom};

/// How far into a file a protocol-0 "pickle" may fail and still be taken for text.
const TEXT_PREFIX: u64 = 16;

/// Scan one input of length `len`.
pub fn run<R: Read + Seek>(input: &mut R, len: u64, opts: &ConvertOptions) -> Outcome {
    if let Ok(Format::Safetensors) = crate::formats::sniff(input, len) {
        return safetensors(input, len);
    }
    let analysis = crate::convert::analyze(input, len, opts);
    // Text that happens to start with an opcode letter fails within its first bytes; a stream
    // that parsed further is a pickle, and its failure is an error (a loader may have run part
    // of it), never a skip.
    let early = match &analysis.error {
        Some(e @ crate::Error::Malformed { loc, .. }) => {
            loc.offset.is_none_or(|o| o < TEXT_PREFIX) && crate::formats::broke_before_a_call(e)
        }
        _ => false,
    };
    let (mut out, _tensors) = Outcome::analysed(analysis, opts.fail_on);
    let untouched_text = out.format == Format::Pickle.as_str() && out.findings.is_empty() && early;
    if let Some(e) = &out.error {
        if untouched_text && !starts_binary(input) {
            // A protocol-0 guess (text starting with an opcode letter) that CPython would also
            // reject before running anything: not a pickle, so skipped rather than an error.
            out.format = Format::Unknown.as_str().into();
            out.error = Some(crate::convert::OutcomeError {
                kind: "unknown-format".into(),
                message: format!(
                    "not a model file (text that is not a pickle: {})",
                    e.message
                ),
            });
        }
    }
    out
}

fn starts_binary<R: Read + Seek>(input: &mut R) -> bool {
    let mut b = [0u8; 1];
    input.seek(SeekFrom::Start(0)).is_ok() && input.read_exact(&mut b).is_ok() && b[0] == 0x80
}

fn safetensors<R: Read + Seek>(input: &mut R, len: u64) -> Outcome {
    let mut out = Outcome {
        format: Format::Safetensors.as_str().into(),
        ..Default::default()
    };
    if let Err(e) = validate_header(input, len, Strictness::Reference) {
        out.findings.push(Finding {
            rule: Rule::MalformedSafetensors,
            severity: Severity::High,
            message: format!("the safetensors header is rejected: {e}"),
            global: None,
            location: Default::default(),
        });
    }
    out
}
