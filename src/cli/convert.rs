//! `modelguard convert`: one file to one safetensors file, or a Hugging Face folder to a folder.
//! Output goes to a temporary file beside the destination and is renamed into place only after
//! it was written completely and re-validated; nothing is left behind on failure.

use super::report::{sha256_open_file, FileReport, Report};
use super::{folder, ConvertArgs};
use crate::convert::{self, ConvertOptions, EXIT_ERROR, EXIT_OK, EXIT_REFUSED};
use crate::error::Error;
use crate::formats::Options;
use crate::output::{validate_header, Strictness};
use crate::policy::findings::Finding;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub fn run(args: &ConvertArgs) -> i32 {
    let (limits, sandbox) = match args.isolation.resolve() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("modelguard: {e}");
            return EXIT_ERROR;
        }
    };
    let opts = ConvertOptions {
        format: Options {
            skip_unsupported: args.skip_unsupported,
            limits,
            ..Default::default()
        },
        fail_on: args.fail_on.0,
        dedup: args.dedup,
        fsync: args.fsync,
        scan_only: false,
        allow_empty: false,
    };
    let target = match Target::of(args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("modelguard: {e}");
            return EXIT_ERROR;
        }
    };
    let source_finding = match super::source_arg(target.source.as_deref()) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let hashes = args.report.is_some() || args.bom.is_some();
    let (report, code) = convert_checked_source(
        &target.input,
        &target.output,
        &opts,
        &sandbox,
        hashes,
        source_finding,
        target.replace,
    );
    if let Some(path) = &args.bom {
        let bom = conversion_bom(&report, target.source.as_deref(), &args.isolation.sandbox)
            .and_then(|b| crate::provenance::write_bom(path, &b));
        if let Err(e) = bom {
            eprintln!("modelguard: cannot write the BOM: {e}");
            return EXIT_ERROR;
        }
    }
    if !args.quiet {
        print_summary(&report);
    } else if code == EXIT_ERROR {
        // -q silences findings and progress, never the reason a conversion failed.
        print_error(&report.summary);
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

/// What one `convert` run reads and writes: from the arguments, or for `--hf-cache` from the
/// cache (an explicit `--source` still wins).
struct Target {
    input: PathBuf,
    output: PathBuf,
    source: Option<String>,
    /// Replace an existing output folder (a cached snapshot's earlier conversion).
    replace: bool,
}

impl Target {
    fn of(args: &ConvertArgs) -> Result<Target, String> {
        let Some(spec) = &args.hf_cache else {
            let (Some(input), Some(output)) = (&args.input, &args.output) else {
                return Err("convert needs INPUT and OUTPUT (or --hf-cache org/name)".into());
            };
            return Ok(Target {
                input: input.clone(),
                output: output.clone(),
                source: args.source.clone(),
                replace: false,
            });
        };
        let root = super::hf_cache::cache_root(&|k| std::env::var(k).ok())?;
        let snap = super::hf_cache::resolve(spec, &root)?;
        super::hf_cache::prepare_output_parent(&snap)?;
        Ok(Target {
            source: args.source.clone().or_else(|| Some(snap.source_uri())),
            input: snap.snapshot,
            output: snap.output,
            replace: true,
        })
    }
}

/// Convert a file or a Hugging Face folder, unless the finding of a look-alike `--source`
/// already refuses it (then nothing is read); that finding joins the report either way.
pub(crate) fn convert_checked_source(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    sandbox: &Sandbox,
    hashes: bool,
    source_finding: Option<Finding>,
    replace: bool,
) -> (Report, i32) {
    // Temporaries of runs killed while writing beside this destination go first (a folder's
    // shards are staged beside it too).
    crate::staging::sweep(&parent_dir(output));
    let (mut report, code) = match &source_finding {
        Some(f) if convert::refused(std::slice::from_ref(f), opts.fail_on) => {
            let r = FileReport {
                input: input.display().to_string(),
                format: "unknown".into(),
                verdict: Some(convert::verdict(std::slice::from_ref(f), false)),
                ..Default::default()
            };
            (Report::new(r, EXIT_REFUSED, Vec::new()), EXIT_REFUSED)
        }
        _ if input.is_dir() => {
            folder::convert_folder(input, output, opts, sandbox, hashes, replace)
        }
        _ => {
            let (r, code) = convert_file(input, output, opts, sandbox, hashes);
            (Report::new(r, code, Vec::new()), code)
        }
    };
    if let Some(f) = source_finding {
        let s = &mut report.summary;
        s.findings.push(f);
        s.verdict = Some(convert::verdict(&s.findings, s.error.is_some()));
    }
    (report, code)
}

/// The BOM of a conversion: the output as the model, the input as its pedigree; a refused or
/// failed conversion has no output, so its BOM lists the input and the findings only.
pub(crate) fn conversion_bom(
    report: &Report,
    source: Option<&str>,
    sandbox: &str,
) -> Result<serde_json::Value, String> {
    use crate::provenance::{bom, bom_finding, bom_serial, rfc3339_now};
    let s = &report.summary;
    let name = |p: &str| {
        Path::new(p)
            .file_name()
            .map_or(p.to_string(), |n| n.to_string_lossy().into_owned())
    };
    let input = bom::BomFile {
        name: name(&s.input),
        sha256: s.input_sha256.clone(),
        size: fs::metadata(&s.input)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len()),
        format: Some(s.format.clone()),
        tensor_count: None,
    };
    let tool = bom::BomTool {
        name: "modelguard".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let (serial, timestamp) = (bom_serial(), rfc3339_now());
    let findings: Vec<bom::BomFinding> = s.findings.iter().map(|f| bom_finding(f, 0)).collect();
    let Some(output) = s.output.as_deref().filter(|_| report.exit_code == EXIT_OK) else {
        return bom::scan_bom(&bom::ScanBom {
            serial: &serial,
            timestamp: &timestamp,
            tool,
            files: vec![input],
            findings,
        })
        .map_err(|e| e.to_string());
    };
    let layers = s
        .sandbox
        .as_ref()
        .map(|l| {
            l.all()
                .iter()
                .map(|(n, st)| (n.to_string(), st.label().to_string()))
                .collect()
        })
        .unwrap_or_default();
    bom::conversion_bom(&bom::ConversionBom {
        serial: &serial,
        timestamp: &timestamp,
        tool,
        input,
        source,
        output: bom::BomFile {
            name: name(output),
            sha256: s.output_sha256.clone(),
            size: fs::metadata(output)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len()),
            format: Some("safetensors".into()),
            tensor_count: Some(s.tensor_count as u64),
        },
        sandbox,
        layers,
        findings,
    })
    .map_err(|e| e.to_string())
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
        _ => print_error(s),
    }
}

