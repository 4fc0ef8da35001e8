//! Container formats, sniffed by content (never by file name), each producing the same
//! [`Analysis`]: tensors ready to write, findings, warnings, or the error that stopped it.

pub mod compressed;
pub mod legacy;
pub mod nested;
pub mod npy;
pub mod pickle_file;
pub mod pystr;
pub mod tar;
pub mod torch_zip;
pub mod zip;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::pickle::value::{Graph, NodeId};
use crate::policy::findings::Findings;
use crate::tensors::layout::Layout;
use crate::tensors::naming::{NameWalk, ScriptClasses};
use crate::tensors::resolve::{resolve, StorageResolver};
use crate::tensors::spec::TensorSpec;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    TorchZip,
    TorchScript,
    TorchLegacy,
    TorchTar,
    Pickle,
    Joblib,
    Npy,
    Npz,
    Safetensors,
    Unknown,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::TorchZip => "torch-zip",
            Format::TorchScript => "torchscript",
            Format::TorchLegacy => "torch-legacy",
            Format::TorchTar => "torch-tar",
            Format::Pickle => "pickle",
            Format::Joblib => "joblib",
            Format::Npy => "npy",
            Format::Npz => "npz",
            Format::Safetensors => "safetensors",
            Format::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Options {
    pub limits: Limits,
    pub skip_unsupported: bool,
    /// How deep inside other files this one is (`torch.storage._load_from_bytes` payloads):
    /// the engine sets it for nested analyses; a caller leaves it 0.
    #[serde(skip)]
    pub nesting: usize,
}

/// What reading a file produced. `error` is set when the file could not be read to the end;
/// findings recorded before the failure are kept (what a loader ran before failing still ran).
#[derive(Debug)]
pub struct Analysis {
    pub format: Format,
    pub tensors: Vec<(String, TensorSpec)>,
    pub findings: Findings,
    pub warnings: Vec<String>,
    pub error: Option<Error>,
    /// The pickled root's shape (pickle-based formats only).
    pub layout: Option<Layout>,
}

impl Default for Analysis {
    /// Nothing found yet: the state an analysis starts from.
    fn default() -> Self {
        Analysis {
            format: Format::Unknown,
            tensors: Vec::new(),
            findings: Findings::default(),
            warnings: Vec::new(),
            error: None,
            layout: None,
        }
    }
}

/// Read a model file from any seekable source of length `len`.
pub fn analyze<R: Read + Seek>(r: &mut R, len: u64, opts: &Options) -> Analysis {
    let mut a = Analysis::default();
    let result = (|| -> Result<()> {
        let mut head = [0u8; 4];
        r.seek(SeekFrom::Start(0))?;
        let n = r.read(&mut head)?;
        if let Some(kind) = compressed::detect(&head[..n]) {
            a.format = Format::Joblib;
            return compressed::analyze(r, len, kind, opts, &mut a);
        }
        let format = sniff(r, len)?;
        a.format = format;
        match format {
            Format::TorchZip | Format::TorchScript | Format::Npz => {
                torch_zip::analyze_zip(r, len, opts, &mut a)
            }
            Format::TorchTar => tar::analyze(r, len, opts, &mut a),
            Format::Npy => npy::analyze(r, len, opts, &mut a),
            Format::Pickle | Format::Joblib | Format::TorchLegacy => {
                pickle_file::analyze(r, len, opts, &mut a)
            }
            Format::Safetensors => Err(Error::UnknownFormat(
                "the input is already a safetensors file; use `modelguard verify` to check it"
                    .into(),
            )),
            Format::Unknown => Err(Error::UnknownFormat(
                "not a PyTorch, numpy or joblib file (no zip, pickle, tar or npy signature)".into(),
            )),
        }
    })();
    if let Err(e) = result {
        a.tensors.clear();
        a.error = Some(e);
    }
    a
}

/// Decide the format from the first bytes (formats.md §9). Legacy torch vs plain pickle is
/// settled later by unpickling the first pickle; here both are `Pickle`.
pub fn sniff<R: Read + Seek>(r: &mut R, len: u64) -> Result<Format> {
    let mut head = vec![0u8; len.min(512) as usize];
    r.seek(SeekFrom::Start(0))?;
    r.read_exact(&mut head)?;
    if head.starts_with(b"PK\x03\x04") {
        return Ok(Format::TorchZip);
    }
    if head.starts_with(b"\x93NUMPY") {
        return Ok(Format::Npy);
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Ok(Format::TorchTar);
    }
    if head.len() >= 9 {
        let n = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let rest = &head[8..];
        let first = rest.iter().find(|b| !b.is_ascii_whitespace());
        if (2..=100_000_000).contains(&n)
            && n.checked_add(8).is_some_and(|e| e <= len)
            && first == Some(&b'{')
        {
            return Ok(Format::Safetensors);
        }
    }
    match head.first() {
        Some(0x80) => Ok(Format::Pickle),
        // Protocol 0/1 pickles start with an opcode byte; accept the ones a stream can begin with.
        Some(
            b'(' | b'c' | b'}' | b']' | b')' | b'N' | b'I' | b'S' | b'V' | b'X' | b'K' | b'J'
            | b'L' | b'F' | b'G' | b'U' | b'T' | b'i' | b'l' | b'd' | b't',
        ) => Ok(Format::Pickle),
        _ => {
            for (magic, what) in [
                (&b"BZh"[..], "bzip2"),
                (b"\xfd7zXZ", "xz"),
                (b"\x04\x22\x4d\x18", "lz4"),
                (b"7z\xbc\xaf\x27\x1c", "7z"),
                (b"ZF", "legacy joblib zlib"),
                (b"GGUF", "GGUF"),
                (b"PYTORCH1", "pre-release torch"),
            ] {
                if head.starts_with(magic) {
                    return Err(Error::UnknownFormat(format!(
                        "{what} files are not supported"
                    )));
                }
            }
            Ok(Format::Unknown)
        }
    }
}

/// Name the tensors reachable from `root` and resolve their storages.
pub(crate) fn collect_tensors(
    graph: &Graph,
    root: NodeId,
    script: Option<&ScriptClasses>,
    resolver: &mut dyn StorageResolver,
    opts: &Options,
    a: &mut Analysis,
) -> Result<()> {
    let named = NameWalk::new(graph, script, &opts.limits).tensors(root)?;
    // A file whose tensors come from more than one pickle has no single root to describe.
    a.layout = Some(match a.layout {
        None => Layout::of(graph, root),
        Some(_) => Layout {
            root: "other".into(),
            ..Layout::default()
        },
    });
    if named.len() > opts.limits.max_tensors {
        return Err(Error::limit(
            "max_tensors",
            format!("{} tensors", named.len()),
        ));
    }
    let resolved = resolve(
        graph,
        named,
        resolver,
        opts.skip_unsupported,
        opts.limits.max_rank,
    )?;
    a.tensors.extend(resolved.tensors);
    a.warnings.extend(resolved.warnings);
    Ok(())
}
