//! Runs accepted jobs: at most `concurrency` at once, oldest first, each through the same
//! jailed conversion as `modelguard convert`. Outputs go to a staging folder that is published
//! whole before the job's terminal state is committed, so a crash at any point leaves either
//! no visible artifact or a complete one, and an interrupted job simply runs again.

use super::blobs::BlobStore;
use super::metrics::{Metrics, StateLabel};
use super::store::{Job, JobStore, Kind, Outcome, State};
use crate::cli::convert::{conversion_bom, convert_checked_source, Sandbox};
use crate::cli::report::{FileReport, Report};
use crate::cli::scan::report::{FileResult, ScanFinding, ScanReport, ScanVerdict};
use crate::convert::{ConvertOptions, EXIT_OK, EXIT_REFUSED};
use crate::formats::Options;
use crate::policy::findings::{Rule, Severity};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The bounded queue: a slot is taken when an upload starts (so uploads in flight count) and
/// handed back when the runner claims the job.
pub struct QueueSlots {
    free: Arc<Semaphore>,
    /// Jobs found queued at start-up beyond the capacity: their claims free no slot.
    overflow: AtomicU64,
}

impl QueueSlots {
    pub fn new(capacity: u64, queued_now: u64) -> QueueSlots {
        let capacity = capacity.min(Semaphore::MAX_PERMITS as u64);
        QueueSlots {
            free: Arc::new(Semaphore::new(capacity.saturating_sub(queued_now) as usize)),
            overflow: AtomicU64::new(queued_now.saturating_sub(capacity)),
        }
    }

    /// A slot for a new upload; dropping it gives it back, `forget` keeps it for the job.
    pub fn reserve(&self) -> Option<OwnedSemaphorePermit> {
        self.free.clone().try_acquire_owned().ok()
    }

    /// A queued job left the queue (claimed or deleted): its slot is free again.
    pub fn release(&self) {
        let took_overflow = self
            .overflow
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !took_overflow {
            self.free.add_permits(1);
        }
    }
}

