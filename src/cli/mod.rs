//! The `modelguard` command line (host side): argument parsing, files, reports, exit codes.

pub mod convert;
pub mod doctor;
pub mod folder;
pub mod hf_cache;
pub mod provenance;
pub mod report;
pub mod scan;
#[cfg(feature = "service")]
mod serve;
#[cfg(feature = "service")]
pub use serve::{ServeArgs, TokenArgs};

use crate::policy::findings::Severity;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "modelguard",
    version,
    about = "Make untrusted ML model files safe: convert pickled checkpoints to safetensors without executing them"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Whether this is the long-running service (which must survive clients hanging up).
    pub fn serves(&self) -> bool {
        #[cfg(feature = "service")]
        if matches!(self.command, Command::Serve(_)) {
            return true;
        }
        false
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Convert a checkpoint (torch zip/legacy/TAR/TorchScript, pickle, npy/npz, joblib, or a
    /// Hugging Face folder) to safetensors. Exit 0 converted, 1 refused (findings), 2 error.
    Convert(ConvertArgs),
    /// Scan files and folders (recursively) for code that loading them would run, by content,
    /// in the jail. Exit 0 nothing at or above --fail-on, 1 findings at or above it, 2 a file
    /// could not be scanned.
    Scan(ScanArgs),
    /// Print which isolation layers this machine enforces for the jailed worker.
    Doctor,
    /// Check safetensors files strictly, an expected sha256, and an OpenSSF model-signing
    /// signature (key-based, offline). Exit 0 all checks pass, 1 a check failed, 2 error.
    Verify(provenance::VerifyArgs),
    /// The file's sha256 and a format-independent digest of each tensor and of the set: a
    /// checkpoint and its safetensors conversion hash the same. Exit 0, or 2 on error.
    Hash(provenance::HashArgs),
    /// Compare two models of any formats tensor by tensor (both read through the jail).
    /// Exit 0 same tensors, 1 differences, 2 error.
    Diff(provenance::DiffArgs),
    /// Run the quarantine conversion service (HTTP API and web page).
    #[cfg(feature = "service")]
    Serve(ServeArgs),
    /// Make a bearer token for `serve`: the token goes to stderr, its tokens-file entry
    /// (which holds only the token's sha256) to stdout.
    #[cfg(feature = "service")]
    Token(TokenArgs),
}

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// The model file, or a Hugging Face folder (pytorch_model.bin or sharded with an index).
    #[arg(required_unless_present = "hf_cache")]
    pub input: Option<PathBuf>,
    /// The safetensors file to write (a folder when the input is a folder).
    #[arg(required_unless_present = "hf_cache")]
    pub output: Option<PathBuf>,
    /// Convert a snapshot of the local Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub,
    /// else ~/.cache/huggingface/hub) into `models--org--name/modelguard/<commit>/`, beside the
    /// snapshot (never into blobs/); replaces an earlier conversion of the same commit.
    #[arg(long, value_name = "ORG/NAME[@REV]", conflicts_with_all = ["input", "output"])]
    pub hf_cache: Option<String>,
    /// Write a JSON report here (`-` for stdout).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Refuse when a finding reaches this severity: info, low, medium, high, critical, or none.
    #[arg(long, default_value = "high", value_parser = parse_fail_on)]
    pub fail_on: FailOn,
    /// Keep one name per exact alias (tied weights) and record the others in __metadata__.
    #[arg(long)]
    pub dedup: bool,
    /// Where the model came from, `hf://org/name[@rev]`: recorded in the BOM, and a look-alike
    /// of a well-known organisation or repository is a finding (MG020, high).
    #[arg(long, value_name = "URI")]
    pub source: Option<String>,
    /// Write a CycloneDX 1.6 ML-BOM of the conversion here.
    #[arg(long, value_name = "FILE")]
    pub bom: Option<PathBuf>,
    /// Skip tensors safetensors cannot store (quantized, sparse, complex128...) with a warning.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// fsync the output before renaming it into place (durable across power loss; slower).
    #[arg(long)]
    pub fsync: bool,
    #[command(flatten)]
    pub isolation: IsolationArgs,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The native jail needs Linux (namespaces, Landlock, seccomp); elsewhere the WASI guest is the
/// portable jail.
#[cfg(target_os = "linux")]
pub const DEFAULT_SANDBOX: &str = "native";
#[cfg(not(target_os = "linux"))]
pub const DEFAULT_SANDBOX: &str = "wasi";

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Files and folders (Hugging Face cache folders included).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Report format.
    #[arg(long, default_value = "text", value_parser = ["text", "json", "sarif"])]
    pub format: String,
    /// Write the report here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Exit 1 when a finding reaches this severity (info, low, medium, high, critical, none);
    /// default: the config's `fail_on`, else high.
    #[arg(long, value_parser = parse_fail_on)]
    pub fail_on: Option<FailOn>,
    /// The scan policy (default: ./modelguard.toml when it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Do not hash files (json, sarif and --bom list each file's sha256 by default).
    #[arg(long)]
    pub no_hash: bool,
    /// Where the scanned model came from, `hf://org/name[@rev]`: a look-alike of a well-known
    /// organisation or repository is a finding (MG020, high) on every file.
    #[arg(long, value_name = "URI")]
    pub source: Option<String>,
    /// Write a CycloneDX 1.6 ML-BOM of the scanned files and findings here.
    #[arg(long, value_name = "FILE")]
    pub bom: Option<PathBuf>,
    /// Files scanned at once (default: the number of CPUs).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub isolation: IsolationArgs,
}

