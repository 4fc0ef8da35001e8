//! The HTTP routes: the jobs API, health, metrics, the OpenAPI document and the web page.

use super::auth::{Principal, Tokens};
use super::blobs::BlobStore;
use super::metrics::Metrics;
use super::problem::Problem;
use super::runner::Runner;
use super::store::{Deleted, Job, JobOptions, JobStore, Kind, ListFilter, State};
use super::upload;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// Service settings that requests see.
pub struct Settings {
    pub max_upload: u64,
    pub upload_idle: Duration,
    pub upload_timeout: Duration,
    pub request_timeout: Duration,
    pub max_files: usize,
    pub max_header_bytes: usize,
}

pub struct App {
    pub store: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub runner: Arc<Runner>,
    pub metrics: Arc<Metrics>,
    pub tokens: Tokens,
    pub limiter: DefaultKeyedRateLimiter<String>,
    pub settings: Settings,
}

pub fn rate_limiter(per_minute: u32, burst: u32) -> DefaultKeyedRateLimiter<String> {
    let per_minute = std::num::NonZeroU32::new(per_minute.max(1)).expect("at least 1");
    let burst = std::num::NonZeroU32::new(burst.max(1)).expect("at least 1");
    RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
}

type Shared = AxState<Arc<App>>;

/// Run blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Problem::internal(e.to_string()))?
}

// ---- views -------------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub id: String,
    pub state: State,
    pub sha256: String,
    pub bytes: u64,
    pub status_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct Progress {
    /// `queued`, `starting`, `converting`, `writing reports`, `done`.
    pub phase: String,
    pub step: u32,
    pub steps: u32,
}

#[derive(Serialize, ToSchema)]
pub struct Timings {
    pub created_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<i64>,
    /// Time spent waiting for a slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_ms: Option<i64>,
    /// Time from the (last) start to the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Artifact {
    pub name: String,
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub state: State,
    pub progress: Progress,
    pub kind: Kind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub owner: String,
    pub sha256: String,
    pub bytes: u64,
    pub files: Vec<String>,
    pub options: JobOptions,
    pub attempts: u32,
    /// `clean`, `suspicious`, `malicious` or `error` once the job has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Findings counted by severity.
    pub findings: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    pub tensor_count: u64,
    pub timings: Timings,
    pub artifacts: Vec<Artifact>,
    pub original_deleted: bool,
    pub artifacts_deleted: bool,
}

fn view(job: Job) -> JobView {
    let step = match job.phase.as_str() {
        "queued" => 0,
        "starting" => 1,
        "converting" => 2,
        "writing reports" => 3,
        _ if job.state.is_terminal() => 4,
        _ => 0,
    };
    let id = job.new.id.clone();
    let artifacts = if job.state.is_terminal() && !job.artifacts_deleted {
        job.outcome
            .artifacts
            .iter()
            .map(|name| Artifact {
                name: name.clone(),
                url: format!("/v1/jobs/{id}/artifacts/{name}"),
            })
            .collect()
    } else {
        Vec::new()
    };
    JobView {
        id,
        state: job.state,
        progress: Progress {
            phase: job.phase.clone(),
            step,
            steps: 4,
        },
        kind: job.new.kind,
        name: job.new.name,
        source: job.new.source,
        owner: job.new.owner,
        sha256: job.new.sha256,
        bytes: job.new.bytes,
        files: job.new.files,
        options: job.new.options,
        attempts: job.attempts,
        verdict: job.outcome.verdict,
        error: job.outcome.error,
        findings: job.outcome.findings,
        format: job.outcome.format,
        tensor_count: job.outcome.tensor_count,
        timings: Timings {
            created_ms: job.new.created_ms,
            started_ms: job.started_ms,
            finished_ms: job.finished_ms,
            queued_ms: job.started_ms.map(|s| s - job.new.created_ms),
            run_ms: job.started_ms.zip(job.finished_ms).map(|(s, f)| f - s),
        },
        artifacts,
        original_deleted: job.original_deleted,
        artifacts_deleted: job.artifacts_deleted,
    }
}

