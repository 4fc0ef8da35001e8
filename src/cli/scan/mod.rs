//! `modelguard scan PATH...`: every file under the paths, sniffed by content and read by the
//! same allowlist machine as `convert`, in the same jail, files in parallel (one worker each).

mod config;
pub(crate) mod report;
pub(crate) mod sarif;
mod walk;

use super::convert::{open_input, parse_untrusted, Sandbox};
use super::ScanArgs;
use crate::convert::{ConvertOptions, EXIT_ERROR};
use crate::formats::Options;
use crate::policy::findings::{Finding, Rule, Severity};
use report::{FileResult, ScanFinding, ScanReport, ScanVerdict, UnscannedPart};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use walk::{Target, TargetKind};

pub fn run(args: &ScanArgs) -> i32 {
    let (limits, sandbox) = match args.isolation.resolve() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("modelguard: {e}");
            return EXIT_ERROR;
        }
    };
    let opts = ConvertOptions {
        format: Options {
            limits,
            skip_unsupported: true,
            ..Default::default()
        },
        fail_on: None,
        scan_only: true,
        ..Default::default()
    };
    let config = match config::Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("modelguard: config: {e}");
            return EXIT_ERROR;
        }
    };
    let fail_on = match args.fail_on {
        Some(f) => f.0,
        None => config.fail_on.unwrap_or(Some(Severity::High)),
    };
    let source_finding = match super::source_arg(args.source.as_deref()) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let targets = walk::collect(&args.paths);
    // A BOM without hashes would not identify the files it lists, whatever the report format.
    let hashes = !args.no_hash && (args.format != "text" || args.bom.is_some());
    let ctx = Ctx {
        opts: &opts,
        sandbox: &sandbox,
        config: &config,
        hashes,
    };
    let mut results = scan_all(&targets, &ctx, args.jobs);
    if let Some(f) = source_finding {
        for r in results
            .iter_mut()
            .filter(|r| r.verdict != ScanVerdict::Skipped)
        {
            r.findings.push(ScanFinding::from(f.clone()));
            // Findings can only make a file malicious; an error or unscanned content stays.
            let v = FileResult::verdict_from_findings(&r.findings);
            if v == ScanVerdict::Malicious
                || matches!(r.verdict, ScanVerdict::Clean | ScanVerdict::Suspicious)
            {
                r.verdict = v;
            }
        }
    }
    let report = ScanReport::new(results, fail_on);
    if let Some(path) = &args.bom {
        if let Err(e) = scan_bom(&report).and_then(|b| crate::provenance::write_bom(path, &b)) {
            eprintln!("modelguard: cannot write the BOM: {e}");
            return EXIT_ERROR;
        }
    }
    let rendered = match args.format.as_str() {
        "json" => serde_json::to_string_pretty(&report).map_err(|e| e.to_string()),
        "sarif" => sarif::render(&report).map_err(|e| e.to_string()),
        _ => Ok(report.to_text()),
    };
    let rendered = match rendered {
        Ok(r) => r,
        Err(e) => {
            eprintln!("modelguard: cannot render the report: {e}");
            return EXIT_ERROR;
        }
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, rendered + "\n"),
        None => {
            use std::io::Write;
            std::io::stdout()
                .lock()
                .write_all((rendered + "\n").as_bytes())
        }
    };
    if let Err(e) = written {
        eprintln!("modelguard: cannot write the report: {e}");
        return EXIT_ERROR;
    }
    report.exit_code
}

/// What every file's scan shares.
struct Ctx<'a> {
    opts: &'a ConvertOptions,
    sandbox: &'a Sandbox,
    config: &'a config::Config,
    hashes: bool,
}

