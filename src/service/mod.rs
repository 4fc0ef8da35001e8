//! `modelguard serve`: the quarantine conversion service. Anyone with a token may submit a
//! model; nobody receives anything but the converted, validated safetensors and the reports.
//!
//! - `api`: routes, auth and limits middleware, the OpenAPI document;
//! - `upload`: streaming multipart (and folder tar) intake;
//! - `store` / `sqlite`: the durable job table; `blobs`: originals and artifacts on disk;
//! - `runner`: bounded concurrent conversions in the jail; `retention`: expiry;
//! - `server`: the HTTP/1.1 accept loop; `metrics`, `problem`, `auth`, `page`.

mod api;
mod auth;
mod blobs;
mod metrics;
mod page;
mod problem;
mod retention;
mod runner;
mod server;
mod sqlite;
mod store;
mod upload;

pub use auth::new_token;
pub use retention::{parse_duration, parse_size};

use crate::cli::ServeArgs;
use crate::convert::EXIT_ERROR;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The OpenAPI 3.1 document served at `/openapi.json`.
pub fn openapi_json() -> String {
    api::openapi_json()
}

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

pub fn run(args: &ServeArgs) -> i32 {
    init_logging(&args.log_format);
    match start(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("modelguard serve: {e}");
            EXIT_ERROR
        }
    }
}

fn start(args: &ServeArgs) -> Result<(), String> {
    if args.isolation.sandbox == "none" {
        return Err(
            "--sandbox none parses untrusted uploads inside the service; use native, wasi or both"
                .into(),
        );
    }
    let (limits, sandbox) = args.isolation.resolve()?;
    let tokens = auth::Tokens::load(&args.tokens)?;
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.data_dir.display()))?;
    let store: Arc<dyn store::JobStore> = Arc::new(
        sqlite::SqliteStore::open(&args.data_dir.join("jobs.db")).map_err(|e| e.to_string())?,
    );
    let blobs: Arc<dyn blobs::BlobStore> = Arc::new(
        blobs::LocalBlobs::open(&args.data_dir)
            .map_err(|e| format!("cannot prepare {}: {e}", args.data_dir.display()))?,
    );
    // Crash recovery before anything runs: interrupted jobs run again from a clean slate.
    let rerun = store.requeue_interrupted().map_err(|e| e.to_string())?;
    let known: HashSet<String> = store
        .ids()
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    blobs
        .recover(&known, &rerun)
        .map_err(|e| format!("cannot clean up the data folder: {e}"))?;
    for id in &rerun {
        tracing::info!(job_id = %id, state = "queued", detail = "interrupted by a restart; runs again", "job state");
    }
    let queued_now = store.count_by_state().map_err(|e| e.to_string())?[&store::State::Queued];
    let concurrency = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let metrics = Arc::new(metrics::Metrics::default());
    let runner = Arc::new(runner::Runner {
        store: store.clone(),
        blobs: blobs.clone(),
        metrics: metrics.clone(),
        sandbox: Arc::new(sandbox),
        sandbox_name: args.isolation.sandbox.clone(),
        limits,
        default_fail_on: args.fail_on.0,
        concurrency,
        wake: Default::default(),
        queue: runner::QueueSlots::new(args.queue, queued_now),
    });
    let app = Arc::new(api::App {
        store: store.clone(),
        blobs: blobs.clone(),
        runner: runner.clone(),
        metrics,
        tokens,
        limiter: api::rate_limiter(args.rate_limit, args.rate_limit.div_ceil(2)),
        settings: api::Settings {
            max_upload: parse_size(&args.max_upload).map_err(|e| format!("--max-upload: {e}"))?,
            upload_idle: Duration::from_secs(args.upload_idle_timeout),
            upload_timeout: Duration::from_secs(args.upload_timeout),
            request_timeout: Duration::from_secs(30),
            max_files: 10_000,
            max_header_bytes: 16 << 10,
        },
    });
    let retention = retention::Retention {
        keep_originals: parse_duration(&args.keep_originals)
            .map_err(|e| format!("--keep-originals: {e}"))?,
        keep_artifacts: parse_duration(&args.keep_artifacts)
            .map_err(|e| format!("--keep-artifacts: {e}"))?,
    };
    retention.sweep(store.as_ref(), blobs.as_ref());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        tokio::spawn(runner.run());
        tokio::spawn(retention.run(store, blobs, Duration::from_secs(600)));
        tracing::info!(address = %addr, jobs = concurrency, queue = args.queue, "listening");
        eprintln!("modelguard serve: listening on http://{addr}");
        let limits = server::ConnectionLimits {
            max_connections: args.max_connections,
            header_read_timeout: Duration::from_secs(10),
            max_header_buffer: 64 << 10,
        };
        server::serve(listener, api::router(app), limits, shutdown_signal()).await;
        tracing::info!("shutting down; unfinished jobs run again at the next start");
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
