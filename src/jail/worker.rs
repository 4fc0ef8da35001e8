//! The worker: the re-executed binary that parses one untrusted file. It gets exactly three
//! fds (0 input, 1 output, 2 report), locks itself down, then runs the engine and writes its
//! report as one JSON document to fd 2.

use super::layers::Layers;
use super::lockdown::{hygiene, lock_down, Budget, Profile};
use crate::convert::{self, ConvertOptions, Outcome, OutcomeError};
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;

/// Everything the host tells the worker (sizes and options; paths only for the stacked guest,
/// and those the host made).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkerArgs {
    pub input_len: u64,
    pub budget: Budget,
    pub options: ConvertOptions,
    /// Test-only attack to try after lock-down (feature `jail-probe`).
    #[serde(default)]
    pub probe: Option<String>,
    /// `--sandbox both`: run this WASI guest under wasmtime inside the jail instead of the
    /// engine itself.
    #[serde(default)]
    pub guest: Option<StackedGuest>,
}

/// The stacked jail's guest: all paths are ones the host made (no input-controlled names).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StackedGuest {
    /// The guest's only folder, holding the input as `input`.
    pub dir: std::path::PathBuf,
    /// The compiled guest this binary serialised (loaded before the lock-down, so that no code
    /// is generated inside the jail).
    pub module: std::path::PathBuf,
    /// The guest's wall-clock limit (SIGALRM ends it with a clear error before the host's kill).
    pub timeout_secs: u64,
}

/// What the worker hands back on fd 2.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct WorkerReport {
    pub layers: Layers,
    pub outcome: Outcome,
    /// Set when lock-down failed: nothing was parsed.
    pub lockdown_error: Option<String>,
    /// Result of a test probe.
    #[serde(default)]
    pub probe: Option<String>,
}

/// Entry point of `modelguard __worker ARGS_JSON`; never returns.
pub fn main(args_json: &str) -> ! {
    // A panic must not print into the report pipe; it becomes an error report instead.
    std::panic::set_hook(Box::new(|_| {}));
    // SAFETY: the host spawned us with fd 0 = input (read-only), fd 1 = output file, fd 2 =
    // report pipe; nothing else in this process owns them, so these are their only owners.
    let (input, output, report) = unsafe {
        (
            File::from_raw_fd(0),
            File::from_raw_fd(1),
            File::from_raw_fd(2),
        )
    };
    let args: WorkerArgs = match serde_json::from_str(args_json) {
        Ok(a) => a,
        Err(e) => refuse(report, format!("bad worker arguments: {e}")),
    };
    if let Err(e) = hygiene(&args.budget) {
        refuse(report, e.to_string());
    }
    if let Some(guest) = &args.guest {
        stacked(guest, &args, output, report);
    }
    let layers = match lock_down(&args.budget, Profile::Parser) {
        Ok(l) => l,
        Err(e) => refuse(report, e.to_string()),
    };
    // From here on only the seccomp allowlist's syscalls are possible.
    #[cfg(feature = "jail-probe")]
    if let Some(p) = &args.probe {
        probed(report, layers, super::probe::attack(p));
    }
    // SAFETY: fd 0 (the input) stays open for the whole life of the worker.
    let input_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
    let mut direct = |out: &mut File, offset: u64, len: u64| {
        super::copy::copy_range(input_fd, &*out, offset, len)
    };
    let mut input = input;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        convert::run(
            &mut input,
            args.input_len,
            &args.options,
            output,
            Some(&mut direct),
        )
    }))
    .unwrap_or_else(|_| Outcome {
        error: Some(OutcomeError {
            kind: "crash".into(),
            message: "the parser panicked".into(),
        }),
        ..Default::default()
    });
    ran(report, layers, outcome)
}

/// `--sandbox both`: load and instantiate the guest, lock down (with the `both` additions),
/// then run it. Never returns.
#[cfg(feature = "wasi")]
fn stacked(guest: &StackedGuest, args: &WorkerArgs, output: File, report: File) -> ! {
    let timeout = std::time::Duration::from_secs(guest.timeout_secs.max(1));
    let runner = match crate::wasi::Runner::from_module_file(&guest.module) {
        Ok(r) => r,
        Err(e) => refuse(report, format!("cannot load the WASI guest: {e}")),
    };
    let prepared = match runner.prepare(&guest.dir, args.input_len, output, &args.options, timeout)
    {
        Ok(p) => p,
        Err(o) => finish(
            report,
            WorkerReport {
                outcome: *o,
                ..Default::default()
            },
            2,
        ),
    };
    let engine = runner.engine().clone();
    if let Err(e) = super::alarm::arm(timeout, move || engine.increment_epoch()) {
        refuse(report, format!("cannot arm the guest's deadline: {e}"));
    }
    let Some(guest_dir_fd) = super::lockdown::fd_of(&guest.dir) else {
        refuse(
            report,
            "the guest's folder is not open in the worker".into(),
        );
    };
    let profile = Profile::Stacked {
        guest_dir: &guest.dir,
        guest_dir_fd,
    };
    let layers = match lock_down(&args.budget, profile) {
        Ok(l) => l,
        Err(e) => refuse(report, e.to_string()),
    };
    #[cfg(feature = "jail-probe")]
    if let Some(p) = &args.probe {
        let result = super::probe::attack_stacked(p, guest_dir_fd);
        drop(prepared);
        probed(report, layers, result);
    }
    ran(report, layers, prepared.run())
}

#[cfg(not(feature = "wasi"))]
fn stacked(_: &StackedGuest, _: &WorkerArgs, _: File, report: File) -> ! {
    refuse(
        report,
        "this modelguard was built without the WASI host".into(),
    )
}

/// Nothing was parsed: the worker could not start or lock down.
fn refuse(report: File, message: String) -> ! {
    finish(
        report,
        WorkerReport {
            lockdown_error: Some(message),
            ..Default::default()
        },
        2,
    )
}

fn ran(report: File, layers: Layers, outcome: Outcome) -> ! {
    finish(
        report,
        WorkerReport {
            layers,
            outcome,
            ..Default::default()
        },
        0,
    )
}

#[cfg(feature = "jail-probe")]
fn probed(report: File, layers: Layers, result: String) -> ! {
    finish(
        report,
        WorkerReport {
            layers,
            probe: Some(result),
            ..Default::default()
        },
        0,
    )
}

fn finish(mut report: File, r: WorkerReport, code: i32) -> ! {
    let text = serde_json::to_string(&r).unwrap_or_else(|_| "{}".into());
    let _ = report.write_all(text.as_bytes());
    std::process::exit(code)
}
