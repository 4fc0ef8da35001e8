//! The conversion pipeline as the worker runs it: analyse the input, decide from the findings,
//! plan the output (dedup, metadata), and stream the safetensors bytes into any sink.
//! No paths and no OS calls here: the host hands us an open input and an output sink.

use crate::error::{Error, Result};
use crate::formats::{self, Analysis, Options};
use crate::limits::{Limits, VIEW_EXPANSION_ALLOWANCE};
use crate::output::{OutTensor, SafetensorsWriter};
use crate::policy::findings::{Finding, Severity};
use crate::tensors::gather::{gather, ReadAt};
use crate::tensors::spec::{TensorSpec, ViewKey};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::{Entry, HashMap};
use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};

/// Strided views are gathered in memory up to this many bytes of storage.
pub const MAX_GATHER_SPAN: u64 = 256 << 20;

/// Serialisable: the jailed worker and the WASI guest receive exactly these options.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConvertOptions {
    pub format: Options,
    /// Refuse when a finding reaches this severity; None converts regardless (`--fail-on none`).
    pub fail_on: Option<Severity>,
    pub dedup: bool,
    /// fsync outputs before they are renamed into place (the host's job: never sent to a jail).
    #[serde(skip)]
    pub fsync: bool,
    /// Only analyse and report (`modelguard scan`): nothing is written.
    pub scan_only: bool,
    /// A file without tensors is an empty table, not an error (`hash` and `diff` read tensors;
    /// `convert` refuses to write a weightless safetensors file).
    #[serde(default)]
    pub allow_empty: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            format: Options::default(),
            fail_on: Some(Severity::High),
            dedup: false,
            fsync: false,
            scan_only: false,
            allow_empty: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Clean,
    Suspicious,
    Malicious,
    Error,
}

/// Exit codes shared by every command.
pub const EXIT_OK: i32 = 0;
pub const EXIT_REFUSED: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

pub fn verdict(findings: &[Finding], error: bool) -> Verdict {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::High | Severity::Critical) => Verdict::Malicious,
        _ if error => Verdict::Error,
        Some(Severity::Medium) => Verdict::Suspicious,
        _ => Verdict::Clean,
    }
}

/// A tensor as the report lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub nbytes: u64,
}

/// What is written: tensors in the order given, plus `__metadata__`.
pub struct Plan {
    pub tensors: Vec<(String, TensorSpec)>,
    pub metadata: BTreeMap<String, String>,
}

impl Plan {
    pub fn entries(&self) -> Vec<TensorEntry> {
        self.tensors
            .iter()
            .map(|(n, s)| TensorEntry {
                name: n.clone(),
                dtype: s.dtype.as_str().into(),
                shape: s.shape.clone(),
                nbytes: s.nbytes(),
            })
            .collect()
    }

    pub fn total_bytes(&self) -> u64 {
        self.tensors.iter().map(|(_, s)| s.nbytes()).sum()
    }
}

/// Analyse an input (the engine entry point for every command).
pub fn analyze<R: Read + Seek>(input: &mut R, len: u64, opts: &ConvertOptions) -> Analysis {
    formats::analyze(input, len, &opts.format)
}

/// Whether the findings refuse the conversion.
pub fn refused(findings: &[Finding], fail_on: Option<Severity>) -> bool {
    fail_on.is_some_and(|level| findings.iter().any(|f| f.severity >= level))
}

