//! Attacks from inside the jail (feature `jail-probe`): a locked-down worker tries what a
//! compromised parser would, and each attempt must fail or kill the worker. Plus a check from
//! outside of the worker's process state while it runs.
#![cfg(all(feature = "jail-probe", target_os = "linux"))]

mod common;

use modelguard::jail::lockdown::Budget;
use modelguard::jail::worker::{WorkerArgs, WorkerReport};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};

fn args(probe: &str, cpu_seconds: u64, memory: u64) -> String {
    serde_json::to_string(&WorkerArgs {
        input_len: 0,
        budget: Budget {
            parent: std::process::id() as i32,
            memory,
            cpu_seconds,
            output_bytes: 1 << 20,
        },
        options: modelguard::convert::ConvertOptions {
            fail_on: None,
            ..Default::default()
        },
        probe: Some(probe.into()),
        guest: None,
    })
    .unwrap()
}

fn spawn(probe: &str, cpu_seconds: u64, memory: u64) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::write(&input, b"").unwrap();
    let child = Command::new(common::bin())
        .arg("__worker")
        .arg(args(probe, cpu_seconds, memory))
        .env_clear()
        .current_dir("/")
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(std::fs::File::create(dir.path().join("out")).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, dir)
}

/// (signal that ended the worker, or None; the probe's own result if it survived)
fn attack(probe: &str, cpu_seconds: u64, memory: u64) -> (Option<i32>, Option<String>) {
    let (mut child, _dir) = spawn(probe, cpu_seconds, memory);
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let status = child.wait().unwrap();
    let report: Option<WorkerReport> = serde_json::from_str(&text).ok();
    if let Some(r) = &report {
        assert!(
            r.layers.seccomp.is_enforced(),
            "{probe}: seccomp must be on: {:?}",
            r.layers
        );
    }
    (status.signal(), report.and_then(|r| r.probe))
}

const SIGSYS: i32 = 31;

#[test]
fn forbidden_system_calls_kill_the_worker() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!("connect-loopback:{port}");
    for probe in [
        "open-passwd",
        "create-tmp",
        connect.as_str(),
        "socket-unix",
        "exec-shell",
        "fork",
        "ptrace",
        "kill-parent",
        "mmap-exec",
        "write-other-fd",
        "seek-output",
        "unshare",
    ] {
        let (sig, result) = attack(probe, 10, 1 << 30);
        assert_eq!(
            sig,
            Some(SIGSYS),
            "{probe}: expected SIGSYS, survived with {result:?}"
        );
    }
    assert!(
        listener.accept().is_err(),
        "nothing reached the loopback listener"
    );
    assert!(!std::path::Path::new("/tmp/modelguard-jail-escape").exists());
}

#[test]
fn a_harmless_probe_survives() {
    let (sig, result) = attack("none", 10, 1 << 30);
    assert_eq!((sig, result.as_deref()), (None, Some("ok")));
}

#[test]
fn memory_past_the_limit_is_refused() {
    let (sig, result) = attack("alloc", 10, 512 << 20);
    assert_eq!(sig, None);
    let r = result.unwrap();
    assert!(
        r.starts_with("Err("),
        "16 GiB under a 512 MiB address-space limit: {r}"
    );
}

#[test]
fn spinning_past_the_cpu_limit_is_stopped() {
    let start = std::time::Instant::now();
    let (sig, _) = attack("spin", 1, 1 << 30);
    assert!(
        matches!(sig, Some(24) | Some(9)),
        "SIGXCPU or SIGKILL, got {sig:?}"
    );
    assert!(start.elapsed().as_secs() < 10);
}

