//! `modelguard verify`, `hash` and `diff`: provenance checks with text or JSON output and the
//! exit codes of every command (0 ok, 1 check failed or differences, 2 error).

use super::IsolationArgs;
use crate::convert::{ConvertOptions, EXIT_ERROR, EXIT_OK, EXIT_REFUSED};
use crate::formats::Options;
use crate::output::{validate_header, Strictness};
use crate::provenance::{diff, digest, oms, tensors};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// A safetensors file, or a model folder (every `*.safetensors` in it is validated).
    pub path: PathBuf,
    /// The file's expected sha256 (hex).
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// An OpenSSF model-signing signature (`model.sig`) of the folder; needs --public-key.
    #[arg(long, value_name = "FILE", requires = "public_key")]
    pub signature: Option<PathBuf>,
    /// The signer's EC public key (PEM, P-256 or P-384).
    #[arg(long, value_name = "FILE", requires = "signature")]
    pub public_key: Option<PathBuf>,
    /// Paths in the folder the signature need not cover (repeatable).
    #[arg(long, value_name = "PATH")]
    pub ignore_path: Vec<String>,
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

#[derive(clap::Args, Debug)]
pub struct HashArgs {
    /// A model file of any supported format (read through the jail unless it is safetensors).
    pub path: PathBuf,
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    #[command(flatten)]
    pub isolation: IsolationArgs,
}

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    pub a: PathBuf,
    pub b: PathBuf,
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    #[command(flatten)]
    pub isolation: IsolationArgs,
}

/// `println!` that ends quietly when stdout is closed (`modelguard hash … | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

#[derive(Serialize)]
struct Check {
    check: &'static str,
    subject: String,
    ok: bool,
    detail: String,
}

fn print_json<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => out!("{s}"),
        Err(e) => eprintln!("modelguard: cannot render JSON: {e}"),
    }
}

fn safetensors_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(path).follow_links(false) {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.file_type().is_file()
            && entry.path().extension().is_some_and(|e| e == "safetensors")
        {
            out.push(entry.into_path());
        }
    }
    out.sort();
    Ok(out)
}

pub fn verify(args: &VerifyArgs) -> i32 {
    let mut checks = Vec::new();
    let mut errors = Vec::new();
    match safetensors_files(&args.path) {
        Ok(files) => {
            for f in files {
                let result = super::convert::open_input(&f).and_then(|(mut file, len)| {
                    validate_header(&mut file, len, Strictness::Reference)
                });
                checks.push(Check {
                    check: "safetensors",
                    subject: f.display().to_string(),
                    ok: result.is_ok(),
                    detail: match result {
                        Ok(h) => format!("valid: {} tensors", h.tensors.len()),
                        Err(e) => format!("rejected: {e}"),
                    },
                });
            }
        }
        Err(e) => errors.push(format!("{}: {e}", args.path.display())),
    }
    if let Some(expected) = &args.sha256 {
        let actual = super::convert::open_input(&args.path)
            .map_err(|e| e.to_string())
            .and_then(|(f, _)| super::report::sha256_open_file(&f).map_err(|e| e.to_string()));
        match actual {
            Ok(actual) => checks.push(Check {
                check: "sha256",
                subject: args.path.display().to_string(),
                ok: actual.eq_ignore_ascii_case(expected.trim()),
                detail: format!("expected {}, actual {actual}", expected.trim()),
            }),
            Err(e) => errors.push(e),
        }
    }
    if let (Some(sig), Some(key)) = (&args.signature, &args.public_key) {
        match std::fs::read_to_string(key) {
            Err(e) => errors.push(format!("{}: {e}", key.display())),
            Ok(pem) => {
                let ignore: Vec<&str> = args.ignore_path.iter().map(String::as_str).collect();
                match oms::verify_model_with_signature_file(&args.path, sig, &pem, &ignore) {
                    Ok(v) => checks.push(Check {
                        check: "signature",
                        subject: sig.display().to_string(),
                        ok: true,
                        detail: format!(
                            "valid {:?} signature over {} files of `{}` (root sha256 {})",
                            v.curve,
                            v.files.len(),
                            v.model_name,
                            v.root_sha256
                        ),
                    }),
                    Err(oms::VerifyError::InvalidPublicKey(e)) => errors.push(format!(
                        "{}: not a P-256/P-384 public key: {e}",
                        key.display()
                    )),
                    Err(e @ oms::VerifyError::Io { .. }) => errors.push(e.to_string()),
                    Err(e) => checks.push(Check {
                        check: "signature",
                        subject: sig.display().to_string(),
                        ok: false,
                        detail: e.to_string(),
                    }),
                }
            }
        }
    }
    if checks.is_empty() && errors.is_empty() {
        errors.push(format!(
            "nothing to verify in {}: no safetensors file, and no --sha256 or --signature",
            args.path.display()
        ));
    }
    let code = if !errors.is_empty() {
        EXIT_ERROR
    } else if checks.iter().all(|c| c.ok) {
        EXIT_OK
    } else {
        EXIT_REFUSED
    };
    if args.format == "json" {
        #[derive(Serialize)]
        struct Out<'a> {
            path: String,
            ok: bool,
            checks: &'a [Check],
            errors: &'a [String],
            exit_code: i32,
        }
        print_json(&Out {
            path: args.path.display().to_string(),
            ok: code == EXIT_OK,
            checks: &checks,
            errors: &errors,
            exit_code: code,
        });
    } else {
        for c in &checks {
            let mark = if c.ok { "ok" } else { "FAILED" };
            out!("{mark:6} {:11} {}: {}", c.check, c.subject, c.detail);
        }
        for e in &errors {
            eprintln!("modelguard: error: {e}");
        }
    }
    code
}

