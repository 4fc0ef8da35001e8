//! The job table in an embedded SQLite database (`jobs.db` in `--data-dir`): WAL journal with
//! `synchronous=FULL`, so a committed state change survives `kill -9` and power loss.

use super::store::{
    Deleted, Job, JobOptions, JobStore, Kind, ListFilter, NewJob, Outcome, State, StoreError,
    StoreResult,
};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT,
    options TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    files TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    phase TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_ms INTEGER,
    finished_ms INTEGER,
    outcome TEXT,
    original_deleted INTEGER NOT NULL DEFAULT 0,
    artifacts_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner, seq);
";

const COLUMNS: &str = "seq, id, owner, kind, name, source, options, sha256, bytes, files, \
    created_ms, state, phase, attempts, started_ms, finished_ms, outcome, original_deleted, \
    artifacts_deleted";

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(err)
}

fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Folder => "folder",
    }
}

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    let text_err = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let kind: String = r.get(3)?;
    let options: String = r.get(6)?;
    let files: String = r.get(9)?;
    let state: String = r.get(11)?;
    let outcome: Option<String> = r.get(16)?;
    Ok(Job {
        seq: r.get(0)?,
        new: NewJob {
            id: r.get(1)?,
            owner: r.get(2)?,
            kind: if kind == "folder" {
                Kind::Folder
            } else {
                Kind::File
            },
            name: r.get(4)?,
            source: r.get(5)?,
            options: serde_json::from_str::<JobOptions>(&options)
                .map_err(|e| text_err(6, e.to_string()))?,
            sha256: r.get(7)?,
            bytes: r.get::<_, i64>(8)? as u64,
            files: serde_json::from_str(&files).map_err(|e| text_err(9, e.to_string()))?,
            created_ms: r.get(10)?,
        },
        state: State::parse(&state).ok_or_else(|| text_err(11, state.clone()))?,
        phase: r.get(12)?,
        attempts: r.get(13)?,
        started_ms: r.get(14)?,
        finished_ms: r.get(15)?,
        outcome: match outcome {
            Some(s) => serde_json::from_str(&s).map_err(|e| text_err(16, e.to_string()))?,
            None => Outcome::default(),
        },
        original_deleted: r.get(17)?,
        artifacts_deleted: r.get(18)?,
    })
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )
        .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        // A panic while holding the lock leaves SQLite consistent (every change is a
        // transaction), so a poisoned lock is still safe to use.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(err)
    }
}

