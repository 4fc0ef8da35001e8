//! A model's tensors as a validated safetensors table, whatever the model's format: a
//! safetensors file is checked by the host's strict validator; anything else is converted in
//! the jail into a private temporary file first, so the host never parses pickles.

use crate::cli::convert::{convert_file, open_input, Sandbox};
use crate::convert::{ConvertOptions, EXIT_OK};
use crate::output::{validate_header, Strictness};
use crate::policy::findings::Finding;
use crate::tensors::dtype::Dtype;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// One tensor of a table: where its bytes are in `file`.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    /// Absolute byte range in the safetensors file.
    pub begin: u64,
    pub end: u64,
}

pub struct TensorTable {
    /// The input's format as sniffed (in the jail for anything but safetensors).
    pub format: String,
    pub input_sha256: Option<String>,
    /// Findings the jail reported while reading a pickle-based input.
    pub findings: Vec<Finding>,
    /// Sorted by name.
    pub tensors: Vec<Tensor>,
    file: File,
    /// Keeps the jail's temporary output alive as long as the table.
    _tmp: Option<tempfile::TempDir>,
}

impl TensorTable {
    /// Read `len` bytes at `offset` of the safetensors data (bounds were validated).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// Stream a tensor's bytes in chunks.
    pub fn for_each_chunk(&self, t: &Tensor, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
        let mut buf = vec![0u8; (1 << 20).min((t.end - t.begin) as usize).max(1)];
        let mut at = t.begin;
        while at < t.end {
            let n = buf.len().min((t.end - at) as usize);
            self.read_at(&mut buf[..n], at)?;
            f(&buf[..n]);
            at += n as u64;
        }
        Ok(())
    }
}

fn table_of(file: &mut File, len: u64, strictness: Strictness) -> crate::Result<Vec<Tensor>> {
    let header = validate_header(file, len, strictness)?;
    let data_start = 8 + header.header_len;
    let mut tensors: Vec<Tensor> = header
        .tensors
        .into_iter()
        .map(|(name, dtype, shape, (b, e))| Tensor {
            name,
            dtype,
            shape,
            begin: data_start + b,
            end: data_start + e,
        })
        .collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tensors)
}

/// Open `path`'s tensors. Pickle-based inputs are converted in `sandbox` with `opts`
/// (`fail_on: None` converts whatever findings say; the findings are returned).
pub fn open(path: &Path, opts: &ConvertOptions, sandbox: &Sandbox) -> Result<TensorTable, String> {
    let (mut file, len) = open_input(path).map_err(|e| e.to_string())?;
    // A file that passes the strict validator is a safetensors file; it needs no jail because
    // the validator is the same one that checks every output the jail hands back.
    if let Ok(tensors) = table_of(&mut file, len, Strictness::Reference) {
        let input_sha256 =
            Some(crate::cli::report::sha256_open_file(&file).map_err(|e| e.to_string())?);
        return Ok(TensorTable {
            format: "safetensors".into(),
            input_sha256,
            findings: Vec::new(),
            tensors,
            file,
            _tmp: None,
        });
    }
    drop(file);
    let tmp = tempfile::tempdir().map_err(|e| format!("cannot make a private folder: {e}"))?;
    let out = tmp.path().join("tensors.safetensors");
    // The input's hash comes from the descriptor the jail parsed.
    let (report, code) = convert_file(path, &out, opts, sandbox, true);
    if code != EXIT_OK {
        return Err(format!(
            "{}: {}",
            path.display(),
            report
                .error
                .unwrap_or_else(|| "the jail could not read its tensors".into())
        ));
    }
    let (mut file, len) = open_input(&out).map_err(|e| e.to_string())?;
    let tensors = table_of(&mut file, len, Strictness::Canonical).map_err(|e| e.to_string())?;
    Ok(TensorTable {
        format: report.format,
        input_sha256: report.input_sha256,
        findings: report.findings,
        tensors,
        file,
        _tmp: Some(tmp),
    })
}
