//! The host side of the jail: spawn the worker with exactly the input, output and report fds,
//! enforce a wall-clock deadline, and classify how the worker ended. Nothing the worker says is
//! trusted: its report only describes what the host then checks in the output file.

use super::layers::Layers;
use super::lockdown::Budget;
use super::worker::{WorkerArgs, WorkerReport};
use crate::convert::{ConvertOptions, Outcome};
use crate::policy::findings::{Finding, Rule, Severity};
use std::fs::File;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The worker's report is small (findings and a tensor table); more is an attack.
const MAX_REPORT_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, Default)]
pub struct JailOptions {
    /// Wall-clock limit for one worker; None picks one from the input size.
    pub timeout: Option<Duration>,
    /// Refuse to run unless every layer is enforced.
    pub require_full_jail: bool,
    /// The `modelguard` binary to run as the worker; None re-executes this process's binary
    /// (a program embedding the library must name the modelguard binary here).
    pub worker_exe: Option<std::path::PathBuf>,
}

/// How much one worker may use, scaled to its input.
pub fn budget_for(input_len: u64, opts: &ConvertOptions) -> Budget {
    let limits = &opts.format.limits;
    // The engine streams; what it holds is bounded by the graph and inflate limits, not the input.
    let memory = (512u64 << 20)
        .saturating_add(limits.max_graph_bytes)
        .saturating_add(limits.max_inflated_member)
        .saturating_add(input_len / 8)
        .min(8 << 30);
    Budget {
        parent: std::process::id() as i32,
        memory,
        // 50 MB/s is far below what the engine does; the slack is for slow disks.
        cpu_seconds: 30 + input_len / (50 << 20),
        output_bytes: limits.max_output_bytes.saturating_add(128 << 20),
    }
}

/// Convert `input` into `output` inside a jailed worker. The outcome includes the layers the
/// worker ran under; the caller still validates `output` against `outcome.tensors`.
pub fn convert(
    input: &File,
    input_len: u64,
    output: &File,
    opts: &ConvertOptions,
    jail: &JailOptions,
) -> (Outcome, Option<Layers>) {
    let budget = budget_for(input_len, opts);
    let timeout = jail
        .timeout
        .unwrap_or_else(|| Duration::from_secs(2 * budget.cpu_seconds + 10));
    let args = worker_args(input_len, budget, opts, None);
    run(input, output, &args, timeout, jail)
}

/// What the worker is told: sizes and options, plus the stacked guest when there is one.
fn worker_args(
    input_len: u64,
    budget: Budget,
    opts: &ConvertOptions,
    guest: Option<super::worker::StackedGuest>,
) -> WorkerArgs {
    WorkerArgs {
        input_len,
        budget,
        options: opts.clone(),
        probe: None,
        guest,
    }
}

/// `--sandbox both`: the WASI guest, run by wasmtime inside the jailed worker. `module` is the
/// compiled guest this binary serialised; the guest's folder is made in `near`.
#[cfg(feature = "wasi")]
pub fn convert_stacked(
    input: &File,
    input_len: u64,
    output: &File,
    near: &std::path::Path,
    opts: &ConvertOptions,
    jail: &JailOptions,
    module: &std::path::Path,
) -> (Outcome, Option<Layers>) {
    let dir = match crate::wasi::GuestDir::new(input, near) {
        Ok(d) => d,
        Err(e) => return (sandbox_error(e), None),
    };
    let mut budget = budget_for(input_len, opts);
    // wasmtime grows linear memory by moving it: old and new copy exist for a moment.
    budget.memory = (2 * crate::wasi::memory_budget(input_len, opts) + (512 << 20)).min(10 << 30);
    let guest_timeout = jail
        .timeout
        .unwrap_or_else(|| Duration::from_secs(2 * budget.cpu_seconds + 10));
    let guest = super::worker::StackedGuest {
        dir: dir.path().to_path_buf(),
        module: module.to_path_buf(),
        timeout_secs: guest_timeout.as_secs(),
    };
    let args = worker_args(input_len, budget, opts, Some(guest));
    // The guest's own deadline reports first; the host's kill is the backstop.
    let timeout = guest_timeout + Duration::from_secs(5);
    run(input, output, &args, timeout, jail)
}