impl JobStore for SqliteStore {
    fn insert(&self, job: &NewJob) -> StoreResult<()> {
        let options = json(&job.options)?;
        let files = json(&job.files)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO jobs (id, owner, kind, name, source, options, sha256, bytes, files, \
                 created_ms, state, phase) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
                 'queued', 'queued')",
                params![
                    job.id,
                    job.owner,
                    kind_str(job.kind),
                    job.name,
                    job.source,
                    options,
                    job.sha256,
                    job.bytes as i64,
                    files,
                    job.created_ms
                ],
            )
            .map(|_| ())
        })
    }

    fn claim_next(&self, now_ms: i64) -> StoreResult<Option<Job>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let seq: Option<i64> = tx
                .query_row(
                    "SELECT seq FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(seq) = seq else { return Ok(None) };
            tx.execute(
                "UPDATE jobs SET state = 'running', phase = 'starting', attempts = attempts + 1, \
                 started_ms = ?1 WHERE seq = ?2 AND state = 'queued'",
                params![now_ms, seq],
            )?;
            let job = tx.query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE seq = ?1"),
                [seq],
                job_from_row,
            )?;
            tx.commit()?;
            Ok(Some(job))
        })
    }

    fn set_phase(&self, id: &str, attempt: u32, phase: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET phase = ?1 WHERE id = ?2 AND state = 'running' AND attempts = ?3",
                params![phase, id, attempt],
            )
            .map(|_| ())
        })
    }

    fn finish(
        &self,
        id: &str,
        attempt: u32,
        state: State,
        outcome: &Outcome,
        now_ms: i64,
    ) -> StoreResult<()> {
        if !state.is_terminal() {
            return Err(StoreError(format!(
                "{} is not a terminal state",
                state.as_str()
            )));
        }
        let outcome = json(outcome)?;
        let n = self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = ?1, phase = 'done', outcome = ?2, finished_ms = ?3 \
                 WHERE id = ?4 AND state = 'running' AND attempts = ?5",
                params![state.as_str(), outcome, now_ms, id, attempt],
            )
        })?;
        if n != 1 {
            return Err(StoreError(format!(
                "job {id} is not running attempt {attempt}"
            )));
        }
        Ok(())
    }

    fn get(&self, id: &str) -> StoreResult<Option<Job>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_from_row,
            )
            .optional()
        })
    }

    fn list(&self, f: &ListFilter) -> StoreResult<Vec<Job>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE (?1 IS NULL OR owner = ?1) \
                 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR seq < ?3) \
                 ORDER BY seq DESC LIMIT ?4"
            ))?;
            let rows = stmt.query_map(
                params![
                    f.owner,
                    f.state.map(State::as_str),
                    f.before,
                    f.limit as i64
                ],
                job_from_row,
            )?;
            rows.collect()
        })
    }

    fn delete(&self, id: &str) -> StoreResult<Deleted> {
        self.with(|c| {
            let tx = c.transaction()?;
            let state: Option<String> = tx
                .query_row("SELECT state FROM jobs WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            let deleted = match state.as_deref().and_then(State::parse) {
                None => Deleted::Missing,
                Some(State::Running) => Deleted::Running,
                Some(s) => {
                    tx.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
                    Deleted::Was(s)
                }
            };
            tx.commit()?;
            Ok(deleted)
        })
    }

    fn requeue_interrupted(&self) -> StoreResult<Vec<String>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let ids = {
                let mut stmt = tx.prepare("SELECT id FROM jobs WHERE state = 'running'")?;
                let ids = stmt
                    .query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                ids
            };
            tx.execute(
                "UPDATE jobs SET state = 'queued', phase = 'queued (interrupted, re-running)' \
                 WHERE state = 'running'",
                [],
            )?;
            tx.commit()?;
            Ok(ids)
        })
    }

    fn count_by_state(&self) -> StoreResult<BTreeMap<State, u64>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out: BTreeMap<State, u64> = State::ALL.iter().map(|s| (*s, 0)).collect();
            for row in rows {
                let (s, n) = row?;
                if let Some(s) = State::parse(&s) {
                    out.insert(s, n as u64);
                }
            }
            Ok(out)
        })
    }

    fn ids(&self) -> StoreResult<Vec<String>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT id FROM jobs")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }

    fn expired(&self, before_ms: i64, artifacts: bool) -> StoreResult<Vec<String>> {
        let flag = if artifacts {
            "artifacts_deleted"
        } else {
            "original_deleted"
        };
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT id FROM jobs WHERE state IN ('converted', 'refused', 'failed') \
                 AND finished_ms < ?1 AND {flag} = 0"
            ))?;
            let rows = stmt.query_map([before_ms], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }

    fn mark_deleted(&self, id: &str, artifacts: bool) -> StoreResult<()> {
        let flag = if artifacts {
            "artifacts_deleted"
        } else {
            "original_deleted"
        };
        self.with(|c| {
            c.execute(&format!("UPDATE jobs SET {flag} = 1 WHERE id = ?1"), [id])
                .map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> NewJob {
        NewJob {
            id: id.into(),
            owner: "ci".into(),
            kind: Kind::File,
            name: "m.pt".into(),
            source: None,
            options: JobOptions::default(),
            sha256: "00".into(),
            bytes: 1,
            files: vec![],
            created_ms: 1,
        }
    }

    #[test]
    fn a_job_ends_in_one_terminal_state_and_crashed_runs_are_requeued() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("jobs.db")).unwrap();
        store.insert(&job("a")).unwrap();
        store.insert(&job("b")).unwrap();
        assert_eq!(store.claim_next(5).unwrap().unwrap().new.id, "a");
        assert_eq!(store.claim_next(5).unwrap().unwrap().new.id, "b");
        assert!(store.claim_next(5).unwrap().is_none());
        store
            .finish("a", 1, State::Converted, &Outcome::default(), 6)
            .unwrap();
        assert!(store
            .finish("a", 1, State::Failed, &Outcome::default(), 7)
            .is_err());
        assert_eq!(store.delete("b").unwrap(), Deleted::Running);
        assert_eq!(store.delete("zz").unwrap(), Deleted::Missing);
        drop(store);
        // A restart: b was running when the process died.
        let store = SqliteStore::open(&dir.path().join("jobs.db")).unwrap();
        assert_eq!(store.requeue_interrupted().unwrap(), vec!["b".to_string()]);
        let b = store.claim_next(8).unwrap().unwrap();
        assert_eq!((b.new.id.as_str(), b.attempts), ("b", 2));
        // The run from before the crash (attempt 1) can no longer finish the job.
        assert!(store
            .finish("b", 1, State::Converted, &Outcome::default(), 9)
            .is_err());
        let counts = store.count_by_state().unwrap();
        assert_eq!(counts[&State::Converted], 1);
        assert_eq!(counts[&State::Running], 1);
        assert_eq!(store.get("a").unwrap().unwrap().state, State::Converted);
        assert_eq!(store.delete("a").unwrap(), Deleted::Was(State::Converted));
        assert!(store.get("a").unwrap().is_none());
    }
}