pub struct Runner {
    pub store: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub metrics: Arc<Metrics>,
    pub sandbox: Arc<Sandbox>,
    /// `--sandbox` as given (recorded in each job's BOM).
    pub sandbox_name: String,
    pub limits: crate::Limits,
    pub default_fail_on: Option<Severity>,
    pub concurrency: usize,
    pub wake: Notify,
    pub queue: QueueSlots,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Runner {
    /// Claim and run jobs until the process ends.
    pub async fn run(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(self.concurrency));
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let store = self.store.clone();
            let claimed = tokio::task::spawn_blocking(move || store.claim_next(now_ms())).await;
            match claimed {
                Ok(Ok(Some(job))) => {
                    self.queue.release();
                    log_state(
                        &job.new.id,
                        State::Running,
                        &format!("attempt {}", job.attempts),
                    );
                    let me = self.clone();
                    tokio::task::spawn_blocking(move || {
                        me.run_job(job);
                        drop(permit);
                        me.wake.notify_one();
                    });
                }
                Ok(Ok(None)) => {
                    drop(permit);
                    // `notify_one` keeps a permit when nobody waits, so no wake-up is lost;
                    // the timeout is only a backstop.
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        self.wake.notified(),
                    )
                    .await;
                }
                Ok(Err(e)) => {
                    drop(permit);
                    tracing::error!(error = %e, "cannot claim a job");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => {
                    drop(permit);
                    tracing::error!(error = %e, "the claim task failed");
                }
            }
        }
    }

    fn run_job(&self, job: Job) {
        let id = job.new.id.clone();
        let started = Instant::now();
        let (state, outcome) = match self.convert(&job) {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(job_id = %id, error = %e, "the job could not run");
                let outcome = Outcome {
                    verdict: Some("error".into()),
                    error: Some(format!("the service could not run the job: {e}")),
                    ..Default::default()
                };
                // Publish the (empty) staging so that no stale artifact is visible.
                let _ = self
                    .blobs
                    .staging(&id)
                    .and_then(|_| self.blobs.publish(&id));
                (State::Failed, outcome)
            }
        };
        if let Err(e) = self
            .store
            .finish(&id, job.attempts, state, &outcome, now_ms())
        {
            tracing::error!(job_id = %id, error = %e, "cannot record the job's end");
            return;
        }
        self.metrics
            .durations
            .get_or_create(&StateLabel {
                state: state.as_str().into(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.metrics.output_bytes.inc_by(outcome.output_bytes);
        for (severity, n) in &outcome.findings {
            self.metrics
                .findings
                .get_or_create(&super::metrics::SeverityLabel {
                    severity: severity.clone(),
                })
                .inc_by(*n);
        }
        let detail = outcome
            .error
            .as_deref()
            .or(outcome.verdict.as_deref())
            .unwrap_or("");
        log_state(&id, state, detail);
    }

    fn options(&self, job: &Job) -> ConvertOptions {
        let fail_on = match job.new.options.fail_on.as_deref() {
            Some(level) => crate::cli::parse_fail_on(level)
                .map(|f| f.0)
                .unwrap_or(self.default_fail_on),
            None => self.default_fail_on,
        };
        ConvertOptions {
            format: Options {
                skip_unsupported: false,
                limits: self.limits.clone(),
                ..Default::default()
            },
            fail_on,
            dedup: job.new.options.dedup,
            fsync: true,
            scan_only: false,
            allow_empty: false,
        }
    }

    /// Convert the job's original into a fresh staging folder, write the reports beside the
    /// model and publish the folder. Returns the terminal state to record.
    fn convert(&self, job: &Job) -> std::io::Result<(State, Outcome)> {
        let id = &job.new.id;
        let opts = self.options(job);
        let staging = self.blobs.staging(id)?;
        let input = self.blobs.original(id, job.new.kind);
        let _ = self.store.set_phase(id, job.attempts, "converting");
        // A Hugging Face source is checked for look-alikes as on the CLI (other sources are
        // only recorded); the upload already refused malformed ones.
        let hf_source = job.new.source.as_deref().filter(|s| s.starts_with("hf://"));
        let source_finding =
            hf_source.and_then(|s| crate::provenance::source_finding(s).ok().flatten());
        let output = match job.new.kind {
            Kind::File => staging.join("model.safetensors"),
            Kind::Folder => staging.join("model"),
        };
        let (mut report, code) = convert_checked_source(
            &input,
            &output,
            &opts,
            &self.sandbox,
            true,
            source_finding,
            false,
        );
        if output.is_dir() {
            for entry in std::fs::read_dir(&output)? {
                let entry = entry?;
                std::fs::rename(entry.path(), staging.join(entry.file_name()))?;
            }
            std::fs::remove_dir(&output)?;
        }
        let _ = self.store.set_phase(id, job.attempts, "writing reports");
        // Reports name the upload as the submitter called it, never the service's paths.
        rename_paths(&mut report, &job.new.name, &input, &staging);
        let outcome_state = match code {
            EXIT_OK => State::Converted,
            EXIT_REFUSED => State::Refused,
            _ => State::Failed,
        };
        if let Some(reason) = kill_reason(&report) {
            self.metrics.kill(reason);
        }
        report.write_to(&staging.join("report.json"))?;
        match conversion_bom(&report, hf_source, &self.sandbox_name) {
            Ok(bom) => crate::provenance::write_bom(&staging.join("bom.cdx.json"), &bom)
                .map_err(std::io::Error::other)?,
            // The model and its reports stand without the BOM; say why it is missing.
            Err(e) => tracing::warn!(job_id = %id, error = %e, "no BOM for this job"),
        }
        let sarif = crate::cli::scan::sarif::render(&scan_report(&report, &opts))
            .map_err(std::io::Error::other)?;
        std::fs::write(staging.join("report.sarif"), sarif)?;
        let mut artifacts: Vec<String> = std::fs::read_dir(&staging)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        artifacts.sort();
        self.blobs.publish(id)?;
        let s = &report.summary;
        let mut findings = std::collections::BTreeMap::new();
        for f in report
            .files
            .iter()
            .flat_map(|f| &f.findings)
            .chain(if report.files.is_empty() {
                s.findings.iter()
            } else {
                [].iter()
            })
        {
            *findings.entry(f.severity.to_string()).or_insert(0) += 1;
        }
        Ok((
            outcome_state,
            Outcome {
                verdict: s.verdict.map(|v| format!("{v:?}").to_lowercase()),
                error: s.error.clone(),
                findings,
                artifacts,
                format: Some(s.format.clone()),
                tensor_count: s.tensor_count as u64,
                output_bytes: if code == EXIT_OK { s.total_bytes } else { 0 },
            },
        ))
    }
}

fn log_state(id: &str, state: State, detail: &str) {
    tracing::info!(job_id = %id, state = state.as_str(), detail, "job state");
}

fn rename_paths(report: &mut Report, name: &str, input: &Path, staging: &Path) {
    let input = input.display().to_string();
    let staging = staging.display().to_string();
    let fix = |s: &mut String| {
        if let Some(rest) = s.strip_prefix(&input) {
            *s = format!("{name}{rest}");
        } else if let Some(rest) = s.strip_prefix(&staging) {
            *s = rest.trim_start_matches('/').replace("model/", "");
        }
    };
    for r in std::iter::once(&mut report.summary).chain(report.files.iter_mut()) {
        fix(&mut r.input);
        if let Some(o) = r.output.as_mut() {
            fix(o);
        }
        if let Some(e) = r.error.as_mut() {
            *e = e.replace(&input, name).replace(&staging, "");
        }
    }
}

/// Why the jail stopped a worker, for `modelguard_worker_kills_total{reason}`.
fn kill_reason(report: &Report) -> Option<&'static str> {
    let files: Vec<&FileReport> = if report.files.is_empty() {
        vec![&report.summary]
    } else {
        report.files.iter().collect()
    };
    files.into_iter().find_map(|f| {
        if f.findings.iter().any(|x| x.rule == Rule::SandboxViolation) {
            return Some("seccomp");
        }
        let e = f.error.as_deref()?;
        [
            ("wall-clock limit", "timeout"),
            ("RLIMIT_CPU", "cpu"),
            ("RLIMIT_AS", "memory"),
            ("memory limit", "memory"),
            ("CPU or memory limit", "memory"),
            ("RLIMIT_FSIZE", "output-size"),
            ("crashed with signal", "crash"),
            ("the guest trapped", "crash"),
        ]
        .into_iter()
        .find(|(needle, _)| e.contains(needle))
        .map(|(_, reason)| reason)
    })
}

