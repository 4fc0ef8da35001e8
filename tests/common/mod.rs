//! Shared helpers for the integration tests: run the real binary, read safetensors files with
//! the official `safetensors` crate, and build hostile zip archives byte by byte.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_modelguard")
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Run `modelguard ARGS` with the address space capped at `mem_mib` MiB (so "under N MiB" is
/// enforced by the kernel, not estimated) and a generous wall-clock guard against hangs.
pub fn run_limited(args: &[&str], mem_mib: u64) -> Run {
    let mut script = format!("ulimit -v {}; exec \"$0\"", mem_mib * 1024);
    // `${10}`, not `$10`: sh reads the latter as `${1}0`.
    for i in 0..args.len() {
        script.push_str(&format!(" \"${{{}}}\"", i + 1));
    }
    let start = Instant::now();
    let out: Output = Command::new("timeout")
        .args(["60", "sh", "-c", &script, bin()])
        .args(args)
        .output()
        .expect("run modelguard");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

pub fn run(args: &[&str]) -> Run {
    run_limited(args, 4096)
}

/// name -> (dtype, shape, bytes), read with the official safetensors crate.
pub type Tensors = std::collections::BTreeMap<String, (String, Vec<usize>, Vec<u8>)>;

pub fn read_safetensors(path: &Path) -> (Tensors, std::collections::HashMap<String, String>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let st =
        safetensors::SafeTensors::deserialize(&bytes).expect("official reader accepts the file");
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("metadata");
    let mut out = Tensors::new();
    for (name, view) in st.tensors() {
        out.insert(
            name,
            (
                format!("{:?}", view.dtype()),
                view.shape().to_vec(),
                view.data().to_vec(),
            ),
        );
    }
    (out, meta.metadata().clone().unwrap_or_default())
}

/// A minimal zip writer (stored or deflated members, classic 32-bit records) for hostile archives.
pub struct ZipBuilder {
    data: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

impl ZipBuilder {
    pub fn new() -> Self {
        ZipBuilder {
            data: Vec::new(),
            central: Vec::new(),
            count: 0,
        }
    }

    /// Add a member: `payload` is written as is; `declared` is the uncompressed size claimed.
    pub fn member(
        &mut self,
        name: &str,
        payload: &[u8],
        method: u16,
        crc: u32,
        declared: u32,
    ) -> &mut Self {
        let off = self.data.len() as u32;
        let mut h = Vec::new();
        h.extend_from_slice(b"PK\x03\x04");
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(&method.to_le_bytes());
        h.extend_from_slice(&[0, 0, 0, 0]);
        h.extend_from_slice(&crc.to_le_bytes());
        h.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        h.extend_from_slice(&declared.to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        self.data.extend_from_slice(&h);
        self.data.extend_from_slice(payload);
        let mut c = Vec::new();
        c.extend_from_slice(b"PK\x01\x02");
        c.extend_from_slice(&20u16.to_le_bytes());
        c.extend_from_slice(&20u16.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes());
        c.extend_from_slice(&method.to_le_bytes());
        c.extend_from_slice(&[0, 0, 0, 0]);
        c.extend_from_slice(&crc.to_le_bytes());
        c.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        c.extend_from_slice(&declared.to_le_bytes());
        c.extend_from_slice(&(name.len() as u16).to_le_bytes());
        c.extend_from_slice(&[0u8; 8]);
        c.extend_from_slice(&[0u8; 4]);
        c.extend_from_slice(&off.to_le_bytes());
        c.extend_from_slice(name.as_bytes());
        self.central.extend_from_slice(&c);
        self.count += 1;
        self
    }

    pub fn stored(&mut self, name: &str, payload: &[u8]) -> &mut Self {
        let crc = crc32fast::hash(payload);
        self.member(name, payload, 0, crc, payload.len() as u32)
    }

    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        let cd_off = out.len() as u32;
        out.extend_from_slice(&self.central);
        out.extend_from_slice(b"PK\x05\x06");
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&(self.central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_off.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }
}

/// A protocol-2 `data.pkl` holding `{"w": _rebuild_tensor_v2(storage('0', FloatStorage, numel),
/// offset, size, stride, False, OrderedDict())}`.
pub fn state_dict_pickle(numel: u64, offset: i64, size: &[i64], stride: &[i64]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'X'];
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(b'w');
    p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
    p.extend_from_slice(
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu",
    );
    push_int(&mut p, numel as i64);
    p.extend_from_slice(b"tQ");
    push_int(&mut p, offset);
    p.push(b'(');
    for &s in size {
        push_int(&mut p, s);
    }
    p.push(b't');
    p.push(b'(');
    for &s in stride {
        push_int(&mut p, s);
    }
    p.push(b't');
    p.extend_from_slice(b"\x89ccollections\nOrderedDict\n)R");
    p.extend_from_slice(b"tRs.");
    p
}

/// LONG1 of any i64 (what pickle writes for ints beyond 32 bits).
pub fn push_int(p: &mut Vec<u8>, v: i64) {
    p.push(0x8a);
    p.push(8);
    p.extend_from_slice(&v.to_le_bytes());
}

/// A torch zip archive with the given data.pkl and one storage record `data/0`.
pub fn torch_zip(data_pkl: &[u8], storage: &[u8]) -> Vec<u8> {
    let mut z = ZipBuilder::new();
    z.stored("archive/data.pkl", data_pkl)
        .stored("archive/version", b"3\n")
        .stored("archive/data/0", storage);
    z.finish()
}

/// `modelguard convert INPUT OUTPUT --report - -q EXTRA...`: the run and its JSON report.
pub fn convert_with_report(
    input: &Path,
    output: &Path,
    extra: &[&str],
) -> (Run, serde_json::Value) {
    let mut args = vec![
        "convert",
        input.to_str().unwrap(),
        output.to_str().unwrap(),
        "--report",
        "-",
        "-q",
    ];
    args.extend_from_slice(extra);
    let r = run(&args);
    let report = serde_json::from_str(&r.stdout).unwrap_or(serde_json::Value::Null);
    (r, report)
}

/// A manifest under tests/fixtures (`manifest.json`, `malicious/manifest.json`...).
pub fn manifest(relative: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixtures().join(relative)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The extra CLI flags a manifest case asks for (`"options": ["--dedup"]`).
pub fn case_options(case: &serde_json::Value) -> Vec<String> {
    case["options"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
