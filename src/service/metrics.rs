//! `/metrics` in the OpenMetrics text format Prometheus scrapes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabel {
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

type HistogramFamily = Family<StateLabel, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    jobs: Family<StateLabel, Gauge>,
    pub durations: HistogramFamily,
    pub upload_bytes: Counter,
    pub output_bytes: Counter,
    pub findings: Family<SeverityLabel, Counter>,
    pub worker_kills: Family<ReasonLabel, Counter>,
    pub rejected_uploads: Family<ReasonLabel, Counter>,
}

fn duration_histogram() -> Histogram {
    // 10 ms to ~5.5 min.
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("modelguard");
        let jobs = Family::<StateLabel, Gauge>::default();
        let durations: HistogramFamily = Family::new_with_constructor(duration_histogram);
        let upload_bytes = Counter::default();
        let output_bytes = Counter::default();
        let findings = Family::<SeverityLabel, Counter>::default();
        let worker_kills = Family::<ReasonLabel, Counter>::default();
        let rejected_uploads = Family::<ReasonLabel, Counter>::default();
        registry.register("jobs", "Jobs by state", jobs.clone());
        registry.register(
            "job_duration_seconds",
            "Time from a job's start to its end, by the state it ended in",
            durations.clone(),
        );
        registry.register(
            "upload_bytes",
            "Bytes of accepted uploads",
            upload_bytes.clone(),
        );
        registry.register(
            "output_bytes",
            "Bytes of safetensors written",
            output_bytes.clone(),
        );
        registry.register("findings", "Findings by severity", findings.clone());
        registry.register(
            "worker_kills",
            "Jailed workers stopped by a limit or the seccomp policy, by reason",
            worker_kills.clone(),
        );
        registry.register(
            "rejected_uploads",
            "Uploads answered with an error, by problem type",
            rejected_uploads.clone(),
        );
        Metrics {
            registry,
            jobs,
            durations,
            upload_bytes,
            output_bytes,
            findings,
            worker_kills,
            rejected_uploads,
        }
    }
}

impl Metrics {
    /// The text exposition, with the job gauges set from the store's counts.
    pub fn render(&self, jobs_by_state: &BTreeMap<super::store::State, u64>) -> String {
        for (state, n) in jobs_by_state {
            self.jobs
                .get_or_create(&StateLabel {
                    state: state.as_str().into(),
                })
                .set(*n as i64);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn kill(&self, reason: &str) {
        self.worker_kills
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    pub fn rejected(&self, problem_type: &str) {
        let reason = problem_type.rsplit(':').next().unwrap_or(problem_type);
        self.rejected_uploads
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }
}
