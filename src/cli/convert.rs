//! `modelguard convert`: one file to one safetensors file, or a Hugging Face folder to a folder.
//! Output goes to a temporary file beside the destination and is renamed into place only after
//! it was written completely and re-validated; nothing is left behind on failure.

use super::report::{hex, sha256_file, FileReport, HashingWriter, Report};
use super::{folder, ConvertArgs};
use crate::convert::{self, ConvertOptions, EXIT_ERROR, EXIT_OK, EXIT_REFUSED};
use crate::error::Error;
use crate::formats::Options;
use crate::output::{validate_header, Strictness};
use crate::policy::findings::Finding;
use crate::tensors::gather::SeekReader;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn run(args: &ConvertArgs) -> i32 {
    let mut limits = crate::Limits::default();
    for l in &args.limits {
        if let Err(e) = limits.set(l) {
            eprintln!("modelguard: --limit: {e}");
            return EXIT_ERROR;
        }
    }
    let opts = ConvertOptions {
        format: Options {
            skip_unsupported: args.skip_unsupported,
            limits,
        },
        fail_on: args.fail_on.0,
        dedup: args.dedup,
        fsync: args.fsync,
    };
    let hashes = args.report.is_some();
    let (report, code) = if args.input.is_dir() {
        folder::convert_folder(&args.input, &args.output, &opts, hashes)
    } else {
        let (r, code) = convert_file(&args.input, &args.output, &opts, hashes);
        (Report::new(r, code, Vec::new()), code)
    };
    if !args.quiet {
        print_summary(&report);
    }
    if let Some(path) = &args.report {
        if let Err(e) = report.write_to(path) {
            eprintln!(
                "modelguard: cannot write the report to {}: {e}",
                path.display()
            );
            return EXIT_ERROR;
        }
    }
    code
}

fn print_summary(report: &Report) {
    let s = &report.summary;
    for f in report.files.iter().chain(std::iter::once(s)) {
        for finding in &f.findings {
            let loc = finding.location.to_string();
            eprintln!(
                "{} [{}] {}: {}{}",
                f.input,
                finding.severity,
                finding.rule.id(),
                finding.message,
                if loc.is_empty() {
                    String::new()
                } else {
                    format!(" ({loc})")
                }
            );
        }
        if report.files.len() > 1 && std::ptr::eq(f, s) {
            break;
        }
    }
    for w in &s.warnings {
        eprintln!("modelguard: warning: {w}");
    }
    match report.exit_code {
        EXIT_OK => eprintln!(
            "modelguard: converted {} tensors ({} bytes) from {} ({}) to {}",
            s.tensor_count,
            s.total_bytes,
            s.input,
            s.format,
            s.output.as_deref().unwrap_or("?")
        ),
        EXIT_REFUSED => eprintln!(
            "modelguard: refused {}: findings at or above --fail-on; nothing was written",
            s.input
        ),
        _ => eprintln!(
            "modelguard: error: {}: {}",
            s.input,
            s.error.as_deref().unwrap_or("conversion failed")
        ),
    }
}

/// Convert one file. Returns its report and exit code.
pub fn convert_file(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    hashes: bool,
) -> (FileReport, i32) {
    // The input hash runs on the second core while the conversion runs on the first.
    std::thread::scope(|scope| {
        let input_hash = hashes.then(|| scope.spawn(|| sha256_file(input).ok()));
        let (mut report, code) = convert_file_inner(input, output, opts, hashes);
        if let Some(h) = input_hash {
            report.input_sha256 = h.join().ok().flatten();
        }
        (report, code)
    })
}

fn convert_file_inner(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    hashes: bool,
) -> (FileReport, i32) {
    let mut report = FileReport {
        input: input.display().to_string(),
        format: "unknown".into(),
        ..Default::default()
    };
    let fail = |mut report: FileReport, e: Error, findings: Vec<Finding>| {
        report.error = Some(e.to_string());
        let refused = convert::refused(&findings, opts.fail_on);
        report.verdict = Some(convert::verdict(&findings, true));
        report.findings = findings;
        (report, if refused { EXIT_REFUSED } else { EXIT_ERROR })
    };
    let mut file = match open_input(input) {
        Ok(f) => f,
        Err(e) => return fail(report, e, Vec::new()),
    };
    let len = match file.metadata() {
        Ok(m) => m.len(),
        Err(e) => return fail(report, e.into(), Vec::new()),
    };
    let analysis = convert::analyze(&mut file, len, opts);
    report.format = analysis.format.as_str().into();
    report.warnings = analysis.warnings;
    let findings = analysis.findings.into_vec();
    if convert::refused(&findings, opts.fail_on) {
        report.verdict = Some(convert::verdict(&findings, analysis.error.is_some()));
        report.error = analysis.error.map(|e| e.to_string());
        report.findings = findings;
        return (report, EXIT_REFUSED);
    }
    if let Some(e) = analysis.error {
        return fail(report, e, findings);
    }
    let plan = match convert::plan(
        analysis.tensors,
        opts.dedup,
        opts.format.limits.max_output_bytes,
    ) {
        Ok(p) => p,
        Err(e) => return fail(report, e, findings),
    };
    report.tensor_count = plan.tensors.len();
    report.total_bytes = plan.total_bytes();
    report.tensors = plan.entries();
    match write_atomically(output, opts.fsync, |sink| {
        let mut w = HashingWriter {
            inner: sink,
            hasher: hashes.then(Sha256::new),
        };
        w = convert::write(&plan, &mut SeekReader(&mut file), w)?;
        w.flush()?;
        Ok(w.hasher.map(|h| hex(&h.finalize())))
    }) {
        Ok(sha) => {
            report.output = Some(output.display().to_string());
            report.output_sha256 = sha;
            report.verdict = Some(convert::verdict(&findings, false));
            report.findings = findings;
            (report, EXIT_OK)
        }
        Err(e) => fail(report, e, findings),
    }
}

fn open_input(path: &Path) -> Result<File, Error> {
    let f = File::open(path).map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))
    })?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(Error::UnknownFormat(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(f)
}

/// Write through `fill` into a temp file beside `output`, re-validate it, then rename it into
/// place with mode 0644. On any failure the temp file is removed and `output` is untouched.
pub fn write_atomically<T>(
    output: &Path,
    fsync: bool,
    fill: impl FnOnce(&mut File) -> crate::Result<T>,
) -> crate::Result<T> {
    let dir = parent_dir(output);
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".modelguard-tmp")
        .tempfile_in(&dir)?;
    let value = fill(tmp.as_file_mut())?;
    let file = tmp.as_file_mut();
    if fsync {
        file.sync_all()?;
    }
    let len = file.metadata()?.len();
    let mut reader = File::open(tmp.path())?;
    validate_header(&mut reader, len, Strictness::Canonical)
        .map_err(|e| Error::malformed(format!("our own output failed validation: {e}")))?;
    set_mode_0644(tmp.path())?;
    tmp.persist(output).map_err(|e| Error::Io(e.error))?;
    Ok(value)
}

pub fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(unix)]
fn set_mode_0644(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_mode_0644(_: &Path) -> std::io::Result<()> {
    Ok(())
}