#[derive(Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The multipart form of `POST /v1/jobs` (documentation only; the handler streams it).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// One model file; several `file` parts are the files of one Hugging Face folder.
    #[schema(value_type = String, format = Binary)]
    file: Option<Vec<u8>>,
    /// A tar of a Hugging Face folder (instead of `file`).
    #[schema(value_type = String, format = Binary)]
    folder_tar: Option<Vec<u8>>,
    /// A plain file name to show for the job.
    name: Option<String>,
    /// Where the model came from, e.g. `hf://org/name@rev`.
    source: Option<String>,
    /// `low|medium|high|critical|none` (default: the service's `--fail-on`).
    fail_on: Option<String>,
    /// Keep one name per tied tensor.
    dedup: Option<bool>,
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only jobs in this state.
    state: Option<String>,
    /// Page size (1–100, default 50).
    limit: Option<u32>,
    /// The `next` value of the previous page.
    before: Option<String>,
}

// ---- handlers ----------------------------------------------------------------------------

fn job_id_ok(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The job if this principal may see it; someone else's job is "not found", like a missing one.
async fn visible_job(app: &Arc<App>, who: &Principal, id: String) -> Result<Job, Problem> {
    if !job_id_ok(&id) {
        return Err(Problem::not_found("no such job"));
    }
    let store = app.store.clone();
    let job = blocking(move || Ok(store.get(&id)?)).await?;
    match job {
        Some(j) if who.may_read(&j.new.owner) => Ok(j),
        _ => Err(Problem::not_found("no such job")),
    }
}

#[utoipa::path(post, path = "/v1/jobs", tag = "jobs",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Accepted; poll the `Location`", body = Accepted),
        (status = 400, description = "Invalid upload or name", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "Upload too slow", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Upload too large", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Queue full or rate limited (see `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
async fn create_job(
    AxState(app): Shared,
    Extension(who): Extension<Principal>,
    form: Multipart,
) -> Response {
    match accept(&app, &who, form).await {
        Ok(r) => r,
        Err(p) => {
            app.metrics.rejected(&p.kind);
            p.into_response()
        }
    }
}

async fn accept(app: &Arc<App>, who: &Principal, form: Multipart) -> Result<Response, Problem> {
    let Some(slot) = app.runner.queue.reserve() else {
        return Err(Problem::queue_full(5));
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = app
        .blobs
        .incoming(&id)
        .map_err(|e| Problem::internal(e.to_string()))?;
    let limits = upload::Limits {
        max_bytes: app.settings.max_upload,
        idle: app.settings.upload_idle,
        max_files: app.settings.max_files,
    };
    let job = match tokio::time::timeout(
        app.settings.upload_timeout,
        upload::receive(form, &dir, &limits, id.clone(), who.name.clone()),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(p)) => {
            app.blobs.discard_incoming(&id);
            return Err(p);
        }
        Err(_) => {
            app.blobs.discard_incoming(&id);
            return Err(Problem::upload_timeout(app.settings.upload_timeout));
        }
    };
    // Durable original first, then the durable row: once we answer 202 the job survives.
    let (blobs, store, j) = (app.blobs.clone(), app.store.clone(), job.clone());
    let committed = blocking(move || {
        blobs
            .commit_original(&j.id)
            .map_err(|e| Problem::internal(e.to_string()))?;
        if let Err(e) = store.insert(&j) {
            let _ = blobs.delete_original(&j.id);
            return Err(e.into());
        }
        Ok(())
    })
    .await;
    if let Err(p) = committed {
        app.blobs.discard_incoming(&id);
        return Err(p);
    }
    slot.forget();
    app.metrics.upload_bytes.inc_by(job.bytes);
    tracing::info!(job_id = %id, state = "queued", owner = %who.name, bytes = job.bytes, sha256 = %job.sha256, "job state");
    app.runner.wake.notify_one();
    let url = format!("/v1/jobs/{id}");
    let body = Accepted {
        id,
        state: State::Queued,
        sha256: job.sha256,
        bytes: job.bytes,
        status_url: url.clone(),
    };
    let mut res = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, body = JobView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job, or another token's", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
async fn get_job(
    AxState(app): Shared,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, Problem> {
    Ok(Json(view(visible_job(&app, &who, id).await?)))
}

#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(ListQuery),
    responses(
        (status = 200, description = "Newest first; a submitter sees its own jobs", body = JobList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
async fn list_jobs(
    AxState(app): Shared,
    Extension(who): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Result<Json<JobList>, Problem> {
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(State::parse(s).ok_or_else(|| {
            Problem::invalid_upload(format!(
                "state must be queued, running, converted, refused or failed, not {s:?}"
            ))
        })?),
    };
    let before = match q.before.as_deref() {
        None | Some("") => None,
        Some(b) => Some(
            b.parse::<i64>()
                .map_err(|_| Problem::invalid_upload("before must be the `next` of a page"))?,
        ),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 100);
    let filter = ListFilter {
        owner: (!who.is_admin()).then(|| who.name.clone()),
        state,
        before,
        limit: limit + 1,
    };
    let store = app.store.clone();
    let mut jobs = blocking(move || Ok(store.list(&filter)?)).await?;
    let next = if jobs.len() > limit as usize {
        jobs.truncate(limit as usize);
        jobs.last().map(|j| j.seq.to_string())
    } else {
        None
    };
    Ok(Json(JobList {
        jobs: jobs.into_iter().map(view).collect(),
        next,
    }))
}

#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 204, description = "The job, its original and its artifacts are gone"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Only admins delete", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is running", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
async fn delete_job(
    AxState(app): Shared,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    if !who.is_admin() {
        return Err(Problem::forbidden("only an admin token may delete jobs"));
    }
    let id = visible_job(&app, &who, id).await?.new.id;
    let (store, blobs, job_id) = (app.store.clone(), app.blobs.clone(), id.clone());
    let was = blocking(move || {
        let was = match store.delete(&job_id)? {
            Deleted::Was(state) => state,
            Deleted::Running => return Err(Problem::job_running()),
            Deleted::Missing => return Err(Problem::not_found("no such job")),
        };
        blobs
            .delete_original(&job_id)
            .and_then(|_| blobs.delete_artifacts(&job_id))
            .map_err(|e| Problem::internal(e.to_string()))?;
        Ok(was)
    })
    .await?;
    if was == State::Queued {
        app.runner.queue.release();
    }
    tracing::info!(job_id = %id, state = "deleted", "job state");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/jobs/{id}/artifacts/{name}", tag = "jobs",
    params(
        ("id" = String, Path, description = "Job id"),
        ("name" = String, Path, description = "`model.safetensors` (or a shard and `model.safetensors.index.json`), `report.json`, `report.sarif`"),
    ),
    responses(
        (status = 200, description = "The artifact", content_type = "application/octet-stream"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such artifact (yet), or not this token's job", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
async fn get_artifact(
    AxState(app): Shared,
    Extension(who): Extension<Principal>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let job = visible_job(&app, &who, id).await?;
    // Only the outputs a finished run listed; the original is never among them.
    if !job.state.is_terminal() || job.artifacts_deleted || !job.outcome.artifacts.contains(&name) {
        return Err(Problem::not_found("no such artifact"));
    }
    let file = app
        .blobs
        .artifact(&job.new.id, &name)
        .map_err(|_| Problem::not_found("no such artifact"))?;
    let len = file.metadata().map(|m| m.len()).ok();
    let content_type = if name.ends_with(".sarif") {
        "application/sarif+json"
    } else if name.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let stream =
        tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 1 << 16);
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = String)))]
async fn healthz() -> &'static str {
    "ok\n"
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "The database and the data folder work", body = String),
              (status = 503, description = "Not ready", body = String)))]
async fn readyz(AxState(app): Shared) -> (StatusCode, String) {
    let (store, blobs) = (app.store.clone(), app.blobs.clone());
    let ready = tokio::task::spawn_blocking(move || {
        store.count_by_state().map_err(|e| e.to_string())?;
        if !blobs.writable() {
            return Err("the data folder is not writable".to_string());
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match ready {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", body = String),
              (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Admins only", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
async fn metrics(
    AxState(app): Shared,
    Extension(who): Extension<Principal>,
) -> Result<Response, Problem> {
    if !who.is_admin() {
        return Err(Problem::forbidden("metrics are for admin tokens"));
    }
    let store = app.store.clone();
    let counts = blocking(move || Ok(store.count_by_state()?)).await?;
    let mut res = app.metrics.render(&counts).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(res)
}

// ---- OpenAPI -----------------------------------------------------------------------------

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "modelguard quarantine service", description = "Submit a model file; receive only a converted, validated safetensors file and a report. The original is never served back."),
    paths(create_job, get_job, list_jobs, delete_job, get_artifact, healthz, readyz, metrics),
    components(schemas(Accepted, JobView, JobList, Problem, UploadForm, State, Kind, JobOptions, Progress, Timings, Artifact)),
    modifiers(&BearerScheme),
    tags((name = "jobs", description = "Conversion jobs"), (name = "operations", description = "Health and metrics")),
)]
struct ApiDoc;

pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

// ---- middleware --------------------------------------------------------------------------

async fn authenticate(AxState(app): Shared, mut req: Request, next: Next) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let who = match app.tokens.authenticate(auth) {
        Ok(p) => p,
        Err(p) => return p.into_response(),
    };
    if let Err(not_until) = app.limiter.check_key(&who.name) {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        return Problem::rate_limited(wait.as_secs().max(1)).into_response();
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// One log line per request, and the header-size limit (before anything reads the body).
async fn log_and_limit(AxState(app): Shared, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let res = if header_bytes > app.settings.max_header_bytes {
        Problem::headers_too_large(app.settings.max_header_bytes).into_response()
    } else {
        next.run(req).await
    };
    let job_id = path
        .strip_prefix("/v1/jobs/")
        .map(|rest| rest.split('/').next().unwrap_or(""))
        .unwrap_or("");
    tracing::info!(
        method = %method,
        path = %path,
        status = res.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        job_id,
        "request"
    );
    res
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

async fn not_found() -> Problem {
    Problem::not_found("no such route")
}

pub fn router(app: Arc<App>) -> Router {
    use tower_http::limit::RequestBodyLimitLayer;
    use tower_http::timeout::TimeoutLayer;
    let timeout =
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, app.settings.request_timeout);
    // Multipart framing adds a little to the file bytes the upload limit counts.
    let upload_body_limit = (app.settings.max_upload + (1 << 20)).min(usize::MAX as u64) as usize;
    let upload = Router::new()
        .route("/v1/jobs", axum::routing::post(create_job))
        .layer(RequestBodyLimitLayer::new(upload_body_limit))
        .layer(DefaultBodyLimit::disable());
    let api = Router::new()
        .route("/v1/jobs", get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job).delete(delete_job))
        .route("/v1/jobs/{id}/artifacts/{name}", get(get_artifact))
        .route("/metrics", get(metrics))
        .layer(timeout)
        .layer(RequestBodyLimitLayer::new(64 << 10))
        .merge(upload)
        .route_layer(middleware::from_fn_with_state(app.clone(), authenticate));
    let open = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], openapi_json()) }),
        )
        .merge(super::page::routes())
        .layer(timeout)
        .layer(RequestBodyLimitLayer::new(64 << 10));
    Router::new()
        .merge(api)
        .merge(open)
        .fallback(not_found)
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(app.clone(), log_and_limit))
        .with_state(app)
}
