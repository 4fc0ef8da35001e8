//! Container formats, sniffed by content (never by file name), each producing the same
//! [`Analysis`]: tensors ready to write, findings, warnings, or the error that stopped it.

pub mod archive;
pub mod compressed;
pub mod legacy;
pub mod nested;
pub mod npy;
pub mod pickle_file;
pub mod pystr;
pub mod registry;
pub mod sevenz;
pub mod tar;
pub mod tar_header;
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
    /// Archives read member by member for `scan` (not checkpoints: `convert` refuses them).
    Zip,
    Tar,
    Gzip,
    SevenZip,
    /// A format that can carry code but that modelguard does not read (see [`registry`]).
    Unread(registry::Kind),
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
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::Gzip => "gzip",
            Format::SevenZip => "7z",
            Format::Unread(kind) => kind.id(),
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
    /// What was recognised but not read although it can carry code (the file itself, or
    /// archive members).
    pub unscanned: Vec<registry::Unscanned>,
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
            unscanned: Vec::new(),
        }
    }
}

/// Read a model file from any seekable source of length `len`.
pub fn analyze<R: Read + Seek>(r: &mut R, len: u64, opts: &Options) -> Analysis {
    // A fresh decompression budget per file; archive members share their file's.
    let _file = archive::Nest::enter(&opts.limits);
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
                let read = torch_zip::analyze_zip(r, len, opts, &mut a);
                // An npz read to the end was read by numpy's own rules (`analyze_npz`); any
                // other zip, or an npz refused half-way, also gets numpy's reading of its npy
                // members for findings.
                if a.format != Format::Npz || read.is_err() {
                    torch_zip::numpy_reading(r, len, opts, &mut a);
                }
                read
            }
            Format::TorchTar => {
                let read = tar::analyze(r, len, opts, &mut a);
                tar::pickle_reading(r, len, opts, &mut a);
                read
            }
            Format::SevenZip => sevenz::analyze(r, len, opts, &mut a),
            Format::Unread(kind) => {
                let mut u = registry::Unscanned::of(kind, None);
                if kind == registry::Kind::Hdf5 {
                    if let Some(at) = registry::hdf5_superblock(r, len) {
                        u.reason = format!("HDF5 superblock at offset {at}: {}", u.reason);
                    }
                }
                a.unscanned.push(u);
                Ok(())
            }
            Format::Zip | Format::Tar | Format::Gzip => {
                unreachable!("archives are found while reading zips, tars and gzip files")
            }
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
    // torch.load(path) tries tarfile on anything that is not a zip: a tar header in the first
    // block makes the file a tar to it, whatever else it is to its own loader.
    if a.format != Format::TorchTar && tar_first_block(r) == tar_header::FirstBlock::Header {
        tar::tar_reading(r, len, opts, &mut a);
    }
    if let Err(e) = result {
        a.tensors.clear();
        a.error = Some(e);
    }
    // h5py finds an HDF5 superblock behind a user block whatever the first bytes are.
    if a.format != Format::Unread(registry::Kind::Hdf5) {
        if let Some(at) = registry::hdf5_superblock(r, len) {
            let mut u = registry::Unscanned::of(registry::Kind::Hdf5, None);
            u.reason = format!(
                "also an HDF5 file (superblock at offset {at}): {}",
                u.reason
            );
            a.unscanned.push(u);
        }
    }
    a
}

/// Why `convert` refuses a format it can read but that is not a checkpoint, or one it does not
/// read at all.
pub fn not_convertible(format: Format) -> Option<String> {
    let archive = "`modelguard scan` reads the pickles inside it";
    Some(match format {
        Format::SevenZip => {
            format!("a 7z archive is not a checkpoint: torch.load cannot open it; {archive}")
        }
        Format::Zip => {
            format!("a zip archive without `<root>/data.pkl` is not a torch checkpoint; {archive}")
        }
        Format::Tar | Format::Gzip => format!(
            "a tar or gzip archive without `storages`, `tensors` and `pickle` members is not a \
             torch checkpoint; {archive}"
        ),
        Format::Unread(kind) => {
            let e = registry::entry(kind);
            format!(
                "{} files are not read by modelguard and can carry code ({}); nothing was \
                 converted",
                e.name, e.carries
            )
        }
        _ => return None,
    })
}

