//! Guest-escape tests: a test guest (`guest/src/bin/escape-probe.rs`) runs under exactly the host
//! configuration of the real guest, in the WASI sandbox and in the stacked one (`both`), and
//! tries to open other paths, write outside its output, read the environment, spin forever and
//! allocate past its cap. Each attempt must fail, or the run must be stopped with the right error.
#![cfg(all(feature = "wasi", target_os = "linux"))]

mod common;

use modelguard::convert::{ConvertOptions, Outcome};
use modelguard::jail::JailOptions;
use modelguard::wasi::Runner;
use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn probe_wasm() -> Option<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("guest/target/wasm32-wasip1/release/escape-probe.wasm");
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!(
                "CI must build the guests (guest/build.sh): {}: {e}",
                path.display()
            )
        }
        Err(e) => {
            eprintln!("skipped: no escape-probe guest ({e}); run guest/build.sh");
            None
        }
    }
}

enum Mode {
    Wasi,
    Both,
}

/// Run the probe guest on an input file that names the probe; returns the outcome and what the
/// folder beside it holds afterwards (nothing may appear there).
fn probe(wasm: &[u8], what: &str, mode: Mode, timeout: Duration) -> (Outcome, Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let input_path = tmp.path().join("probe-input");
    std::fs::write(&input_path, what).unwrap();
    let input = File::open(&input_path).unwrap();
    let output = tempfile::tempfile_in(tmp.path()).unwrap();
    let opts = ConvertOptions::default();
    let mut runner = Runner::from_wasm(wasm).unwrap();
    let start = Instant::now();
    let outcome = match mode {
        Mode::Wasi => runner.convert(
            &input,
            what.len() as u64,
            &output,
            tmp.path(),
            &opts,
            timeout,
        ),
        Mode::Both => {
            let modules = tempfile::tempdir().unwrap();
            let module = runner.save_module(modules.path(), "probe.cwasm").unwrap();
            let jail = JailOptions {
                timeout: Some(timeout),
                worker_exe: Some(common::bin().into()),
                ..Default::default()
            };
            let (o, _) = modelguard::jail::host::convert_stacked(
                &input,
                what.len() as u64,
                &output,
                tmp.path(),
                &opts,
                &jail,
                &module,
            );
            o
        }
    };
    let elapsed = start.elapsed();
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["probe-input"],
        "the guest's folder must be gone, nothing created"
    );
    (outcome, elapsed)
}

fn every_escape_is_refused(mode: Mode, name: &str) {
    let Some(wasm) = probe_wasm() else { return };
    let (o, _) = probe(&wasm, "escape", mode, Duration::from_secs(30));
    let e = o.error.expect("the probe reports");
    assert_eq!(e.kind, "probe", "{name}: {}", e.message);
    println!("{name}:\n{}", e.message);
    let lines: Vec<&str> = e.message.lines().collect();
    assert!(
        lines.len() >= 26,
        "{name}: every attempt reported: {}",
        e.message
    );
    for line in lines {
        assert!(line.contains(": refused ("), "{name}: {line}");
    }
}

fn spinning_is_stopped_at_the_deadline(mode: Mode, name: &str) {
    let Some(wasm) = probe_wasm() else { return };
    let (o, elapsed) = probe(&wasm, "spin", mode, Duration::from_secs(2));
    let e = o.error.expect("stopped");
    assert_eq!(e.kind, "limit", "{name}: {}", e.message);
    assert!(
        e.message.contains("wall-clock limit of 2 s"),
        "{name}: {}",
        e.message
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "{name}: stopped late: {elapsed:?}"
    );
}

fn allocation_stops_at_the_memory_cap(mode: Mode, name: &str) {
    let Some(wasm) = probe_wasm() else { return };
    let (o, _) = probe(&wasm, "alloc", mode, Duration::from_secs(60));
    let e = o.error.expect("stopped");
    assert_eq!(e.kind, "limit", "{name}: {}", e.message);
    assert!(
        e.message.contains("MiB memory limit"),
        "{name}: {}",
        e.message
    );
}

#[test]
fn wasi_every_escape_is_refused() {
    every_escape_is_refused(Mode::Wasi, "wasi");
}

#[test]
fn both_every_escape_is_refused() {
    every_escape_is_refused(Mode::Both, "both");
}

#[test]
fn wasi_spinning_is_stopped_at_the_deadline() {
    spinning_is_stopped_at_the_deadline(Mode::Wasi, "wasi");
}

#[test]
fn both_spinning_is_stopped_at_the_deadline() {
    spinning_is_stopped_at_the_deadline(Mode::Both, "both");
}

#[test]
fn wasi_allocation_stops_at_the_memory_cap() {
    allocation_stops_at_the_memory_cap(Mode::Wasi, "wasi");
}

#[test]
fn both_allocation_stops_at_the_memory_cap() {
    allocation_stops_at_the_memory_cap(Mode::Both, "both");
}