fn print_error(s: &FileReport) {
    eprintln!(
        "modelguard: error: {}: {}",
        s.input,
        s.error.as_deref().unwrap_or("conversion failed")
    );
}

/// Convert one file. Returns its report and exit code.
pub fn convert_file(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    sandbox: &Sandbox,
    hashes: bool,
) -> (FileReport, i32) {
    let report = FileReport {
        input: input.display().to_string(),
        format: "unknown".into(),
        ..Default::default()
    };
    let (file, len) = match open_input(input) {
        Ok(f) => f,
        Err(e) => return failed(report, e.to_string(), Vec::new(), opts),
    };
    // The input hash runs on the second core while the conversion runs on the first.
    std::thread::scope(|scope| {
        let input_hash = hashes.then(|| scope.spawn(|| sha256_open_file(&file).ok()));
        let (mut report, code) =
            convert_open_file(&file, len, report, output, opts, sandbox, hashes);
        if let Some(h) = input_hash {
            report.input_sha256 = h.join().ok().flatten();
        }
        (report, code)
    })
}

fn failed(
    mut report: FileReport,
    e: String,
    findings: Vec<Finding>,
    opts: &ConvertOptions,
) -> (FileReport, i32) {
    report.error = Some(e);
    let refused = convert::refused(&findings, opts.fail_on);
    report.verdict = Some(convert::verdict(&findings, true));
    report.findings = findings;
    (report, if refused { EXIT_REFUSED } else { EXIT_ERROR })
}

