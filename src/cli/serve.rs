//! The arguments of `modelguard serve` and `modelguard token` (the service is in `service/`).

use super::{parse_fail_on, FailOn, IsolationArgs};
use crate::convert::{EXIT_ERROR, EXIT_OK};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Where jobs live: `jobs.db` (SQLite), `quarantine/` (originals, 0600), `artifacts/`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The tokens file (TOML `[[token]]` entries with name, role and sha256; see `modelguard token`).
    #[arg(long, value_name = "FILE")]
    pub tokens: PathBuf,
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: String,
    /// Conversions running at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Jobs that may wait; beyond that `POST /v1/jobs` answers 429 with Retry-After.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub queue: u64,
    /// Largest upload (all files of a job together), e.g. 20G.
    #[arg(long, default_value = "20G", value_name = "SIZE")]
    pub max_upload: String,
    /// Delete originals this long after their job ended (e.g. 7d, 12h).
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    pub keep_originals: String,
    /// Delete artifacts this long after their job ended.
    #[arg(long, default_value = "30d", value_name = "DURATION")]
    pub keep_artifacts: String,
    /// Refuse jobs with findings at or above this severity unless the job says otherwise.
    #[arg(long, default_value = "high", value_parser = parse_fail_on)]
    pub fail_on: FailOn,
    /// Requests per minute per token (bursts of half that).
    #[arg(long, default_value_t = 600, value_name = "N")]
    pub rate_limit: u32,
    /// Longest pause in an upload before it is dropped, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub upload_idle_timeout: u64,
    /// Longest upload, in seconds.
    #[arg(long, default_value_t = 7200, value_name = "SECONDS")]
    pub upload_timeout: u64,
    /// Open connections at most; more are closed at once.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// `text` or `json` (one JSON object per line).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    #[command(flatten)]
    pub isolation: IsolationArgs,
}

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    /// Who the token belongs to (the owner of the jobs it submits).
    #[arg(long)]
    pub name: String,
    /// `submit` (create jobs, read its own) or `admin` (read and delete all, metrics).
    #[arg(long, default_value = "submit", value_parser = ["submit", "admin"])]
    pub role: String,
}

pub fn token(args: &TokenArgs) -> i32 {
    match crate::service::new_token(&args.name, &args.role) {
        Ok((token, entry)) => {
            eprintln!("token for {} ({}): {token}", args.name, args.role);
            print!("{entry}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("modelguard token: {e}");
            EXIT_ERROR
        }
    }
}
