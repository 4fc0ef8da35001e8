//! The WASI jail: the engine compiled to wasm32-wasip1 (`guest/`), run by wasmtime with a fresh
//! WASI context per file: one preopened directory holding only the input (read-only), stdout
//! to the output file, stderr to an in-memory report pipe, no environment, no network, memory
//! capped by `StoreLimits`, wall time bounded by epoch interruption.

mod cache;

use crate::convert::{ConvertOptions, Outcome};
use std::fs::File;
use std::path::Path;
use std::time::Duration;
use wasmtime::{Config, Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::cli::OutputFile;
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// The guest module built by `guest/build.sh`, when it existed at build time.
#[cfg(modelguard_guest)]
pub const GUEST: Option<&[u8]> = Some(include_bytes!(env!("MODELGUARD_GUEST_WASM_PATH")));
#[cfg(not(modelguard_guest))]
pub const GUEST: Option<&[u8]> = None;

pub const WASMTIME_VERSION: &str = "48.0.8";
const MAX_REPORT_BYTES: usize = 64 << 20;

pub fn guest_sha256() -> Option<String> {
    use sha2::{Digest, Sha256};
    GUEST.map(|g| {
        Sha256::digest(g)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

pub fn missing_guest_message() -> String {
    "this modelguard was built without the WASI guest: run guest/build.sh, then rebuild \
     (cargo build --release); see README, section 'The WASI guest'"
        .into()
}

struct State {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

/// A wasmtime engine with the guest compiled (or loaded from the module cache).
pub struct Runner {
    engine: Engine,
    module: Module,
    linker: Linker<State>,
}

impl Runner {
    pub fn new() -> Result<Runner, String> {
        let guest = GUEST.ok_or_else(missing_guest_message)?;
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Reserve address space for the memory the guest may really use, not wasmtime's 4 GiB
        // + guard default: the jail and the tests cap the address space (bounds checks instead).
        config.memory_reservation(0);
        config.memory_guard_size(0);
        config.memory_reservation_for_growth(16 << 20);
        let engine = Engine::new(&config).map_err(|e| e.to_string())?;
        let module = cache::load_or_compile(&engine, guest)?;
        let mut linker: Linker<State> = Linker::new(&engine);
        p1::add_to_linker_sync(&mut linker, |s| &mut s.wasi).map_err(|e| e.to_string())?;
        Ok(Runner {
            engine,
            module,
            linker,
        })
    }

    /// Convert the input the host opened into `output`; the guest's folder is made in `near`
    /// (the destination folder).
    pub fn convert(
        &self,
        input: &File,
        input_len: u64,
        output: &File,
        near: &Path,
        opts: &ConvertOptions,
        timeout: Duration,
    ) -> Outcome {
        match self.run(input, input_len, output, near, opts, timeout) {
            Ok(o) => o,
            Err(e) => *e,
        }
    }

    fn run(
        &self,
        input: &File,
        input_len: u64,
        output: &File,
        near: &Path,
        opts: &ConvertOptions,
        timeout: Duration,
    ) -> Result<Outcome, Box<Outcome>> {
        // The guest's only directory: a fresh one holding the very file the host opened (a hard
        // link made through the open fd, or a private copy across filesystems), so nothing else
        // of the host's filesystem is visible and no path can be swapped in between.
        let dir = tempfile::Builder::new()
            .prefix(".modelguard-wasi-")
            .tempdir_in(near)
            .or_else(|_| tempfile::tempdir())
            .map_err(|e| sandbox(format!("cannot create the guest's directory: {e}")))?;
        let link = dir.path().join("input");
        if !link_open_file(input, &link) {
            let mut src = input.try_clone().map_err(|e| sandbox(e.to_string()))?;
            std::io::Seek::seek(&mut src, std::io::SeekFrom::Start(0))
                .map_err(|e| sandbox(e.to_string()))?;
            let mut dst = File::create(&link)
                .map_err(|e| sandbox(format!("cannot give the input to the guest: {e}")))?;
            std::io::copy(&mut src, &mut dst)
                .map_err(|e| sandbox(format!("cannot give the input to the guest: {e}")))?;
        }
        let args = serde_json::json!({
            "input_len": input_len,
            "fail_on": opts.fail_on,
            "dedup": opts.dedup,
            "skip_unsupported": opts.format.skip_unsupported,
            "limits": opts.format.limits,
        });
        let report = MemoryOutputPipe::new(MAX_REPORT_BYTES);
        let out = output
            .try_clone()
            .map_err(|e| sandbox(format!("cannot hand the output to the guest: {e}")))?;
        let wasi = WasiCtxBuilder::new()
            // Synchronous host: do file I/O on this thread instead of hopping to a blocking pool.
            .allow_blocking_current_thread(true)
            .args(&["modelguard-guest".to_string(), args.to_string()])
            .stdout(OutputFile::new(out))
            .stderr(report.clone())
            .preopened_dir(dir.path(), "/in", FsPerms::ReadOnly)
            .map_err(|e| sandbox(format!("cannot preopen the input: {e}")))?
            .build_p1();
        let memory = memory_budget(input_len, opts);
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory as usize)
            .instances(1)
            .memories(1)
            .tables(4)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&self.engine, State { wasi, limits });
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        // One tick of the epoch ends the guest: a watchdog thread ticks at the deadline.
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let engine = self.engine.clone();
        let watchdog = std::thread::spawn(move || {
            if done_rx.recv_timeout(timeout).is_err() {
                engine.increment_epoch();
            }
        });
        let result = self
            .linker
            .instantiate(&mut store, &self.module)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .and_then(|start| start.call(&mut store, ()));
        let _ = done_tx.send(());
        let _ = watchdog.join();
        let text = String::from_utf8_lossy(&report.contents()).into_owned();
        if let Err(e) = result {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                if exit.0 != 0 {
                    return Err(sandbox(format!("the guest exited with {}", exit.0)));
                }
            } else {
                return Err(classify_trap(&e, &text, memory, timeout));
            }
        }
        serde_json::from_str(&text)
            .map_err(|e| sandbox(format!("the guest's report is not valid: {e}")))
    }
}

/// `linkat(/proc/self/fd/N, AT_SYMLINK_FOLLOW)`: a name for exactly the open file.
fn link_open_file(file: &File, to: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let from = format!("/proc/self/fd/{}", file.as_raw_fd());
    nix::unistd::linkat(
        nix::fcntl::AT_FDCWD,
        from.as_str(),
        nix::fcntl::AT_FDCWD,
        to,
        nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
    )
    .is_ok()
}

fn memory_budget(input_len: u64, opts: &ConvertOptions) -> u64 {
    let l = &opts.format.limits;
    (128u64 << 20)
        .saturating_add(l.max_graph_bytes)
        .saturating_add(l.max_inflated_member)
        .saturating_add(input_len / 8)
        .min(4 << 30)
}

fn sandbox(message: String) -> Box<Outcome> {
    Box::new(Outcome::failure("sandbox", message))
}

fn limit(message: String) -> Box<Outcome> {
    Box::new(Outcome::failure("limit", message))
}

fn classify_trap(
    e: &wasmtime::Error,
    report: &str,
    memory: u64,
    timeout: Duration,
) -> Box<Outcome> {
    if report.contains("memory allocation of")
        || e.to_string().contains("memory") && e.to_string().contains("grow")
    {
        return limit(format!(
            "the guest ran out of its {} MiB memory limit",
            memory >> 20
        ));
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => limit(format!(
            "the guest ran past its wall-clock limit of {} s",
            timeout.as_secs()
        )),
        Some(Trap::OutOfFuel) => limit("the guest ran out of fuel".into()),
        Some(Trap::UnreachableCodeReached) => sandbox("the guest panicked".into()),
        Some(t) => sandbox(format!("the guest trapped: {t}")),
        None => sandbox(format!("the guest failed: {e}")),
    }
}