fn convert_open_file(
    file: &File,
    len: u64,
    mut report: FileReport,
    output: &Path,
    opts: &ConvertOptions,
    sandbox: &Sandbox,
    hashes: bool,
) -> (FileReport, i32) {
    let result = write_atomically(output, opts.fsync, hashes, |tmp| {
        let near = parent_dir(output);
        let (outcome, layers) = parse_untrusted(file, len, tmp, Some(&near), opts, sandbox);
        report.sandbox = layers;
        report.format = outcome.format.clone();
        report.warnings = outcome.warnings.clone();
        if outcome.refused || outcome.error.is_some() || !outcome.written {
            return Ok(Err(outcome));
        }
        Ok(Ok(outcome))
    });
    let (outcome, sha) = match result {
        Ok((Ok(outcome), sha)) => (outcome, sha),
        Ok((Err(outcome), _)) => {
            if outcome.refused {
                report.verdict = Some(convert::verdict(&outcome.findings, outcome.error.is_some()));
                report.error = outcome.error.map(|e| e.message);
                report.findings = outcome.findings;
                return (report, EXIT_REFUSED);
            }
            let msg = outcome
                .error
                .map(|e| e.message)
                .unwrap_or_else(|| "no output was written".into());
            return failed(report, msg, outcome.findings, opts);
        }
        Err(e) => return failed(report, e.to_string(), Vec::new(), opts),
    };
    report.tensor_count = outcome.tensors.len();
    report.total_bytes = outcome.tensors.iter().map(|t| t.nbytes).sum();
    // Told by the parser, so only kept when it agrees with the validated table.
    report.layout = outcome
        .layout
        .filter(|l| l.agrees_with(outcome.tensors.iter().map(|t| t.name.as_str())));
    report.tensors = outcome.tensors;
    report.output = Some(output.display().to_string());
    report.output_sha256 = sha;
    report.verdict = Some(convert::verdict(&outcome.findings, false));
    report.findings = outcome.findings;
    (report, EXIT_OK)
}

/// The sandbox `--sandbox NAME` asks for, ready to use.
pub(crate) fn choose_sandbox(
    name: &str,
    timeout: Option<u64>,
    require_full_jail: bool,
) -> Result<Sandbox, String> {
    let jail = crate::jail::JailOptions {
        timeout: timeout.map(std::time::Duration::from_secs),
        require_full_jail,
        worker_exe: None,
    };
    match name {
        "none" => {
            eprintln!("modelguard: warning: --sandbox none parses untrusted bytes in this process (debugging only)");
            Ok(Sandbox::None)
        }
        #[cfg(feature = "wasi")]
        "wasi" => Ok(Sandbox::Wasi(
            Box::new(crate::wasi::Runner::new()?),
            std::time::Duration::from_secs(timeout.unwrap_or(600)),
        )),
        #[cfg(feature = "wasi")]
        "both" => Ok(Sandbox::Both(StackedGuest::new()?, jail)),
        #[cfg(not(feature = "wasi"))]
        "wasi" | "both" => {
            Err("this modelguard was built without the WASI host (feature `wasi`)".into())
        }
        _ => Ok(Sandbox::Native(jail)),
    }
}

/// Where untrusted bytes are parsed.
pub enum Sandbox {
    /// The jailed worker (Linux).
    #[cfg(target_os = "linux")]
    Native(crate::jail::JailOptions),
    /// The WASI guest run by wasmtime.
    #[cfg(feature = "wasi")]
    Wasi(Box<crate::wasi::Runner>, std::time::Duration),
    /// The WASI guest run by wasmtime inside the jailed worker.
    #[cfg(feature = "wasi")]
    Both(StackedGuest, crate::jail::JailOptions),
    /// In-process, for debugging.
    None,
}

/// The compiled guest as a file the stacked worker can load before its lock-down: the module
/// cache entry, or a private temporary copy when there is no cache folder.
#[cfg(feature = "wasi")]
pub struct StackedGuest {
    module: PathBuf,
    _private: Option<tempfile::TempDir>,
}

