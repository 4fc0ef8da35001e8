//! One guest run: a fresh WASI context and store per file, and how the run ended, mapped to
//! the outcome kinds the native jail uses (limit, sandbox).

use super::output::BufferedOutput;
use crate::convert::Outcome;
use std::fs::File;
use std::path::Path;
use std::time::Duration;
use wasmtime::{Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// The guest's report (its `Outcome` as JSON) is small; more is an attack.
const MAX_REPORT_BYTES: usize = 64 << 20;

pub struct State {
    pub wasi: WasiP1Ctx,
    limits: StoreLimits,
}

/// An instantiated guest that has not run yet.
pub struct Prepared {
    store: Store<State>,
    start: TypedFunc<(), ()>,
    report: MemoryOutputPipe,
    output: BufferedOutput,
    memory: u64,
    timeout: Duration,
    /// wasmtime-wasi's synchronous API enters a Tokio runtime for each call; without one of
    /// ours it starts a multi-threaded one. A current-thread runtime starts no thread.
    runtime: tokio::runtime::Runtime,
}

#[allow(clippy::too_many_arguments)]
pub fn prepare(
    engine: &Engine,
    linker: &Linker<State>,
    module: &Module,
    dir: &Path,
    args: &str,
    output: File,
    memory: u64,
    timeout: Duration,
) -> Result<Prepared, Box<Outcome>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| sandbox(format!("cannot start the WASI runtime: {e}")))?;
    let report = MemoryOutputPipe::new(MAX_REPORT_BYTES);
    let output = BufferedOutput::new(output);
    let wasi = WasiCtxBuilder::new()
        // Synchronous host: do file I/O on this thread instead of hopping to a blocking pool.
        .allow_blocking_current_thread(true)
        .args(&["modelguard-guest".to_string(), args.to_string()])
        .stdout(output.clone())
        .stderr(report.clone())
        .preopened_dir(dir, "/in", FsPerms::ReadOnly)
        .map_err(|e| sandbox(format!("cannot preopen the input: {e}")))?
        .build_p1();
    let limits = StoreLimitsBuilder::new()
        .memory_size(memory as usize)
        .instances(1)
        .memories(1)
        .tables(4)
        .trap_on_grow_failure(true)
        .build();
    let mut store = Store::new(engine, State { wasi, limits });
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(1);
    let start = linker
        .instantiate(&mut store, module)
        .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
        .map_err(|e| sandbox(format!("cannot instantiate the guest: {e}")))?;
    Ok(Prepared {
        store,
        start,
        report,
        output,
        memory,
        timeout,
        runtime,
    })
}

impl Prepared {
    /// Run the guest to its end (or its trap) and read its report.
    pub fn run(mut self) -> Outcome {
        let result = {
            let _entered = self.runtime.enter();
            self.start.call(&mut self.store, ())
        };
        let text = String::from_utf8_lossy(&self.report.contents()).into_owned();
        if let Err(e) = result {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                if exit.0 != 0 {
                    return Outcome::failure(
                        "sandbox",
                        format!("the guest exited with {}", exit.0),
                    );
                }
            } else {
                return classify_trap(&e, &text, self.memory, self.timeout);
            }
        }
        if let Err(e) = self.output.finish() {
            return Outcome::failure("io", format!("cannot write the output: {e}"));
        }
        serde_json::from_str(&text).unwrap_or_else(|e| {
            Outcome::failure("sandbox", format!("the guest's report is not valid: {e}"))
        })
    }
}

fn sandbox(message: String) -> Box<Outcome> {
    Box::new(Outcome::failure("sandbox", message))
}

fn classify_trap(e: &wasmtime::Error, report: &str, memory: u64, timeout: Duration) -> Outcome {
    let limit = |m: String| Outcome::failure("limit", m);
    // StoreLimits' refusal is the root cause under wasmtime's backtrace context.
    let text = format!("{e:#}");
    if report.contains("memory allocation of") || text.contains("memory") && text.contains("grow") {
        return limit(format!(
            "the guest ran out of its {} MiB memory limit",
            memory >> 20
        ));
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => limit(format!(
            "the guest ran past its wall-clock limit of {} s",
            timeout.as_secs_f64()
        )),
        Some(Trap::OutOfFuel) => limit("the guest ran out of fuel".into()),
        Some(Trap::UnreachableCodeReached) => {
            Outcome::failure("sandbox", "the guest panicked".to_string())
        }
        Some(t) => Outcome::failure("sandbox", format!("the guest trapped: {t}")),
        None => Outcome::failure("sandbox", format!("the guest failed: {e}")),
    }
}