/// Scan every target on `jobs` threads (each file runs in its own jailed worker).
/// The BOM of a scan: every file that was scanned, with its findings.
fn scan_bom(report: &ScanReport) -> Result<serde_json::Value, String> {
    use crate::provenance::bom;
    let scanned: Vec<&FileResult> = report
        .files
        .iter()
        .filter(|f| f.verdict != ScanVerdict::Skipped)
        .collect();
    let files = scanned
        .iter()
        .map(|f| bom::BomFile {
            name: f.path.clone(),
            sha256: f.sha256.clone(),
            size: Some(f.size),
            format: (f.format != "unknown").then(|| f.format.clone()),
            tensor_count: None,
        })
        .collect();
    let findings = scanned
        .iter()
        .enumerate()
        .flat_map(|(i, f)| {
            f.findings.iter().map(move |x| bom::BomFinding {
                rule_id: x.rule_id.into(),
                rule_name: x.rule_name.into(),
                severity: x.severity.to_string(),
                message: x.message.clone(),
                file: i,
            })
        })
        .collect();
    bom::scan_bom(&bom::ScanBom {
        serial: &crate::provenance::bom_serial(),
        timestamp: &crate::provenance::rfc3339_now(),
        tool: bom::BomTool {
            name: "modelguard".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        files,
        findings,
    })
    .map_err(|e| e.to_string())
}

fn scan_all(targets: &[Target], ctx: &Ctx, jobs: Option<usize>) -> Vec<FileResult> {
    let jobs = jobs
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .clamp(1, 64);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<FileResult>>> = Mutex::new(vec![None; targets.len()]);
    let progress = std::io::stderr().is_terminal() && targets.len() > 20;
    std::thread::scope(|s| {
        for _ in 0..jobs.min(targets.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(t) = targets.get(i) else { break };
                let r = scan_target(t, ctx);
                if let Ok(mut all) = results.lock() {
                    all[i] = Some(r);
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if progress {
                    eprint!("\rmodelguard: scanned {n}/{} files", targets.len());
                }
            });
        }
    });
    if progress {
        eprintln!();
    }
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

fn relative(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        path.file_name().map(Path::new).unwrap_or(path)
    } else {
        rel
    };
    rel.to_string_lossy().replace('\\', "/")
}

fn scan_target(t: &Target, ctx: &Ctx) -> FileResult {
    let path = &t.path;
    let mut r = FileResult {
        path: path.display().to_string(),
        relative: relative(path, &t.root),
        sha256: None,
        size: t.size,
        format: "unknown".into(),
        verdict: ScanVerdict::Skipped,
        reason: None,
        findings: Vec::new(),
        suppressed: Vec::new(),
        unscanned: Vec::new(),
        warnings: Vec::new(),
    };
    if !ctx.config.selects(&r.relative) {
        r.reason = Some("not selected by the config's include/exclude globs".into());
        return r;
    }
    match &t.kind {
        TargetKind::Skip(reason) => {
            r.reason = Some(reason.clone());
            return r;
        }
        TargetKind::Error(message) => {
            r.verdict = ScanVerdict::Error;
            r.reason = Some(message.clone());
            return r;
        }
        TargetKind::Scan => {}
    }
    let (input, len) = match open_input(path) {
        Ok(x) => x,
        Err(e) => {
            r.verdict = ScanVerdict::Error;
            r.reason = Some(e.to_string());
            return r;
        }
    };
    r.size = len;
    if ctx.hashes {
        r.sha256 = super::report::sha256_open_file(&input).ok();
    }
    let mut sink = match std::fs::OpenOptions::new().write(true).open("/dev/null") {
        Ok(f) => f,
        Err(e) => {
            r.verdict = ScanVerdict::Error;
            r.reason = Some(format!("cannot open /dev/null: {e}"));
            return r;
        }
    };
    let near = std::env::temp_dir();
    let (outcome, _) = parse_untrusted(&input, len, &mut sink, Some(&near), ctx.opts, ctx.sandbox);
    r.format = outcome.format.clone();
    r.warnings = outcome.warnings;
    let mut findings: Vec<Finding> = outcome.findings;
    if let Some(f) = extension_mismatch(path, &r.format) {
        findings.push(f);
    }
    for mut f in findings {
        if let Some(s) = ctx.config.suppression(f.rule, &r.relative) {
            let mut sf = ScanFinding::from(f);
            sf.justification = Some(s.justification.clone());
            r.suppressed.push(sf);
            continue;
        }
        let allowed = ctx.config.allowance(f.rule, f.global.as_deref()).cloned();
        if allowed.is_some() {
            f.severity = Severity::Info;
        }
        let mut sf = ScanFinding::from(f);
        sf.justification = allowed.map(|a| format!("allowed by the config: {}", a.justification));
        r.findings.push(sf);
    }
    let mut unscanned = outcome.unscanned;
    let not_a_model = r.findings.is_empty()
        && (r.format == "unknown"
            || outcome
                .error
                .as_ref()
                .is_some_and(|e| e.kind == "unknown-format"));
    if not_a_model && unscanned.is_empty() {
        // The content matched nothing; a name that says "code-carrying format" is still
        // something we did not read (protobuf formats have no magic bytes).
        if let Some(u) = by_extension(path) {
            r.format = u.format.clone();
            unscanned.push(u);
        }
    }
    r.unscanned = unscanned
        .into_iter()
        .map(|u| {
            let justification = ctx
                .config
                .acceptance(&u.format, &r.relative)
                .map(|a| a.justification.clone());
            UnscannedPart {
                member: u.member,
                format: u.format,
                reason: u.reason,
                justification,
            }
        })
        .collect();
    r.verdict = FileResult::verdict_from_findings(&r.findings);
    if let Some(e) = outcome.error {
        if not_a_model {
            // Nothing we read; unless something unread was recognised, nothing to read either.
            if r.unscanned.is_empty() {
                r.verdict = ScanVerdict::Skipped;
                r.format = "unknown".into();
            }
        } else if r.verdict != ScanVerdict::Malicious {
            r.verdict = ScanVerdict::Error;
        }
        r.reason = Some(e.message);
    }
    settle_unscanned(&mut r);
    r
}