#[cfg(feature = "wasi")]
impl StackedGuest {
    fn new() -> Result<StackedGuest, String> {
        let mut runner = crate::wasi::Runner::new()?;
        if let Some(m) = runner.module_file() {
            return Ok(StackedGuest {
                module: m.to_path_buf(),
                _private: None,
            });
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let module = runner
            .save_module(dir.path(), "guest.cwasm")
            .map_err(|e| format!("cannot store the compiled guest: {e}"))?;
        Ok(StackedGuest {
            module,
            _private: Some(dir),
        })
    }
}

/// Parse the input into `tmp`, jailed or not. The caller validates `tmp` against the outcome.
pub(super) fn parse_untrusted(
    input: &File,
    len: u64,
    tmp: &mut File,
    tmp_dir: Option<&Path>,
    opts: &ConvertOptions,
    sandbox: &Sandbox,
) -> (crate::convert::Outcome, Option<crate::jail::Layers>) {
    // Only the WASI sandboxes stage the guest's folder there.
    #[cfg(not(feature = "wasi"))]
    let _ = tmp_dir;
    match sandbox {
        #[cfg(target_os = "linux")]
        Sandbox::Native(jail) => crate::jail::convert(input, len, tmp, opts, jail),
        #[cfg(feature = "wasi")]
        Sandbox::Wasi(runner, timeout) => {
            let near = tmp_dir.unwrap_or(Path::new("."));
            (runner.convert(input, len, tmp, near, opts, *timeout), None)
        }
        #[cfg(feature = "wasi")]
        Sandbox::Both(guest, jail) => {
            let near = tmp_dir.unwrap_or(Path::new("."));
            crate::jail::host::convert_stacked(input, len, tmp, near, opts, jail, &guest.module)
        }
        Sandbox::None => {
            use std::os::fd::AsFd;
            let mut reader = input;
            let fd = input.as_fd();
            let mut direct = |out: &mut &mut File, offset: u64, len: u64| {
                crate::jail::copy::copy_range(fd, &**out, offset, len)
            };
            (
                convert::run(&mut reader, len, opts, &mut *tmp, Some(&mut direct)),
                None,
            )
        }
    }
}

/// Open the input the way the jail design asks: the path resolved once, then opened read-only
/// without following a (swapped-in) symlink, and checked to be a regular file.
pub(crate) fn open_input(path: &Path) -> Result<(File, u64), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let with_path = |e: std::io::Error| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))
    };
    let real = fs::canonicalize(path).map_err(with_path)?;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&real)
        .map_err(with_path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(Error::UnknownFormat(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok((f, meta.len()))
}

/// Fill a temp file beside `output` through `fill`; when it returns `Ok(Ok(outcome))`, treat
/// the file as untrusted: validate its header strictly, check it against the outcome's tensor
/// table, hash it, and only then rename it into place with mode 0644. In every other case the
/// temp file is removed and `output` is untouched.
pub fn write_atomically<E>(
    output: &Path,
    fsync: bool,
    hashes: bool,
    fill: impl FnOnce(&mut File) -> crate::Result<Result<crate::convert::Outcome, E>>,
) -> crate::Result<(Result<crate::convert::Outcome, E>, Option<String>)> {
    let dir = parent_dir(output);
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp =
        crate::staging::file_beside(&dir, if name.is_empty() { "output" } else { &name })?;
    // The parser's output is append-only (no seek, pwrite or shared mapping in the jail), so it
    // is hashed while it is being written, on another core, instead of in a second pass.
    let done = AtomicBool::new(false);
    let path = tmp.path().to_path_buf();
    let (filled, sha) = std::thread::scope(|scope| {
        let hasher = hashes.then(|| scope.spawn(|| tail_hash(&path, &done)));
        let filled = fill(tmp.as_file_mut());
        done.store(true, Ordering::Release);
        let sha = hasher.and_then(|h| h.join().ok()).and_then(Result::ok);
        (filled, sha)
    });
    let outcome = match filled? {
        Ok(o) => o,
        Err(e) => return Ok((Err(e), None)),
    };
    let file = tmp.as_file_mut();
    if fsync {
        file.sync_all()?;
    }
    verify_output(tmp.path(), &outcome)?;
    set_mode_0644(tmp.path())?;
    tmp.persist(output).map_err(|e| Error::Io(e.error))?;
    Ok((Ok(outcome), sha))
}

/// The host's check of what the parser wrote: strict header validation, the header must list
/// exactly the tensors (names, dtypes, shapes) and metadata the outcome reports, and the file
/// length must be exact. Returns the file's sha256.
fn verify_output(path: &Path, outcome: &crate::convert::Outcome) -> crate::Result<()> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let header = validate_header(&mut f, len, Strictness::Canonical)
        .map_err(|e| Error::malformed(format!("the converted file failed validation: {e}")))?;
    let mut got: Vec<(String, String, Vec<u64>)> = header
        .tensors
        .iter()
        .map(|(n, d, s, _)| (n.clone(), d.as_str().to_string(), s.clone()))
        .collect();
    let mut want: Vec<(String, String, Vec<u64>)> = outcome
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.dtype.clone(), t.shape.clone()))
        .collect();
    got.sort();
    want.sort();
    if got != want || header.metadata != outcome.metadata {
        return Err(Error::malformed(
            "the converted file does not hold what the parser reported; refusing it",
        ));
    }
    Ok(())
}

/// sha256 of a file that another process is appending to, until `done` says the writer ended.
fn tail_hash(path: &Path, done: &AtomicBool) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let finished = done.load(Ordering::Acquire);
        let n = f.read(&mut buf)?;
        if n > 0 {
            h.update(&buf[..n]);
            continue;
        }
        if finished {
            // Everything written before `done` was set has been read: EOF after it is final.
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    Ok(super::report::hex(&h.finalize()))
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