/// Build the output plan. Exact aliases (tied weights: same storage, offset, shape, stride,
/// dtype) keep every name unless `dedup`, which keeps the lexicographically smallest and
/// records `dropped -> kept` in `__metadata__` as Hugging Face's converter does.
pub fn plan(tensors: Vec<(String, TensorSpec)>, dedup: bool, limits: &Limits) -> Result<Plan> {
    let mut metadata = BTreeMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    let mut tensors = tensors;
    if dedup {
        let mut sorted: Vec<usize> = (0..tensors.len()).collect();
        sorted.sort_by(|&a, &b| tensors[a].0.cmp(&tensors[b].0));
        let mut kept: HashMap<ViewKey<'_>, usize> = HashMap::new();
        let mut drop = vec![false; tensors.len()];
        for i in sorted {
            let spec = &tensors[i].1;
            if spec.nbytes() == 0 {
                continue;
            }
            match kept.entry(spec.view_key()) {
                Entry::Occupied(k) => {
                    metadata.insert(tensors[i].0.clone(), tensors[*k.get()].0.clone());
                    drop[i] = true;
                }
                Entry::Vacant(v) => {
                    v.insert(i);
                }
            }
        }
        let mut idx = 0;
        tensors.retain(|_| {
            let keep = !drop[idx];
            idx += 1;
            keep
        });
    }
    if metadata.contains_key("__metadata__") || tensors.iter().any(|(n, _)| n == "__metadata__") {
        return Err(Error::malformed(
            "a tensor is named `__metadata__`, which safetensors reserves",
        ));
    }
    let total: u64 = tensors.iter().map(|(_, s)| s.nbytes()).sum();
    if total > limits.max_output_bytes {
        return Err(Error::limit(
            "max_output_bytes",
            format!("{total} bytes of tensor data"),
        ));
    }
    // Aliases and overlapping (stride-0) views repeat stored bytes: a few hundred bytes could
    // otherwise demand terabytes of output. Tied weights and expanded buffers stay far below.
    let mut stored: HashMap<&str, u64> = HashMap::new();
    for (_, s) in &tensors {
        stored.insert(&s.storage_key, s.source.len());
    }
    let stored: u64 = stored.values().sum();
    let allowed = stored
        .saturating_mul(limits.max_view_expansion)
        .saturating_add(VIEW_EXPANSION_ALLOWANCE);
    if total > allowed {
        return Err(Error::limit(
            "max_view_expansion",
            format!(
                "the views demand {total} bytes of output from {stored} stored bytes (more than \
                 {}x + 256 MiB)",
                limits.max_view_expansion
            ),
        ));
    }
    Ok(Plan { tensors, metadata })
}

/// Copies `len` bytes at `offset` of the input straight into the sink, outside user space
/// (the host and the worker pass `copy_file_range`; the engine itself has no OS calls).
/// Returns `false`, having written nothing, when the kernel cannot do it for these files.
pub type DirectCopy<'a, W> = &'a mut dyn FnMut(&mut W, u64, u64) -> Result<bool>;

/// Stream the planned tensors as a safetensors file into `sink`.
pub fn write<W: Write>(plan: &Plan, input: &mut dyn ReadAt, sink: W) -> Result<W> {
    write_with(plan, input, sink, None)
}

/// [`write`], with contiguous little-endian storage ranges copied by `direct` when given.
pub fn write_with<W: Write>(
    plan: &Plan,
    input: &mut dyn ReadAt,
    sink: W,
    mut direct: Option<DirectCopy<'_, W>>,
) -> Result<W> {
    let out: Vec<OutTensor> = plan
        .tensors
        .iter()
        .map(|(n, s)| OutTensor {
            name: n.clone(),
            dtype: s.dtype,
            shape: s.shape.clone(),
        })
        .collect();
    let by_name: BTreeMap<&str, &TensorSpec> =
        plan.tensors.iter().map(|(n, s)| (n.as_str(), s)).collect();
    let mut writer = SafetensorsWriter::new(sink, out, &plan.metadata)?;
    let order: Vec<String> = writer.order().iter().map(|(t, _)| t.name.clone()).collect();
    for name in order {
        let spec = by_name[name.as_str()];
        if let (Some(copy), Some(offset)) = (direct.as_mut(), spec.direct_range()) {
            if writer.write_direct(spec.nbytes(), |sink| copy(sink, offset, spec.nbytes()))? {
                continue;
            }
            // Not possible between these files (e.g. across filesystems): copy in user space.
            direct = None;
        }
        gather(spec, input, MAX_GATHER_SPAN, &mut |chunk| {
            writer.write_data(chunk)
        })?;
    }
    writer.finish()
}

/// What went wrong, as the host needs it to choose an exit code and a message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutcomeError {
    /// `malformed`, `limit`, `unsupported`, `unknown-format`, `io`, `sandbox`, `crash`.
    pub kind: String,
    pub message: String,
}

impl From<&Error> for OutcomeError {
    fn from(e: &Error) -> Self {
        let kind = match e {
            Error::Malformed { .. } => "malformed",
            Error::Limit { .. } => "limit",
            Error::Unsupported { .. } => "unsupported",
            Error::UnknownFormat(_) => "unknown-format",
            Error::Io(_) => "io",
        };
        OutcomeError {
            kind: kind.into(),
            message: e.to_string(),
        }
    }
}