/// Unscanned content fails the file unless it is malicious or an error already; when the
/// config accepts all of it, a file that is nothing but an unread format is `skipped`.
fn settle_unscanned(r: &mut FileResult) {
    if r.unscanned.is_empty() || matches!(r.verdict, ScanVerdict::Malicious | ScanVerdict::Error) {
        return;
    }
    let pending: Vec<&UnscannedPart> = r
        .unscanned
        .iter()
        .filter(|u| u.justification.is_none())
        .collect();
    if let Some(first) = pending.first() {
        r.verdict = ScanVerdict::Unscanned;
        let more = match pending.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        let at = first
            .member
            .as_deref()
            .map(|m| format!("member {m}: "))
            .unwrap_or_default();
        r.reason = Some(format!("not read: {at}{}{more}", first.reason));
        return;
    }
    let whole = r.unscanned.iter().find(|u| u.member.is_none());
    if let (Some(u), true) = (whole, r.findings.is_empty()) {
        r.verdict = ScanVerdict::Skipped;
        r.reason = Some(format!(
            "not read ({}); accepted by the config: {}",
            u.format,
            u.justification.as_deref().unwrap_or_default()
        ));
    }
}

/// The unread format a file's name says it is (only asked when its content matched nothing).
fn by_extension(path: &Path) -> Option<crate::formats::registry::Unscanned> {
    use crate::formats::registry;
    let name = path.file_name()?.to_str()?;
    let kind = registry::by_extension(name)?;
    let mut u = registry::Unscanned::of(kind, None);
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    u.reason = format!(
        "the content matches no format modelguard knows, and the extension .{ext} names {}: {}",
        registry::entry(kind).name,
        u.reason
    );
    Some(u)
}

/// Content that disagrees with the file's extension: the classic way past scanners that pick
/// files by name (a pickle named `.safetensors`, `.json` or `.npy`).
fn extension_mismatch(path: &Path, format: &str) -> Option<Finding> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    let pickles = [
        "torch-zip",
        "torchscript",
        "torch-legacy",
        "torch-tar",
        "pickle",
        "joblib",
    ];
    if crate::formats::registry::extension_names(&ext, format) {
        return None;
    }
    let expected: &[&str] = match ext.as_str() {
        "safetensors" => &["safetensors"],
        "npy" => &["npy"],
        "npz" => &["npz"],
        "json" | "txt" | "md" | "yaml" | "yml" | "csv" | "onnx" | "gguf" | "h5" | "msgpack" => &[],
        "pt" | "pth" | "bin" | "ckpt" | "pkl" | "pickle" | "joblib" | "jit" => {
            if pickles.contains(&format) || format == "npz" || format == "unknown" {
                return None;
            }
            &["torch-zip"]
        }
        _ => return None,
    };
    if format == "unknown" || expected.contains(&format) {
        return None;
    }
    Some(Finding {
        rule: Rule::ExtensionMismatch,
        severity: Severity::Medium,
        message: format!("the content is {format}, not what the extension .{ext} says"),
        global: None,
        location: Default::default(),
    })
}