/// Where and under which limits untrusted bytes are parsed (convert and scan alike).
#[derive(clap::Args, Debug)]
pub struct IsolationArgs {
    /// Raise or lower a resource limit, e.g. `--limit max_graph_bytes=1073741824` (repeatable).
    #[arg(long = "limit", value_name = "NAME=VALUE")]
    pub limits: Vec<String>,
    /// Where untrusted bytes are parsed: `native` (the jailed worker; default on Linux), `wasi`
    /// (the WASI guest under wasmtime; default elsewhere), `both` (the WASI guest run inside the
    /// jailed worker, the strictest) or `none` (in-process, for debugging only).
    #[arg(long, default_value = DEFAULT_SANDBOX, value_parser = ["native", "wasi", "both", "none"])]
    pub sandbox: String,
    /// Refuse to run unless namespaces, rlimits, Landlock and seccomp are all enforced.
    #[arg(long)]
    pub require_full_jail: bool,
    /// Wall-clock limit for one file's worker, in seconds (default: from the input size).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
}

impl IsolationArgs {
    /// The limits after every `--limit` and the sandbox ready to use, or the message naming the
    /// option at fault.
    pub fn resolve(&self) -> Result<(crate::Limits, convert::Sandbox), String> {
        let mut limits = crate::Limits::default();
        for l in &self.limits {
            limits.set(l).map_err(|e| format!("--limit: {e}"))?;
        }
        let sandbox = convert::choose_sandbox(&self.sandbox, self.timeout, self.require_full_jail)
            .map_err(|e| format!("--sandbox {}: {e}", self.sandbox))?;
        Ok((limits, sandbox))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FailOn(pub Option<Severity>);

pub(crate) fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(FailOn(None));
    }
    s.parse::<Severity>().map(|v| FailOn(Some(v)))
}

/// The finding of `--source` (none without one, or for an honest name); a malformed source is
/// reported here and becomes the exit code.
pub(crate) fn source_arg(
    source: Option<&str>,
) -> Result<Option<crate::policy::findings::Finding>, i32> {
    match source.map(crate::provenance::source_finding) {
        Some(Err(e)) => {
            eprintln!("modelguard: {e}");
            Err(crate::convert::EXIT_ERROR)
        }
        Some(Ok(f)) => Ok(f),
        None => Ok(None),
    }
}

/// Run the CLI; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Convert(args) => convert::run(&args),
        Command::Scan(args) => scan::run(&args),
        Command::Doctor => doctor::run(),
        Command::Verify(args) => provenance::verify(&args),
        Command::Hash(args) => provenance::hash(&args),
        Command::Diff(args) => provenance::diff(&args),
        #[cfg(feature = "service")]
        Command::Serve(args) => crate::service::run(&args),
        #[cfg(feature = "service")]
        Command::Token(args) => serve::token(&args),
    }
}