fn sandbox_error(message: impl Into<String>) -> Outcome {
    Outcome::failure("sandbox", message)
}

fn limit_error(message: impl Into<String>) -> Outcome {
    Outcome::failure("limit", message)
}

/// How a worker run ended, before interpretation (also what the jail tests inspect).
pub struct RawRun {
    pub status: std::process::ExitStatus,
    pub report: Vec<u8>,
    pub timed_out: bool,
    pub pid: u32,
}

/// Spawn `exe __worker ARGS` on the given fds and wait for it, killing its process group at the
/// deadline. `on_spawn` sees the worker's pid while it runs (for tests).
pub fn spawn_and_wait_exe(
    exe: &std::path::Path,
    input: &File,
    output: &File,
    args: &WorkerArgs,
    timeout: Duration,
    on_spawn: &mut dyn FnMut(u32),
) -> std::io::Result<RawRun> {
    let args_json = serde_json::to_string(args).map_err(std::io::Error::other)?;
    let mut child = Command::new(exe)
        .arg("__worker")
        .arg(args_json)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::from(input.try_clone()?))
        .stdout(Stdio::from(output.try_clone()?))
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let mut pipe = child.stderr.take().expect("stderr was piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut pipe).take(MAX_REPORT_BYTES + 1).read_to_end(&mut buf);
        buf
    });
    // The waiting happens on this thread's behalf in a helper, so that this thread (the one that
    // spawned the child, which PR_SET_PDEATHSIG watches) stays alive until the child is gone.
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    on_spawn(pid);
    let mut timed_out = false;
    let status = match rx.recv_timeout(timeout) {
        Ok(s) => s?,
        Err(_) => {
            timed_out = true;
            kill_group(pid);
            rx.recv().map_err(std::io::Error::other)??
        }
    };
    let _ = waiter.join();
    let report = reader.join().unwrap_or_default();
    Ok(RawRun {
        status,
        report,
        timed_out,
        pid,
    })
}

fn kill_group(pid: u32) {
    use nix::sys::signal::{kill, killpg, Signal};
    use nix::unistd::Pid;
    let p = Pid::from_raw(pid as i32);
    // The worker made itself a session (and group) leader; before that, kill it alone.
    if killpg(p, Signal::SIGKILL).is_err() {
        let _ = kill(p, Signal::SIGKILL);
    }
}

pub fn run(
    input: &File,
    output: &File,
    args: &WorkerArgs,
    timeout: Duration,
    jail: &JailOptions,
) -> (Outcome, Option<Layers>) {
    let exe = jail
        .worker_exe
        .as_deref()
        .unwrap_or(std::path::Path::new("/proc/self/exe"));
    let raw = match spawn_and_wait_exe(exe, input, output, args, timeout, &mut |_| {}) {
        Ok(r) => r,
        Err(e) => {
            return (
                sandbox_error(format!("cannot start the jailed worker: {e}")),
                None,
            )
        }
    };
    classify(raw, timeout, jail.require_full_jail)
}

