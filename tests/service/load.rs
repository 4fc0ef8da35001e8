//! 200 uploads from 20 clients, with a few 100 MB checkpoints; then the same with `kill -9`
//! of the server in the middle and a restart on the same data folder.

use super::support::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENTS: usize = 20;
const PER_CLIENT: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Converted,
    Refused,
    Failed,
}

impl Expect {
    fn state(self) -> &'static str {
        match self {
            Expect::Converted => "converted",
            Expect::Refused => "refused",
            Expect::Failed => "failed",
        }
    }
}

/// A 100 MB float32 checkpoint in the torch zip layout (`{"w": tensor}`).
fn big_checkpoint() -> Vec<u8> {
    let numel: u64 = 25 << 20;
    let storage: Vec<u8> = (0..numel * 4).map(|i| (i % 251) as u8).collect();
    crate::common::torch_zip(
        &crate::common::state_dict_pickle(numel, 0, &[numel as i64], &[1]),
        &storage,
    )
}

/// The uploads, in order: mostly small real fixtures of three outcomes, and four 100 MB ones.
fn workload() -> Vec<(String, Arc<Vec<u8>>, Expect)> {
    let read = |p: &str| Arc::new(std::fs::read(fixtures().join(p)).unwrap());
    let good = [
        read("models/sd_sequential.pt"),
        read("models/tied.pt"),
        read("models/legacy_stream.pt"),
        read("models/zip_proto4.pt"),
    ];
    let bad = read("malicious/files/t01_os_system_proto4.pkl");
    let mut cut = (*good[0]).clone();
    cut.truncate(cut.len() / 2);
    let cut = Arc::new(cut);
    let big = Arc::new(big_checkpoint());
    (0..CLIENTS * PER_CLIENT)
        .map(|i| {
            let (data, expect) = if i % 50 == 5 {
                (big.clone(), Expect::Converted)
            } else if i % 7 == 3 {
                (bad.clone(), Expect::Refused)
            } else if i % 11 == 4 {
                (cut.clone(), Expect::Failed)
            } else {
                (good[i % good.len()].clone(), Expect::Converted)
            };
            (format!("upload-{i}.pt"), data, expect)
        })
        .collect()
}

/// Every client uploads its share; returns id -> expected outcome for every 202. A client
/// stops at its first transport error (the server was killed).
fn run_clients(
    server: &Server,
    work: &[(String, Arc<Vec<u8>>, Expect)],
    accepted: &Arc<Mutex<Vec<(String, Expect)>>>,
) {
    std::thread::scope(|scope| {
        for c in 0..CLIENTS {
            let base = server.base.clone();
            let accepted = accepted.clone();
            scope.spawn(move || {
                let agent = agent();
                for (name, data, expect) in work.iter().skip(c).step_by(CLIENTS) {
                    let (ct, body) = multipart(&[("file", Part::File(name, data))]);
                    loop {
                        let sent = agent
                            .post(format!("{base}/v1/jobs"))
                            .header("Authorization", format!("Bearer {ALICE}"))
                            .header("Content-Type", ct.clone())
                            .send(&body[..]);
                        let Ok(mut r) = sent else { return };
                        let status = r.status().as_u16();
                        let Ok(text) = r.body_mut().read_to_string() else {
                            return;
                        };
                        match status {
                            202 => {
                                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                                accepted
                                    .lock()
                                    .unwrap()
                                    .push((v["id"].as_str().unwrap().to_string(), *expect));
                                break;
                            }
                            429 => std::thread::sleep(Duration::from_millis(200)),
                            s => panic!("upload {name}: {s} {text}"),
                        }
                    }
                }
            });
        }
    });
}

/// Wait for every accepted job, check its end and its artifact; returns the jobs by id.
fn check_all_end(
    server: &Server,
    accepted: &[(String, Expect)],
) -> HashMap<String, serde_json::Value> {
    let agent = agent();
    let mut ends = HashMap::new();
    for (id, expect) in accepted {
        let job = wait_terminal(&agent, server, ALICE, id, Duration::from_secs(600));
        assert_eq!(job["state"], expect.state(), "{job}");
        if *expect == Expect::Converted {
            let r = get(
                &agent,
                &server.url(&format!("/v1/jobs/{id}/artifacts/model.safetensors")),
                Some(ALICE),
            );
            assert_eq!(r.status, 200);
            safetensors::SafeTensors::deserialize(&r.body)
                .unwrap_or_else(|e| panic!("{id}: invalid safetensors served: {e}"));
        }
        ends.insert(id.clone(), job);
    }
    ends
}