fn open_options(
    isolation: &IsolationArgs,
) -> Result<(ConvertOptions, super::convert::Sandbox), String> {
    let (limits, sandbox) = isolation.resolve()?;
    let opts = ConvertOptions {
        format: Options {
            limits,
            skip_unsupported: false,
            ..Default::default()
        },
        // Reading tensors is not loading the model: findings are reported, not enforced.
        fail_on: None,
        allow_empty: true,
        ..Default::default()
    };
    Ok((opts, sandbox))
}

#[derive(Serialize)]
struct TensorHash {
    name: String,
    dtype: String,
    shape: Vec<u64>,
    sha256: String,
}

#[derive(Serialize)]
struct HashReport {
    path: String,
    format: String,
    sha256: Option<String>,
    tensor_count: usize,
    /// The digest of the whole tensor set (format-independent).
    tensors_sha256: String,
    tensors: Vec<TensorHash>,
    findings: Vec<crate::policy::findings::Finding>,
}

pub fn hash(args: &HashArgs) -> i32 {
    let result = open_options(&args.isolation).and_then(|(opts, sandbox)| {
        let table = tensors::open(&args.path, &opts, &sandbox)?;
        let mut pairs = Vec::new();
        let mut rows = Vec::new();
        for t in &table.tensors {
            let d = digest::tensor_digest(&table, t).map_err(|e| e.to_string())?;
            pairs.push((t.name.clone(), d));
            rows.push(TensorHash {
                name: t.name.clone(),
                dtype: t.dtype.as_str().into(),
                shape: t.shape.clone(),
                sha256: super::report::hex(&d),
            });
        }
        Ok(HashReport {
            path: args.path.display().to_string(),
            format: table.format.clone(),
            sha256: table.input_sha256.clone(),
            tensor_count: rows.len(),
            tensors_sha256: super::report::hex(&digest::set_digest(&pairs)),
            tensors: rows,
            findings: table.findings,
        })
    });
    match result {
        Err(e) => {
            eprintln!("modelguard: error: {e}");
            EXIT_ERROR
        }
        Ok(r) if args.format == "json" => {
            print_json(&r);
            EXIT_OK
        }
        Ok(r) => {
            out!(
                "{}  {} ({}, {} tensors)",
                r.sha256.as_deref().unwrap_or("-"),
                r.path,
                r.format,
                r.tensor_count
            );
            out!("{}  tensors", r.tensors_sha256);
            for t in &r.tensors {
                out!("{}  {} {} {:?}", t.sha256, t.name, t.dtype, t.shape);
            }
            for f in &r.findings {
                eprintln!(
                    "modelguard: note: [{}] {}: {}",
                    f.severity,
                    f.rule.id(),
                    f.message
                );
            }
            EXIT_OK
        }
    }
}

pub fn diff(args: &DiffArgs) -> i32 {
    let result = open_options(&args.isolation).and_then(|(opts, sandbox)| {
        let a = tensors::open(&args.a, &opts, &sandbox)?;
        let b = tensors::open(&args.b, &opts, &sandbox)?;
        let d = diff::diff(&a, &b).map_err(|e| e.to_string())?;
        Ok((a.format, b.format, d))
    });
    let (fa, fb, d) = match result {
        Ok(x) => x,
        Err(e) => {
            eprintln!("modelguard: error: {e}");
            return EXIT_ERROR;
        }
    };
    let code = if d.is_empty() { EXIT_OK } else { EXIT_REFUSED };
    if args.format == "json" {
        #[derive(Serialize)]
        struct Out<'a> {
            a: String,
            a_format: String,
            b: String,
            b_format: String,
            #[serde(flatten)]
            diff: &'a diff::Diff,
            exit_code: i32,
        }
        print_json(&Out {
            a: args.a.display().to_string(),
            a_format: fa,
            b: args.b.display().to_string(),
            b_format: fb,
            diff: &d,
            exit_code: code,
        });
        return code;
    }
    out!(
        "A: {} ({fa})\nB: {} ({fb})",
        args.a.display(),
        args.b.display()
    );
    out!(
        "{} common tensors: {} identical, {} changed, {} changed dtype or shape; {} only in A, {} only in B",
        d.common,
        d.identical,
        d.changed.len(),
        d.retyped.len(),
        d.only_in_a.len(),
        d.only_in_b.len()
    );
    if !d.changed.is_empty() {
        out!("changed values (largest relative change first):");
    }
    for c in &d.changed {
        let num = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.3e}"));
        out!(
            "  {}  {} {:?}: {}/{} elements differ, max |Δ| {}, relative L2 {}",
            c.name,
            c.dtype,
            c.shape,
            c.differing,
            c.elements,
            num(c.max_abs_diff),
            num(c.relative_l2)
        );
    }
    for r in &d.retyped {
        out!(
            "  {}  {} {:?} -> {} {:?}",
            r.name,
            r.a.dtype,
            r.a.shape,
            r.b.dtype,
            r.b.shape
        );
    }
    for (label, list) in [("only in A", &d.only_in_a), ("only in B", &d.only_in_b)] {
        for s in list {
            out!("  {label}: {} {} {:?}", s.name, s.dtype, s.shape);
        }
    }
    code
}