/// Whether a pickle guess failed the way text does: the first byte is a protocol-0 opcode
/// letter, not PROTO, and the stream broke before anything ran (CPython rejects it the same way).
pub fn is_text_not_pickle(a: &Analysis, first: Option<u8>) -> bool {
    a.format == Format::Pickle
        && a.findings.is_empty()
        && a.error.as_ref().is_some_and(broke_before_a_call)
        && first != Some(0x80)
}

/// Whether a malformed stream broke before the loader called anything. One that broke at a
/// call opcode (INST, OBJ, REDUCE, NEWOBJ, BUILD) broke inside the loader's call of a
/// registered callable with arguments it rejects: the callable was invoked, so something ran.
pub fn broke_before_a_call(e: &Error) -> bool {
    match e {
        Error::Malformed { loc, .. } => !loc.opcode.as_deref().is_some_and(|op| {
            matches!(
                op,
                "INST" | "OBJ" | "REDUCE" | "NEWOBJ" | "NEWOBJ_EX" | "BUILD"
            )
        }),
        _ => false,
    }
}

/// The first byte of a pickle stream: PROTO, or a protocol 0/1 opcode a stream can begin with.
pub fn pickle_start(b: u8) -> bool {
    matches!(
        b,
        0x80 | b'('
            | b'c'
            | b'}'
            | b']'
            | b')'
            | b'N'
            | b'I'
            | b'S'
            | b'V'
            | b'X'
            | b'K'
            | b'J'
            | b'L'
            | b'F'
            | b'G'
            | b'U'
            | b'T'
            | b'i'
            | b'l'
            | b'd'
            | b't'
    )
}

/// The first block of the file as `tarfile` classifies it (never a tar when it is a zip: torch
/// tests for a zip first).
fn tar_first_block<R: Read + Seek>(r: &mut R) -> tar_header::FirstBlock {
    let mut head = Vec::with_capacity(tar_header::BLOCK);
    let read = r.seek(SeekFrom::Start(0)).and_then(|_| {
        (&mut *r)
            .take(tar_header::BLOCK as u64)
            .read_to_end(&mut head)
    });
    if read.is_err() || head.starts_with(b"PK\x03\x04") {
        return tar_header::FirstBlock::NotTar;
    }
    tar_header::first_block(&head)
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
    // numpy.load also takes `PK\x05\x06` (an empty zip's first bytes) for a zip; the real end
    // record can still be at the end, with members before it. torch.load does not (its
    // `_is_zipfile` wants `PK\x03\x04`, and the bytes are no tar and no pickle it can load).
    if head.starts_with(b"PK\x05\x06") {
        return Ok(Format::Npz);
    }
    if head.starts_with(b"\x93NUMPY") {
        return Ok(Format::Npy);
    }
    // torch.load(path) tries tarfile before the pickle: a valid first header is enough.
    if tar_header::first_block(&head) == tar_header::FirstBlock::Header {
        return Ok(Format::TorchTar);
    }
    if head.starts_with(sevenz::MAGIC) {
        return Ok(Format::SevenZip);
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
    // Before the pickle guess: `GGUF` and zstd's first byte are protocol-0 opcode letters.
    if let Some(kind) = registry::detect_head(&head) {
        return Ok(Format::Unread(kind));
    }
    match head.first() {
        Some(&b) if pickle_start(b) => Ok(Format::Pickle),
        _ => Ok(registry::detect_late(r, len).map_or(Format::Unknown, Format::Unread)),
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