/// The job's findings as a scan report, for `report.sarif`.
fn scan_report(report: &Report, opts: &ConvertOptions) -> ScanReport {
    let files: Vec<&FileReport> = if report.files.is_empty() {
        vec![&report.summary]
    } else {
        report.files.iter().collect()
    };
    let results = files
        .into_iter()
        .map(|f| {
            let findings: Vec<ScanFinding> =
                f.findings.iter().cloned().map(ScanFinding::from).collect();
            let mut verdict = FileResult::verdict_from_findings(&findings);
            if f.error.is_some() && verdict != ScanVerdict::Malicious {
                verdict = ScanVerdict::Error;
            }
            FileResult {
                path: f.input.clone(),
                relative: f.input.clone(),
                sha256: f.input_sha256.clone(),
                size: 0,
                format: f.format.clone(),
                verdict,
                reason: f.error.clone(),
                findings,
                suppressed: Vec::new(),
                unscanned: Vec::new(),
                warnings: f.warnings.clone(),
            }
        })
        .collect();
    ScanReport::new(results, opts.fail_on)
}

#[cfg(test)]
mod tests {
    use super::QueueSlots;

    #[test]
    fn queue_slots_stay_within_capacity_across_a_restart_with_too_many_queued() {
        // Capacity 2, but 3 jobs were queued before the restart.
        let q = QueueSlots::new(2, 3);
        assert!(q.reserve().is_none());
        q.release(); // the overflow job leaves: still full
        assert!(q.reserve().is_none());
        q.release();
        let slot = q.reserve().expect("one slot free");
        assert!(q.reserve().is_none());
        drop(slot); // an upload that failed gives its slot back
        assert!(q.reserve().is_some());
    }
}
