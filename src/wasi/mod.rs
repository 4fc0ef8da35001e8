//! The WASI jail: the engine compiled to wasm32-wasip1 (`guest/`), run by wasmtime with a fresh
//! WASI context per file: one preopened directory holding only the input (read-only), stdout
//! to the output file, stderr to an in-memory report pipe, no environment, no network, memory
//! capped by `StoreLimits`, wall time bounded by epoch interruption.

mod cache;
mod guest_dir;
mod output;
mod run;

pub use guest_dir::GuestDir;
pub use run::Prepared;

use crate::convert::{ConvertOptions, Outcome};
use run::State;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wasmtime::{Config, Engine, Linker, Module};
use wasmtime_wasi::p1;

/// The guest module built by `guest/build.sh`, when it existed at build time.
#[cfg(modelguard_guest)]
pub const GUEST: Option<&[u8]> = Some(include_bytes!(env!("MODELGUARD_GUEST_WASM_PATH")));
#[cfg(not(modelguard_guest))]
pub const GUEST: Option<&[u8]> = None;

pub const WASMTIME_VERSION: &str = "48.0.8";

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

/// The one engine configuration: the cache, the host and the stacked worker must agree on it
/// (wasmtime refuses a serialised module compiled for another).
fn engine() -> Result<Engine, String> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    // Reserve address space for the memory the guest may really use, not wasmtime's 4 GiB
    // + guard default: the jail and the tests cap the address space (bounds checks instead).
    config.memory_reservation(0);
    config.memory_guard_size(0);
    config.memory_reservation_for_growth(16 << 20);
    Engine::new(&config).map_err(|e| e.to_string())
}

/// A wasmtime engine with a guest compiled (or loaded from the module cache).
pub struct Runner {
    engine: Engine,
    module: Module,
    linker: Linker<State>,
    module_file: Option<PathBuf>,
}

impl Runner {
    /// The embedded guest, from the module cache when it is warm.
    pub fn new() -> Result<Runner, String> {
        let guest = GUEST.ok_or_else(missing_guest_message)?;
        let engine = engine()?;
        let (module, file) = cache::load_or_compile(&engine, guest)?;
        Runner::with(engine, module, file)
    }

    /// Another guest module (the escape-probe test guest), compiled now, not cached.
    pub fn from_wasm(wasm: &[u8]) -> Result<Runner, String> {
        let engine = engine()?;
        let module = Module::new(&engine, wasm).map_err(|e| e.to_string())?;
        Runner::with(engine, module, None)
    }

    /// A module this binary serialised: how the stacked worker loads the guest before its
    /// lock-down, so that no code is generated inside the jail.
    pub fn from_module_file(path: &Path) -> Result<Runner, String> {
        let engine = engine()?;
        let module = cache::load_file(&engine, path)?;
        Runner::with(engine, module, Some(path.to_path_buf()))
    }

    fn with(
        engine: Engine,
        module: Module,
        module_file: Option<PathBuf>,
    ) -> Result<Runner, String> {
        let mut linker: Linker<State> = Linker::new(&engine);
        p1::add_to_linker_sync(&mut linker, |s| &mut s.wasi).map_err(|e| e.to_string())?;
        Ok(Runner {
            engine,
            module,
            linker,
            module_file,
        })
    }

    /// Where the compiled guest is stored, if it is (the stacked jail needs a file).
    pub fn module_file(&self) -> Option<&Path> {
        self.module_file.as_deref()
    }

    /// Serialise the compiled guest into a private file in the private folder `dir`.
    pub fn save_module(&mut self, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
        let path = dir.join(name);
        cache::store(&self.module, &path, dir)?;
        self.module_file = Some(path.clone());
        Ok(path)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Convert the input the host opened into `output`; the guest's folder is made in `near`
    /// (the destination folder). A watchdog thread ends the guest at `timeout`.
    pub fn convert(
        &self,
        input: &File,
        input_len: u64,
        output: &File,
        near: &Path,
        opts: &ConvertOptions,
        timeout: Duration,
    ) -> Outcome {
        let dir = match GuestDir::new(input, near) {
            Ok(d) => d,
            Err(e) => return Outcome::failure("sandbox", e),
        };
        let output = match output.try_clone() {
            Ok(o) => o,
            Err(e) => {
                return Outcome::failure("sandbox", format!("cannot hand over the output: {e}"))
            }
        };
        let prepared = match self.prepare(dir.path(), input_len, output, opts, timeout) {
            Ok(p) => p,
            Err(e) => return *e,
        };
        // One tick of the epoch ends the guest: the watchdog ticks at the deadline.
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let engine = self.engine.clone();
        let watchdog = std::thread::spawn(move || {
            if done_rx.recv_timeout(timeout).is_err() {
                engine.increment_epoch();
            }
        });
        let outcome = prepared.run();
        let _ = done_tx.send(());
        let _ = watchdog.join();
        outcome
    }

    /// Everything up to the guest's first instruction: a fresh WASI context whose only folder is
    /// `dir` (read-only, as `/in`), the store with its limits, the instance. Nothing here reads
    /// the input.
    pub fn prepare(
        &self,
        dir: &Path,
        input_len: u64,
        output: File,
        opts: &ConvertOptions,
        timeout: Duration,
    ) -> Result<Prepared, Box<Outcome>> {
        let args = serde_json::json!({ "input_len": input_len, "options": opts });
        let memory = memory_budget(input_len, opts);
        run::prepare(
            &self.engine,
            &self.linker,
            &self.module,
            dir,
            &args.to_string(),
            output,
            memory,
            timeout,
        )
    }
}

/// Linear memory the guest may grow to, scaled to the input.
pub fn memory_budget(input_len: u64, opts: &ConvertOptions) -> u64 {
    let l = &opts.format.limits;
    (128u64 << 20)
        .saturating_add(l.max_graph_bytes)
        .saturating_add(l.max_inflated_member)
        .saturating_add(input_len / 8)
        .min(4 << 30)
}