/// Everything one conversion produced, serialisable so that a jailed worker can hand it to the
/// host (which trusts none of it without checking the output against it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub format: String,
    pub findings: Vec<Finding>,
    pub warnings: Vec<String>,
    pub error: Option<OutcomeError>,
    /// Findings reached `fail_on`: nothing was written.
    pub refused: bool,
    /// The tensor table of the written file (in plan order).
    pub tensors: Vec<TensorEntry>,
    /// `__metadata__` of the written file.
    pub metadata: BTreeMap<String, String>,
    /// Whether a complete safetensors file was written to the sink.
    pub written: bool,
    /// The pickled root's shape (what `torch.load(weights_only=True)` would return).
    #[serde(default)]
    pub layout: Option<crate::tensors::layout::Layout>,
    /// What was recognised but not read although it can carry code (the file, or members).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unscanned: Vec<crate::formats::registry::Unscanned>,
}

impl Outcome {
    /// An outcome that is only an error of `kind` (`sandbox`, `limit`, `io`...).
    pub fn failure(kind: &str, message: impl Into<String>) -> Outcome {
        Outcome {
            error: Some(OutcomeError {
                kind: kind.into(),
                message: message.into(),
            }),
            ..Default::default()
        }
    }

    /// The outcome of an analysis before anything is written (findings, warnings, error and
    /// the decision), and the tensors it found.
    pub fn analysed(
        analysis: Analysis,
        fail_on: Option<Severity>,
    ) -> (Outcome, Vec<(String, TensorSpec)>) {
        let findings = analysis.findings.into_vec();
        let out = Outcome {
            format: analysis.format.as_str().into(),
            warnings: analysis.warnings,
            refused: refused(&findings, fail_on),
            findings,
            error: analysis.error.as_ref().map(OutcomeError::from),
            layout: analysis.layout,
            unscanned: analysis.unscanned,
            ..Default::default()
        };
        (out, analysis.tensors)
    }
}

/// The whole conversion of one input: analyse, decide, plan, and stream into `sink` (or, with
/// `scan_only`, the scan: findings only, nothing written).
pub fn run<R: Read + Seek, W: Write>(
    input: &mut R,
    len: u64,
    opts: &ConvertOptions,
    sink: W,
    direct: Option<DirectCopy<'_, W>>,
) -> Outcome {
    if opts.scan_only {
        return crate::scan::run(input, len, opts);
    }
    let analysis = analyze(input, len, opts);
    let not_convertible = formats::not_convertible(analysis.format);
    let (mut out, tensors) = Outcome::analysed(analysis, opts.fail_on);
    if let Some(message) = not_convertible {
        // Archives are read for their findings (a payload inside refuses, exit 1), but are
        // never converted; formats modelguard does not read are never converted either.
        let message = match &out.error {
            Some(e) => format!("{message} (reading it also failed: {})", e.message),
            None => message,
        };
        out.error = Some(OutcomeError {
            kind: "unsupported".into(),
            message,
        });
    }
    if out.refused || out.error.is_some() {
        return out;
    }
    if tensors.is_empty() && !opts.allow_empty {
        // An empty safetensors file would read as "the model has no weights"; say what it is.
        out.error = Some(OutcomeError {
            kind: "unsupported".into(),
            message: format!(
                "the file holds no tensors or numeric arrays, so there is nothing to convert \
                 ({} file; `modelguard scan` lists what it holds)",
                out.format
            ),
        });
        return out;
    }
    let plan = match plan(tensors, opts.dedup, &opts.format.limits) {
        Ok(p) => p,
        Err(e) => {
            out.error = Some((&e).into());
            return out;
        }
    };
    out.tensors = plan.entries();
    out.metadata = plan.metadata.clone();
    match write_with(
        &plan,
        &mut crate::tensors::gather::SeekReader(input),
        sink,
        direct,
    ) {
        Ok(mut w) => match w.flush() {
            Ok(()) => out.written = true,
            Err(e) => out.error = Some((&Error::Io(e)).into()),
        },
        Err(e) => out.error = Some((&e).into()),
    }
    out
}