#[test]
fn the_worker_is_isolated_as_seen_from_outside() {
    let (mut child, _dir) = spawn("idle", 10, 1 << 30);
    let pid = child.id();
    // Wait until lock-down is complete (seccomp is the last step).
    let mut status = String::new();
    for _ in 0..200 {
        status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if status.contains("Seccomp:\t2") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let userns_available = Command::new("unshare")
        .args(["-Urn", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if userns_available {
        assert_ne!(ours, theirs, "the worker has its own network namespace");
    }
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"], "only the handed-over fds");
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn lockdown_failure_is_named() {
    // A parent pid that is not ours: the worker refuses to run (PDEATHSIG could not protect it).
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::write(&input, b"").unwrap();
    let mut a: serde_json::Value = serde_json::from_str(&args("none", 10, 1 << 30)).unwrap();
    a["budget"]["parent"] = serde_json::json!(1);
    let out = Command::new(common::bin())
        .arg("__worker")
        .arg(a.to_string())
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let report: WorkerReport = serde_json::from_slice(&out.stderr).unwrap();
    assert!(report.lockdown_error.unwrap().contains("PR_SET_PDEATHSIG"));
}

#[test]
fn the_host_kills_a_worker_past_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::write(&input, b"").unwrap();
    let args: WorkerArgs = serde_json::from_str(&args("spin", 100, 1 << 30)).unwrap();
    let start = std::time::Instant::now();
    let raw = modelguard::jail::host::spawn_and_wait_exe(
        std::path::Path::new(common::bin()),
        &std::fs::File::open(&input).unwrap(),
        &std::fs::File::create(dir.path().join("out")).unwrap(),
        &args,
        std::time::Duration::from_millis(500),
        &mut |_| {},
    )
    .unwrap();
    assert!(raw.timed_out);
    assert_eq!(raw.status.signal(), Some(9), "killed with SIGKILL");
    assert!(start.elapsed().as_secs() < 5);
    let (outcome, _) =
        modelguard::jail::host::classify(raw, std::time::Duration::from_millis(500), false);
    let e = outcome.error.unwrap();
    assert_eq!(e.kind, "limit");
    assert!(e.message.contains("wall-clock"), "{}", e.message);
}

/// `--sandbox both`: the worker runs wasmtime under the stacked profile, which adds opening
/// files relative to the guest's folder. A compromised runtime still cannot open anything else:
/// seccomp kills an open that is not relative to that folder, Landlock refuses a path that
/// leaves it, and code still cannot be mapped executable.
#[test]
fn the_stacked_profile_opens_only_the_guest_folder() {
    let Ok(mut runner) = modelguard::wasi::Runner::new() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must build the WASI guest"
        );
        return;
    };
    let modules = tempfile::tempdir().unwrap();
    let module = match runner.module_file() {
        Some(m) => m.to_path_buf(),
        None => runner.save_module(modules.path(), "guest.cwasm").unwrap(),
    };
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in");
    std::fs::write(&input, b"").unwrap();
    let guest_dir =
        modelguard::wasi::GuestDir::new(&std::fs::File::open(&input).unwrap(), work.path())
            .unwrap();
    let run = |probe: &str| {
        let mut a: WorkerArgs = serde_json::from_str(&args(probe, 10, 2 << 30)).unwrap();
        a.guest = Some(modelguard::jail::worker::StackedGuest {
            dir: guest_dir.path().to_path_buf(),
            module: module.clone(),
            timeout_secs: 10,
        });
        let out = Command::new(common::bin())
            .arg("__worker")
            .arg(serde_json::to_string(&a).unwrap())
            .env_clear()
            .current_dir("/")
            .stdin(std::fs::File::open(&input).unwrap())
            .stdout(std::fs::File::create(work.path().join("out")).unwrap())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let report: Option<WorkerReport> = serde_json::from_slice(&out.stderr).ok();
        if let Some(r) = &report {
            assert!(
                r.lockdown_error.is_none(),
                "{probe}: {:?}",
                r.lockdown_error
            );
            assert!(
                r.layers.landlock.is_enforced()
                    || matches!(r.layers.landlock, modelguard::jail::LayerStatus::Partial(_))
            );
        }
        (out.status.signal(), report.and_then(|r| r.probe))
    };
    assert_eq!(run("stacked-open-input"), (None, Some("Ok(())".into())));
    let (sig, result) = run("stacked-open-outside");
    assert_eq!(sig, None);
    assert_eq!(
        result.as_deref(),
        Some("Err(EACCES)"),
        "Landlock refuses leaving the folder"
    );
    for probe in [
        "stacked-open-cwd",
        "mmap-exec",
        "open-passwd",
        "socket-unix",
        "exec-shell",
        "fork",
    ] {
        let (sig, result) = run(probe);
        assert_eq!(
            sig,
            Some(SIGSYS),
            "{probe}: expected SIGSYS, survived with {result:?}"
        );
    }
}