/// Interpret how the worker ended (design: normal, SIGSYS = policy violation, resource limit, crash).
pub fn classify(raw: RawRun, timeout: Duration, require_full: bool) -> (Outcome, Option<Layers>) {
    let text = String::from_utf8_lossy(&raw.report);
    if raw.timed_out {
        return (
            limit_error(format!(
                "the worker ran past its wall-clock limit of {} s and was killed",
                timeout.as_secs()
            )),
            None,
        );
    }
    if raw.report.len() as u64 > MAX_REPORT_BYTES {
        return (
            sandbox_error("the worker's report is larger than 64 MiB"),
            None,
        );
    }
    if let Some(sig) = raw.status.signal() {
        if text.contains("memory allocation of") {
            return (
                limit_error("the worker ran out of its address-space limit (RLIMIT_AS)"),
                None,
            );
        }
        return match sig {
            nix::libc::SIGSYS => {
                let mut o = sandbox_error(
                    "the worker made a system call outside its seccomp policy and was killed",
                );
                o.findings.push(Finding {
                    rule: Rule::SandboxViolation,
                    severity: Severity::Critical,
                    message: "parsing this file made the jailed worker attempt a forbidden system call (SIGSYS): treat the file as malicious".into(),
                    global: None,
                    location: Default::default(),
                });
                o.refused = true;
                (o, None)
            }
            nix::libc::SIGXCPU => (
                limit_error("the worker used up its CPU-time limit (RLIMIT_CPU)"),
                None,
            ),
            nix::libc::SIGXFSZ => (
                limit_error("the output grew past its size limit (RLIMIT_FSIZE)"),
                None,
            ),
            nix::libc::SIGKILL => (
                limit_error("the worker was killed (CPU or memory limit)"),
                None,
            ),
            s => (
                sandbox_error(format!("the worker crashed with signal {s}")),
                None,
            ),
        };
    }
    let report: WorkerReport = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            return (
                sandbox_error(format!(
                    "the worker's report is not valid ({e}); exit status {}",
                    raw.status
                )),
                None,
            )
        }
    };
    if let Some(e) = report.lockdown_error {
        return (sandbox_error(e), Some(report.layers));
    }
    if !report.layers.seccomp.is_enforced() {
        return (
            sandbox_error("the worker ran without seccomp"),
            Some(report.layers),
        );
    }
    if require_full && !report.layers.missing().is_empty() {
        return (
            sandbox_error(format!(
                "--require-full-jail: not enforced on this machine: {}",
                report.layers.missing().join(", ")
            )),
            Some(report.layers),
        );
    }
    if raw.status.code() != Some(0) {
        return (
            sandbox_error(format!("the worker failed with {}", raw.status)),
            Some(report.layers),
        );
    }
    (report.outcome, Some(report.layers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn raw(status: i32, report: &str) -> RawRun {
        RawRun {
            status: std::process::ExitStatus::from_raw(status),
            report: report.as_bytes().to_vec(),
            timed_out: false,
            pid: 1,
        }
    }

    #[test]
    fn sigsys_is_a_critical_finding_and_a_refusal() {
        let (o, _) = classify(raw(nix::libc::SIGSYS, ""), Duration::from_secs(1), false);
        assert!(o.refused);
        assert_eq!(o.findings[0].rule, Rule::SandboxViolation);
        assert_eq!(o.findings[0].severity, Severity::Critical);
    }

    #[test]
    fn resource_limits_are_errors_naming_the_limit() {
        let cases = [
            (nix::libc::SIGXCPU, "", "RLIMIT_CPU"),
            (nix::libc::SIGXFSZ, "", "RLIMIT_FSIZE"),
            (
                nix::libc::SIGSYS,
                "memory allocation of 123 bytes failed",
                "RLIMIT_AS",
            ),
        ];
        for (sig, text, limit) in cases {
            let (o, _) = classify(raw(sig, text), Duration::from_secs(1), false);
            let e = o.error.unwrap();
            assert_eq!(e.kind, "limit");
            assert!(e.message.contains(limit), "{}", e.message);
            assert!(!o.refused);
        }
        let mut r = raw(0, "");
        r.timed_out = true;
        let (o, _) = classify(r, Duration::from_secs(7), false);
        assert!(o.error.unwrap().message.contains("7 s"));
    }

    #[test]
    fn a_report_without_seccomp_is_refused() {
        let report = WorkerReport::default();
        let text = serde_json::to_string(&report).unwrap();
        let (o, _) = classify(raw(0, &text), Duration::from_secs(1), false);
        assert_eq!(o.error.unwrap().kind, "sandbox");
    }
}