/// Every job the admin can list (all pages).
fn all_jobs(server: &Server) -> Vec<serde_json::Value> {
    let agent = agent();
    let mut out = Vec::new();
    let mut url = server.url("/v1/jobs?limit=100");
    loop {
        let page = get(&agent, &url, Some(ADMIN)).json();
        out.extend(page["jobs"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(n) => url = server.url(&format!("/v1/jobs?limit=100&before={n}")),
            None => return out,
        }
    }
}

#[test]
fn two_hundred_uploads_from_twenty_clients_all_end_right_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("data"),
        &["--queue", "1000", "--rate-limit", "100000"],
    );
    let work = workload();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let started = std::time::Instant::now();
    run_clients(&server, &work, &accepted);
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), work.len(), "every upload was accepted");
    let ends = check_all_end(&server, &accepted);
    let elapsed = started.elapsed();
    let ids: std::collections::HashSet<&String> = accepted.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), work.len(), "no duplicated ids");
    let listed = all_jobs(&server);
    assert_eq!(listed.len(), work.len(), "no job lost or duplicated");
    let peak_mib = peak_rss_kib(server.pid()) / 1024;
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for j in ends.values() {
        *by_state
            .entry(j["state"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    eprintln!(
        "load: {} uploads ({} MB) from {CLIENTS} clients in {:.1} s; {by_state:?}; server peak RSS {peak_mib} MiB",
        work.len(),
        work.iter().map(|(_, d, _)| d.len()).sum::<usize>() >> 20,
        elapsed.as_secs_f64()
    );
    // Uploads are streamed to disk: 400 MB of checkpoints must not show up in the server.
    assert!(peak_mib < 256, "server peak RSS {peak_mib} MiB");
}

#[test]
fn kill_9_in_the_middle_loses_no_accepted_job_and_runs_each_to_one_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start(
        &data,
        &["--queue", "1000", "--rate-limit", "100000", "--jobs", "1"],
    );
    let work = workload();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        let watcher_accepted = accepted.clone();
        let pid = server.pid();
        let kill_at = work.len() / 3;
        scope.spawn(move || {
            // Kill once a third of the uploads were accepted: uploads, runs and publishes are
            // all in flight at that point.
            while watcher_accepted.lock().unwrap().len() < kill_at {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        });
        run_clients(&server, &work, &accepted);
    });
    let first_logs = server.logs();
    server.kill9();
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() >= work.len() / 3 && accepted.len() < work.len(),
        "{} accepted",
        accepted.len()
    );

    let server = Server::start(&data, &["--queue", "1000", "--rate-limit", "100000"]);
    let ends = check_all_end(&server, &accepted);
    assert_eq!(ends.len(), accepted.len());
    // Jobs whose 202 was lost with the connection may exist too; they must end as well.
    let listed = all_jobs(&server);
    assert!(listed.len() >= accepted.len());
    let agent = agent();
    for j in &listed {
        let id = j["id"].as_str().unwrap();
        let job = wait_terminal(&agent, &server, ADMIN, id, Duration::from_secs(600));
        assert!(job["attempts"].as_u64().unwrap() >= 1);
    }
    // One terminal state per job across both runs: a job is never finished twice.
    let mut ends_logged: HashMap<String, usize> = HashMap::new();
    for l in first_logs.iter().chain(server.logs().iter()) {
        if l["message"] == "job state"
            && matches!(
                l["state"].as_str(),
                Some("converted" | "refused" | "failed")
            )
        {
            *ends_logged
                .entry(l["job_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    for (id, n) in &ends_logged {
        assert_eq!(*n, 1, "job {id} ended {n} times");
    }
    // Nothing partial is left on disk.
    let leftovers: Vec<_> = std::fs::read_dir(data.join("artifacts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(
        std::fs::read_dir(data.join("quarantine/.incoming"))
            .unwrap()
            .count(),
        0
    );
    eprintln!(
        "crash: {} accepted before kill -9, {} jobs in the table, all ended once after the restart",
        accepted.len(),
        listed.len()
    );
}
