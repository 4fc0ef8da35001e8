//! Retention: originals and artifacts of finished jobs are deleted once they are older than
//! `--keep-originals` / `--keep-artifacts`; the job row stays, marked, for the record.

use super::blobs::BlobStore;
use super::runner::now_ms;
use super::store::JobStore;
use std::sync::Arc;
use std::time::Duration;

pub struct Retention {
    pub keep_originals: Duration,
    pub keep_artifacts: Duration,
}

impl Retention {
    /// Delete what is due once.
    pub fn sweep(&self, store: &dyn JobStore, blobs: &dyn BlobStore) {
        for (keep, artifacts) in [(self.keep_originals, false), (self.keep_artifacts, true)] {
            let before = now_ms() - keep.as_millis() as i64;
            let due = match store.expired(before, artifacts) {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::error!(error = %e, "retention: cannot list expired jobs");
                    continue;
                }
            };
            for id in due {
                let deleted = if artifacts {
                    blobs.delete_artifacts(&id)
                } else {
                    blobs.delete_original(&id)
                };
                match deleted.map_err(|e| e.to_string()).and_then(|_| {
                    store
                        .mark_deleted(&id, artifacts)
                        .map_err(|e| e.to_string())
                }) {
                    Ok(()) => {
                        tracing::info!(job_id = %id, what = if artifacts { "artifacts" } else { "original" }, "retention: deleted")
                    }
                    Err(e) => tracing::error!(job_id = %id, error = %e, "retention: cannot delete"),
                }
            }
        }
    }

    /// Sweep every `every` until the process ends (the first sweep runs at start-up, before
    /// the service answers, so nothing past its retention is served after a restart).
    pub async fn run(self, store: Arc<dyn JobStore>, blobs: Arc<dyn BlobStore>, every: Duration) {
        let me = Arc::new(self);
        loop {
            tokio::time::sleep(every).await;
            let (me2, s, b) = (me.clone(), store.clone(), blobs.clone());
            let _ = tokio::task::spawn_blocking(move || me2.sweep(s.as_ref(), b.as_ref())).await;
        }
    }
}

/// `"12h"` → `(12, "h")`.
fn number_and_unit(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    Some((num.parse().ok()?, unit))
}

/// `7d`, `12h`, `30m`, `45s` or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = number_and_unit(s)
        .ok_or_else(|| format!("{s:?} is not a duration like 7d, 12h, 30m or 45s"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

/// `20G`, `100M`, `64K` or a number of bytes (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (n, unit) =
        number_and_unit(s).ok_or_else(|| format!("{s:?} is not a size like 20G, 100M or 64K"))?;
    let shift = match unit.trim_end_matches(['i', 'B']) {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return Err(format!("{s:?}: the unit must be K, M, G or T")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_with_units() {
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("7w").is_err());
        assert_eq!(parse_size("100M").unwrap(), 100 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert!(parse_size("x").is_err());
    }
}
