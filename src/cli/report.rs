//! The JSON report of `convert` (`--report FILE`).

use crate::convert::{TensorEntry, Verdict};
use crate::policy::findings::Finding;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Default)]
pub struct FileReport {
    pub input: String,
    pub format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_sha256: Option<String>,
    pub tensor_count: usize,
    pub total_bytes: u64,
    pub verdict: Option<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub findings: Vec<Finding>,
    pub warnings: Vec<String>,
    pub tensors: Vec<TensorEntry>,
    /// The pickled root's shape, when it agrees with the tensor table (see `Layout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<crate::tensors::layout::Layout>,
    /// Configuration and tokenizer files a folder conversion copied beside the weights.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copied: Vec<String>,
    /// The isolation layers the parsing ran under (absent with `--sandbox none`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<crate::jail::Layers>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    #[serde(flatten)]
    pub summary: FileReport,
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileReport>,
}

impl Report {
    pub fn new(summary: FileReport, exit_code: i32, files: Vec<FileReport>) -> Self {
        Report {
            tool: "modelguard",
            version: env!("CARGO_PKG_VERSION"),
            summary,
            exit_code,
            files,
        }
    }

    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        if path.as_os_str() == "-" {
            let mut out = std::io::stdout().lock();
            out.write_all(json.as_bytes())?;
            out.write_all(b"\n")
        } else {
            std::fs::write(path, json + "\n")
        }
    }
}

/// sha256 of the file the host opened (the very bytes the jail parses, not whatever the path
/// names by now), read with positioned reads so that the worker sharing the descriptor keeps
/// its file offset.
pub fn sha256_open_file(f: &std::fs::File) -> std::io::Result<String> {
    use std::os::unix::fs::FileExt;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = f.read_at(&mut buf, offset)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(hex(&h.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
