//! The job table, behind a trait: SQLite on one machine (`sqlite.rs`); PostgreSQL with
//! `FOR UPDATE SKIP LOCKED` when the service scales out (docs/scale-out.md).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A job's life: `queued → running → converted | refused | failed`. A job interrupted while
/// running (crash, `kill -9`) goes back to `queued` at the next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Running,
    Converted,
    Refused,
    Failed,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Queued,
        State::Running,
        State::Converted,
        State::Refused,
        State::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Converted => "converted",
            State::Refused => "refused",
            State::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, State::Converted | State::Refused | State::Failed)
    }
}

/// What was uploaded: one model file, or the files of a Hugging Face folder (sharded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Folder,
}

/// Options a submitter may set (the rest is the service's configuration).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct JobOptions {
    /// `low|medium|high|critical|none`; the service's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_on: Option<String>,
    #[serde(default)]
    pub dedup: bool,
}

/// A job as accepted: everything known before it runs.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub owner: String,
    pub kind: Kind,
    pub name: String,
    pub source: Option<String>,
    pub options: JobOptions,
    pub sha256: String,
    pub bytes: u64,
    pub files: Vec<String>,
    pub created_ms: i64,
}

/// How a run ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub verdict: Option<String>,
    pub error: Option<String>,
    /// Findings counted by severity.
    pub findings: BTreeMap<String, u64>,
    /// Artifact names, served from the job's artifact folder.
    pub artifacts: Vec<String>,
    pub format: Option<String>,
    pub tensor_count: u64,
    pub output_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub seq: i64,
    pub new: NewJob,
    pub state: State,
    pub phase: String,
    pub attempts: u32,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub outcome: Outcome,
    pub original_deleted: bool,
    pub artifacts_deleted: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this owner's jobs (None: every job, for admins).
    pub owner: Option<String>,
    pub state: Option<State>,
    /// Jobs with a sequence number below this (newest first paging).
    pub before: Option<i64>,
    pub limit: u32,
}

/// What `delete` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// Removed; it was in this state.
    Was(State),
    /// Not removed: it is running.
    Running,
    Missing,
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
#[error("job store: {0}")]
pub struct StoreError(pub String);

/// The durable job table. Every state change is one atomic, durable write: once `insert`
/// returns, the job survives a crash; `finish` moves a running job to exactly one terminal
/// state and fails if it is not running.
pub trait JobStore: Send + Sync + 'static {
    fn insert(&self, job: &NewJob) -> StoreResult<()>;
    /// Take the oldest queued job and mark it running (one claimer wins).
    fn claim_next(&self, now_ms: i64) -> StoreResult<Option<Job>>;
    /// `attempt` is the one `claim_next` returned: a run that lost its claim (re-queued after a
    /// crash, claimed again elsewhere) can no longer change the job.
    fn set_phase(&self, id: &str, attempt: u32, phase: &str) -> StoreResult<()>;
    fn finish(
        &self,
        id: &str,
        attempt: u32,
        state: State,
        outcome: &Outcome,
        now_ms: i64,
    ) -> StoreResult<()>;
    fn get(&self, id: &str) -> StoreResult<Option<Job>>;
    fn list(&self, filter: &ListFilter) -> StoreResult<Vec<Job>>;
    /// Remove a job that is not running.
    fn delete(&self, id: &str) -> StoreResult<Deleted>;
    /// At start-up: jobs left `running` by a crash go back to `queued`. Returns their ids.
    fn requeue_interrupted(&self) -> StoreResult<Vec<String>>;
    fn count_by_state(&self) -> StoreResult<BTreeMap<State, u64>>;
    /// Every job id, for matching the files on disk at start-up.
    fn ids(&self) -> StoreResult<Vec<String>>;
    /// Terminal jobs finished before `before_ms` whose original / artifacts are still kept.
    fn expired(&self, before_ms: i64, artifacts: bool) -> StoreResult<Vec<String>>;
    fn mark_deleted(&self, id: &str, artifacts: bool) -> StoreResult<()>;
}
