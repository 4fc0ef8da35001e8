//! Zip containers: torch.save archives (any root folder), TorchScript archives and `.npz`.
//! Members are found the way torch's reader finds them (`zip::ZipArchive::find_record`), every
//! pickle-bearing member is scanned (duplicates too), and container differentials are findings.

pub mod torchscript;

use super::legacy;
use super::npy;
use super::zip::{ContainerIssueKind, ZipArchive};
use super::{collect_tensors, Analysis, Format, Options};
use crate::error::{Error, Location, Result};
use crate::pickle::value::{Graph, Node, NodeId};
use crate::pickle::{Context, Input, Machine};
use crate::policy::findings::{Finding, Findings, Rule, Severity};
use crate::tensors::gather::{SeekReader, SliceReader};
use crate::tensors::naming::ScriptClasses;
use crate::tensors::resolve::StorageResolver;
use crate::tensors::spec::{DataSource, Storage};
use crate::tensors::torch_dtype::TorchDtype;
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read, Seek};
use std::sync::Arc;

/// Small records (pickles, code, metadata) are read whole; they are never this large in practice.
const MAX_SMALL_RECORD: u64 = 64 << 20;
/// Total bytes the CRC check of small records may inflate, so that many members pointing at
/// one compressed blob cannot multiply the work.
const CRC_BUDGET: u64 = 256 << 20;
/// Pickle-bearing members scanned for findings besides data.pkl.
const MAX_SCANNED_MEMBERS: usize = 1024;

pub fn analyze_zip<R: Read + Seek>(
    r: &mut R,
    len: u64,
    opts: &Options,
    a: &mut Analysis,
) -> Result<()> {
    let all_npy = |zip: &ZipArchive| {
        zip.entries
            .iter()
            .all(|e| e.is_directory() || e.name.ends_with(".npy"))
    };
    let mut zip = match ZipArchive::open(r, len, &opts.limits) {
        Ok(zip) => zip,
        Err(torch_refuses) => {
            // torch cannot open it; numpy.load (CPython's zipfile) may: a file starting with
            // `PK\x05\x06`, bytes before the archive, end records only zipfile accepts.
            return match ZipArchive::open_cpython(r, len, &opts.limits) {
                Ok(py) if all_npy(&py) => {
                    a.format = Format::Npz;
                    analyze_npz(&py, r, opts, a)
                }
                _ => Err(torch_refuses),
            };
        }
    };
    let root = zip.root().unwrap_or_default().to_string();
    check_small_crcs(&mut zip, r, &root)?;
    let data_pkl = zip.find_record("data.pkl");
    if data_pkl.is_none() && !zip.entries.is_empty() && all_npy(&zip) {
        a.format = Format::Npz;
        // What torch's reader would see is reported; the arrays are numpy's, read by
        // CPython's zipfile rules (which can list other members, decode names differently or
        // refuse the archive). npz members sit at the top level: no torch root folder.
        zip.issues
            .retain(|i| i.kind != ContainerIssueKind::MixedRoots);
        report_issues(&zip, &mut a.findings);
        let py = ZipArchive::open_cpython(r, len, &opts.limits)?;
        return analyze_npz(&py, r, opts, a);
    }
    report_issues(&zip, &mut a.findings);
    let (Some(data_pkl), Some(_)) = (data_pkl, zip.root()) else {
        // Not a torch checkpoint: a zip of other files (a Keras or TorchServe archive, a bundle
        // with a pickle inside), read member by member.
        scan_pickle_members(&zip, r, opts, a, None)?;
        return super::archive::zip_members(&zip, r, opts, a);
    };
    // torch.load asks `_is_torchscript_zip` first: "constants.pkl" in `get_all_records()`, an
    // exact comparison over the whole record list, which throws (and torch.load with it) when an
    // entry is outside the root folder.
    let script = zip.is_torchscript()?;
    a.format = if script {
        Format::TorchScript
    } else {
        Format::TorchZip
    };
    // Every other pickle member (duplicates of data.pkl included) is scanned for findings only.
    scan_pickle_members(&zip, r, opts, a, Some(data_pkl))?;
    check_version(&zip, r)?;
    if script {
        // torch.jit.load unpickles constants.pkl (`getRecord`, miniz's lookup): one it cannot
        // extract (a directory) leaves it unfilled memory.
        if let Some(i) = zip.find_record("constants.pkl") {
            zip.check_readable(i)?;
        }
    } else {
        check_load_records(&zip, r)?;
    }
    // `_load` byte-swaps by the `byteorder` record; the TorchScript loader (C++) never reads
    // it, so a TorchScript archive is always little-endian (checked against torch.jit.load).
    let big_endian = match zip.find_record("byteorder") {
        _ if script => false,
        None => false,
        Some(i) => match &zip.read_member(r, i, 16)?[..] {
            b"little" => false,
            b"big" => true,
            other => {
                return Err(Error::malformed(format!(
                    "byteorder record is {:?}, not \"little\" or \"big\"",
                    String::from_utf8_lossy(other)
                )))
            }
        },
    };
    let script_classes = if script {
        Some(torchscript_classes(&zip, r, &root, &mut a.findings)?)
    } else {
        None
    };
    let mut graph = Graph::new(&opts.limits);
    let member = zip.entries[data_pkl].name.clone();
    let root_node = {
        let reader = zip.open_member(r, data_pkl)?;
        let mut buf = BufReader::with_capacity(1 << 16, reader);
        let end = zip.entries[data_pkl].uncompressed_size;
        let mut input = Input::new(&mut buf, 0, end);
        let ctx = Context {
            member: Some(member.clone()),
            torchscript: script,
            torch: !script,
            ..Default::default()
        };
        let u = Machine::new(&mut graph, &mut a.findings, &opts.limits, ctx).load(&mut input)?;
        if !input.at_end()? {
            a.findings.push(Finding {
                rule: Rule::TrailingBytes,
                severity: Severity::Medium,
                message: format!("{} bytes after STOP in {member}", end - u.end),
                global: None,
                location: Location {
                    member: Some(member.clone()),
                    offset: Some(u.end),
                    opcode: None,
                },
            });
        }
        u.root
    };
    super::nested::scan(&graph, &mut a.findings, opts, opts.nesting);
    let mut resolver = ZipStorages {
        zip: &zip,
        input: r,
        big_endian,
        script,
        opts,
        cache: HashMap::new(),
        findings: Findings::default(),
    };
    let res = collect_tensors(
        &graph,
        root_node,
        script_classes.as_ref(),
        &mut resolver,
        opts,
        a,
    );
    a.findings.extend(resolver.findings.into_vec());
    res
}

/// CRCs of everything but the storages: torch ignores CRCs, so a mismatch is a finding. Storage
/// records are left out because checking them would read the whole model twice.
fn check_small_crcs<R: Read + Seek>(zip: &mut ZipArchive, r: &mut R, root: &str) -> Result<()> {
    let data_prefix = format!("{root}/data/");
    let mut mismatches = Vec::new();
    let mut budget = CRC_BUDGET;
    for (i, e) in zip.entries.iter().enumerate() {
        if e.is_directory()
            || e.name.starts_with(&data_prefix)
            || e.uncompressed_size > MAX_SMALL_RECORD
            || e.uncompressed_size > budget
        {
            continue;
        }
        budget -= e.uncompressed_size;
        let bytes = match zip.read_member(r, i, MAX_SMALL_RECORD) {
            Ok(b) => b,
            Err(_) => continue, // reported when (if) the member is actually used
        };
        let crc = crc32fast::hash(&bytes);
        if crc != e.crc32 {
            mismatches.push((e.name.clone(), e.crc32, crc));
        }
    }
    for (name, stored, actual) in mismatches {
        zip.issues.push(super::zip::ContainerIssue {
            kind: ContainerIssueKind::CrcMismatch,
            member: Some(name),
            detail: format!(
                "stored CRC-32 {stored:08x}, actual {actual:08x} (torch does not check CRCs)"
            ),
        });
    }
    Ok(())
}

fn report_issues(zip: &ZipArchive, findings: &mut Findings) {
    for issue in &zip.issues {
        let severity = match issue.kind {
            ContainerIssueKind::DuplicateMember
            | ContainerIssueKind::LocalNameMismatch
            | ContainerIssueKind::MixedRoots
            | ContainerIssueKind::SuspiciousPath
            | ContainerIssueKind::CentralDirectoryCountMismatch
            | ContainerIssueKind::DataBeforeFirstHeader => Severity::Medium,
            ContainerIssueKind::CrcMismatch => Severity::Medium,
            _ => Severity::Low,
        };
        findings.push(Finding {
            rule: Rule::ContainerAnomaly,
            severity,
            message: format!("{:?}: {}", issue.kind, issue.detail),
            global: None,
            location: Location {
                member: issue.member.clone(),
                ..Default::default()
            },
        });
    }
}

/// `PyTorchStreamReader::init` (torch.load and torch.jit.load): the version comes from
/// `.data/version` when that record exists, else from `version`, which must exist
/// (`TORCH_CHECK(hasRecord("version"))`). The text goes through `std::stoull` (leading C
/// whitespace, an optional sign, digits, anything after them ignored) and must be 1 to
/// `kMaxSupportedFileFormatVersion` (10 in torch 2.15). Text `stoull` reads differently from
/// this (a minus sign, no digits, an overflow) is refused, as torch refuses it.
fn check_version<R: Read + Seek>(zip: &ZipArchive, r: &mut R) -> Result<()> {
    let idx = zip
        .find_record(".data/version")
        .or_else(|| zip.find_record("version"))
        .ok_or_else(|| {
            Error::malformed(
                "archive has no `version` record: torch's reader requires one (hasRecord(\"version\"))",
            )
        })?;
    let raw = zip.read_member(r, idx, 64)?;
    let text = raw
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .map_or(&raw[..0], |p| &raw[p..]);
    let text = text.strip_prefix(b"+").unwrap_or(text);
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    let version = std::str::from_utf8(&text[..digits])
        .ok()
        .and_then(|d| d.parse::<u64>().ok());
    match version {
        Some(1..=10) => Ok(()),
        _ => Err(Error::malformed(format!(
            "unsupported archive version {:?} (torch reads 1 to 10)",
            String::from_utf8_lossy(&raw)
        ))),
    }
}

/// Records `_load` (torch.load, not the TorchScript loader) reads besides the pickle and the
/// storages, where a bad value makes it raise:
///
/// - `.storage_alignment` goes through `int(bytes)`: ASCII digits with optional ASCII
///   whitespace around them are accepted here (what else `int` takes, a sign or `_`, is
///   refused);
/// - `.data/serialization_id` is handed back to Python at the end of `_load`
///   (`zip_file.serialization_id()`) as a `str`, decoded as strict UTF-8: a
///   `UnicodeDecodeError` otherwise. The reader extracted it at init.
fn check_load_records<R: Read + Seek>(zip: &ZipArchive, r: &mut R) -> Result<()> {
    if let Some(i) = zip.find_record(".storage_alignment") {
        let raw = zip.read_member(r, i, 64)?;
        let t = raw.trim_ascii();
        if t.is_empty() || !t.iter().all(u8::is_ascii_digit) {
            return Err(Error::malformed(format!(
                "`.storage_alignment` is {:?}, which torch.load passes to int()",
                String::from_utf8_lossy(&raw)
            )));
        }
    }
    if let Some(i) = zip.find_record(".data/serialization_id") {
        let raw = zip.read_member(r, i, MAX_SMALL_RECORD)?;
        if std::str::from_utf8(&raw).is_err() {
            return Err(Error::malformed(
                "`.data/serialization_id` is not UTF-8: torch.load raises UnicodeDecodeError \
                 when it reads it back",
            ));
        }
    }
    Ok(())
}

/// Run every pickle member except `skip` through the machine, for findings only: what a
/// different zip reader (or a duplicate-resolving quirk) would load instead.
fn scan_pickle_members<R: Read + Seek>(
    zip: &ZipArchive,
    r: &mut R,
    opts: &Options,
    a: &mut Analysis,
    skip: Option<usize>,
) -> Result<()> {
    let mut scanned = std::collections::HashSet::new();
    if let Some(s) = skip {
        scanned.insert(zip.entries[s].data_offset);
    }
    for (i, e) in zip.entries.iter().enumerate() {
        if Some(i) == skip || e.is_directory() || e.uncompressed_size == 0 {
            continue;
        }
        // Members sharing their bytes are the same pickle: scan it once.
        if !scanned.insert(e.data_offset) {
            continue;
        }
        if scanned.len() > MAX_SCANNED_MEMBERS {
            // Fail closed: what we did not read could be what another loader runs.
            a.findings.push(Finding {
                rule: Rule::ContainerAnomaly,
                severity: Severity::High,
                message: format!(
                    "more than {MAX_SCANNED_MEMBERS} members to scan for pickles; the rest were not read"
                ),
                global: None,
                location: Location::default(),
            });
            break;
        }
        let pickle_named = e.name.ends_with(".pkl") && !e.name.ends_with(".debug_pkl");
        let head = {
            let mut m = match zip.open_member(r, i) {
                Ok(m) => m,
                Err(_) => continue,
            };
            let mut b = [0u8; 2];
            m.read_exact(&mut b).map(|_| b).ok()
        };
        let looks_pickle = matches!(head, Some([0x80, p]) if p <= 5);
        if !(pickle_named || looks_pickle) {
            continue;
        }
        let reader = zip.open_member(r, i)?;
        let mut buf = BufReader::new(reader);
        let mut input = Input::new(&mut buf, 0, e.uncompressed_size);
        let mut graph = Graph::new(&opts.limits);
        let ctx = Context {
            member: Some(e.name.clone()),
            joblib: false,
            nesting: 0,
            ..Default::default()
        };
        if let Err(err) =
            Machine::new(&mut graph, &mut a.findings, &opts.limits, ctx).load(&mut input)
        {
            a.warnings
                .push(format!("member {} is not a readable pickle: {err}", e.name));
        }
        super::nested::scan(&graph, &mut a.findings, opts, opts.nesting);
    }
    Ok(())
}

/// `code/**.py`: the `__parameters__`/`__buffers__` of each TorchScript class, read as text,
/// and what the code would do if torch.jit.load compiled and ran it (never done here).
fn torchscript_classes<R: Read + Seek>(
    zip: &ZipArchive,
    r: &mut R,
    root: &str,
    findings: &mut Findings,
) -> Result<ScriptClasses> {
    let prefix = format!("{root}/code/");
    let mut out = ScriptClasses::default();
    let mut code = torchscript::TorchScript::new();
    let mut files = 0;
    for (i, e) in zip.entries.iter().enumerate() {
        let Some(rel) = e.name.strip_prefix(&prefix) else {
            continue;
        };
        let Some(module_path) = rel.strip_suffix(".py") else {
            continue;
        };
        files += 1;
        let text = zip.read_member(r, i, MAX_SMALL_RECORD)?;
        let module = module_path.replace('/', ".");
        code.add_file(&e.name, &module, &text);
        let text = String::from_utf8_lossy(&text);
        parse_script_source(&text, &module, &mut out);
    }
    if files > 0 {
        findings.push(Finding {
            rule: Rule::TorchScriptCode,
            severity: Severity::Info,
            message: format!("TorchScript archive with {files} source files under code/ (run by torch.jit.load, never by modelguard)"),
            global: None,
            location: Location {
                member: Some(prefix),
                ..Default::default()
            },
        });
    }
    code.finish(findings);
    Ok(out)
}

fn parse_script_source(text: &str, module: &str, out: &mut ScriptClasses) {
    let mut class: Option<String> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("class ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let qual = format!("{module}.{name}");
            out.classes.entry(qual.clone()).or_default();
            class = Some(qual);
            continue;
        }
        let t = line.trim_start();
        if !(t.starts_with("__parameters__") || t.starts_with("__buffers__")) {
            continue;
        }
        let Some(c) = &class else { continue };
        // The list may span lines: collect until the closing bracket.
        let mut list = t.to_string();
        while !list.contains(']') {
            match lines.next() {
                Some(more) => list.push_str(more),
                None => break,
            }
        }
        let names = list
            .split(['"', '\''])
            .skip(1)
            .step_by(2)
            .map(str::to_string);
        out.classes.entry(c.clone()).or_default().extend(names);
    }
}

struct ZipStorages<'z, 'r, 'o, R: Read + Seek> {
    zip: &'z ZipArchive,
    input: &'r mut R,
    big_endian: bool,
    script: bool,
    opts: &'o Options,
    cache: HashMap<(bool, String), Storage>,
    findings: Findings,
}

impl<R: Read + Seek> StorageResolver for ZipStorages<'_, '_, '_, R> {
    fn storage(&mut self, g: &Graph, node: NodeId) -> Result<Storage> {
        let pid = match g.get(node) {
            Node::PersistentId(p) => *p,
            Node::LoadFromBytes(b) => {
                return legacy::load_from_bytes(
                    g,
                    *b,
                    &mut self.findings,
                    self.opts,
                    self.opts.nesting,
                )
            }
            _ => return Err(Error::malformed("tensor storage is not a storage")),
        };
        let shape = if self.script {
            legacy::PidShape::Script
        } else {
            legacy::PidShape::Zip
        };
        let p = legacy::parse_pid(g, pid, shape)?;
        p.check_location()?;
        if p.key_is_bytes {
            // `load_tensor` formats the key into the record name: bytes give `data/b'0'`.
            return Err(Error::malformed(format!(
                "storage key {:?} is pickled as bytes: torch looks for the record `data/b'{}'` \
                 (the bytes' repr), not `data/{}`",
                p.key, p.key, p.key
            )));
        }
        if p.view.is_some() {
            return Err(Error::malformed(
                "storage views are not part of the zip format",
            ));
        }
        let valid_key = if self.script {
            !p.key.is_empty()
                && !p.key.contains("..")
                && p.key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/'))
        } else {
            !p.key.is_empty() && p.key.chars().all(|c| c.is_ascii_digit())
        };
        if !valid_key {
            return Err(Error::malformed(format!(
                "storage key {:?} is not a valid record name",
                p.key
            )));
        }
        let itemsize = p.dtype.map_or(1, TorchDtype::itemsize);
        let nbytes = p
            .numel
            .checked_mul(itemsize)
            .ok_or_else(|| Error::malformed(format!("storage {} size overflows", p.key)))?;
        // `persistent_load` caches by the key object itself: an int key and its digits as a
        // str are two entries (each loads the record), a repeated key reuses the first load.
        let cache_key = (p.key_is_str, p.key.clone());
        if let Some(s) = self.cache.get(&cache_key) {
            if s.source.len() != nbytes {
                // torch would load the record again for the new size: not modelled.
                return Err(Error::malformed(format!(
                    "storage {} is used with two different sizes",
                    p.key
                )));
            }
            // torch re-wraps the bytes it already byte-swapped (once, by the first dtype).
            let unit = |d: Option<TorchDtype>| d.map_or(1, TorchDtype::swap_unit);
            if s.big_endian && unit(s.dtype) != unit(p.dtype) {
                return Err(Error::unsupported(format!(
                    "big-endian storage {} is used as {} and as {}: torch byte-swaps the record \
                     once, by its first dtype, and re-wraps those bytes (not modelled)",
                    p.key,
                    s.dtype.map_or("untyped", TorchDtype::name),
                    p.dtype.map_or("untyped", TorchDtype::name)
                )));
            }
            let mut s = s.clone();
            s.dtype = p.dtype;
            return Ok(s);
        }
        let record = if p.key.contains('/') {
            p.key.clone()
        } else {
            format!("data/{}", p.key)
        };
        let idx = self.zip.find_record(&record).ok_or_else(|| {
            Error::malformed(format!(
                "storage record `{record}` is missing from the archive"
            ))
        })?;
        // miniz's extract leaves a directory's buffer unfilled: refuse what torch cannot read.
        let e = self.zip.check_readable(idx)?;
        if e.uncompressed_size != nbytes {
            return Err(Error::malformed(format!(
                "record `{record}` has {} bytes but its storage needs {nbytes}",
                e.uncompressed_size
            )));
        }
        let source = if e.method == 0 {
            DataSource::File {
                offset: e.data_offset,
                len: nbytes,
            }
        } else {
            let bytes =
                self.zip
                    .read_member(self.input, idx, self.opts.limits.max_inflated_member)?;
            DataSource::Inline(Arc::from(bytes))
        };
        let s = Storage {
            key: p.key.clone(),
            dtype: p.dtype,
            source,
            big_endian: self.big_endian,
        };
        self.cache.insert(cache_key, s.clone());
        Ok(s)
    }
}

/// `numpy.load(path)` takes any file starting with `PK\x03\x04` for an `.npz` and reads it with
/// Python's `zipfile`: every member whose bytes start with the npy magic is an array to it, under
/// its own name as key (`NpzFile.__getitem__`, `numpy/lib/npyio.py`), and an object array is
/// unpickled when its key is read with `allow_pickle=True`. A checkpoint or any other zip can
/// carry such members that torch never reads. Their pickles are read for findings only (their
/// arrays are not weights of the checkpoint); one that cannot be checked is high.
pub fn numpy_reading<R: Read + Seek>(r: &mut R, len: u64, opts: &Options, a: &mut Analysis) {
    let Ok(mut zip) = ZipArchive::open_cpython(r, len, &opts.limits) else {
        return; // numpy.load cannot open it either
    };
    // Pythons without the "Overlapped entries" check read such members: scan them too.
    zip.allow_overlaps();
    // Directory entries too: zipfile reads their bytes like any member's.
    for (i, e) in zip.entries.iter().enumerate() {
        let unchecked = |why: String| Finding {
            rule: Rule::ContainerAnomaly,
            severity: Severity::High,
            message: format!(
                "numpy.load(path) reads member `{}` as an array, and modelguard could not check \
                 it: {why}",
                e.name
            ),
            global: None,
            location: Location {
                member: Some(e.name.clone()),
                ..Location::default()
            },
        };
        if e.uncompressed_size < 6 {
            continue; // too short for the magic numpy compares
        }
        if zip.check_readable(i).is_err() {
            continue; // `ZipFile.open` raises for this key: nothing of it runs
        }
        let mut magic = [0u8; 6];
        let head = zip
            .open_member(r, i)
            .and_then(|mut m| m.read_exact(&mut magic).map_err(super::zip::into_error));
        match head {
            Ok(()) if &magic == b"\x93NUMPY" => {}
            Ok(()) => continue,
            Err(err) => {
                a.findings.push(unchecked(err.to_string()));
                continue;
            }
        }
        let checked = (|| -> Result<()> {
            let bytes = zip.read_member(r, i, opts.limits.max_inflated_member)?;
            let header = npy::parse_header(&mut SliceReader(&bytes), 0, bytes.len() as u64)?;
            if !header.is_object() {
                return Ok(());
            }
            let mut arrays = Analysis::default();
            let mut cursor = std::io::Cursor::new(&bytes[..]);
            let read = npy::object_array(
                &mut cursor,
                header.data_offset,
                bytes.len() as u64,
                opts,
                &mut arrays,
                Some(&e.name),
            );
            a.findings.extend(arrays.findings.into_vec());
            read
        })();
        if let Err(err) = checked {
            a.findings.push(unchecked(err.to_string()));
        }
    }
}

/// `numpy.load` of an npz: `NpzFile` over CPython's `zipfile` (`numpy/lib/_npyio_impl.py`).
/// Its keys are `namelist()` with `.npy` removed; `_files` maps each key to a member name
/// (stripped names first, last one winning, then every full name to itself, so a full name
/// beats a stripped one); `__getitem__` opens that name through `NameToInfo` (the last entry of
/// the name). A member starting with the npy magic is an array; any other comes back as bytes,
/// which is not a tensor. `{k: npz[k] for k in npz.files}` reads every key, and zipfile checks
/// the CRC-32 when a read reaches the member's end: a mismatch is refused.
fn analyze_npz<R: Read + Seek>(
    py: &ZipArchive,
    r: &mut R,
    opts: &Options,
    a: &mut Analysis,
) -> Result<()> {
    report_issues(py, &mut a.findings);
    let names: Vec<&str> = py.entries.iter().map(|e| e.name.as_str()).collect();
    let key_of = |n: &'_ str| n.strip_suffix(".npy").unwrap_or(n).to_string();
    let mut member_of: HashMap<String, &str> = HashMap::new();
    for n in &names {
        member_of.insert(key_of(n), n);
    }
    for n in &names {
        member_of.insert(n.to_string(), n);
    }
    // `NameToInfo`: the last entry of each name.
    let name_to_info: HashMap<&str, usize> =
        names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut keys_done = HashSet::new();
    for n in &names {
        let key = key_of(n);
        if !keys_done.insert(key.clone()) {
            continue;
        }
        let i = name_to_info[member_of[&key]];
        let e = &py.entries[i];
        // Open first, as `ZipFile.open` does: its errors are numpy's.
        py.check_readable(i)?;
        if e.uncompressed_size == 0 && e.name.ends_with('/') {
            continue; // a directory entry: numpy returns b""
        }
        let result = if e.method == 0 {
            if py.crc_of(r, i)? != e.crc32 {
                return Err(bad_crc(&e.name));
            }
            if !starts_with_npy_magic(r, e.data_offset, e.uncompressed_size)? {
                a.warnings.push(format!(
                    "npz member `{}` is not an npy array (numpy returns its bytes); not converted",
                    e.name
                ));
                continue;
            }
            let header =
                npy::parse_header(&mut SeekReader(&mut *r), e.data_offset, e.uncompressed_size)?;
            if header.is_object() {
                npy::object_array(
                    r,
                    e.data_offset + header.data_offset,
                    e.data_offset + e.uncompressed_size,
                    opts,
                    a,
                    Some(&key),
                )?;
                continue;
            } else {
                npy::tensor(
                    &header,
                    &key,
                    DataSource::File {
                        offset: e.data_offset + header.data_offset,
                        len: e.uncompressed_size - header.data_offset,
                    },
                    opts,
                )
            }
        } else {
            let bytes: Arc<[u8]> =
                Arc::from(py.read_member(r, i, opts.limits.max_inflated_member)?);
            if crc32fast::hash(&bytes) != e.crc32 {
                return Err(bad_crc(&e.name));
            }
            if !bytes.starts_with(b"\x93NUMPY") {
                a.warnings.push(format!(
                    "npz member `{}` is not an npy array (numpy returns its bytes); not converted",
                    e.name
                ));
                continue;
            }
            let header = npy::parse_header(&mut SliceReader(&bytes), 0, bytes.len() as u64)?;
            if header.is_object() {
                let mut cursor = std::io::Cursor::new(&bytes[..]);
                npy::object_array(
                    &mut cursor,
                    header.data_offset,
                    bytes.len() as u64,
                    opts,
                    a,
                    Some(&key),
                )?;
                continue;
            } else {
                let data: Arc<[u8]> = Arc::from(&bytes[header.data_offset as usize..]);
                npy::tensor(&header, &key, DataSource::Inline(data), opts)
            }
        };
        match result {
            Ok(spec) => a.tensors.push((key, spec)),
            Err(Error::Unsupported { msg }) if opts.skip_unsupported => {
                a.warnings.push(format!("skipped: {msg}"))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn bad_crc(member: &str) -> Error {
    Error::malformed(format!(
        "npz member `{member}`: stored CRC-32 does not match its data (numpy's zip reader, Python \
         zipfile, raises \"Bad CRC-32\")"
    ))
}

fn starts_with_npy_magic<R: Read + Seek>(r: &mut R, offset: u64, len: u64) -> Result<bool> {
    if len < 6 {
        return Ok(false);
    }
    let mut magic = [0u8; 6];
    r.seek(std::io::SeekFrom::Start(offset))?;
    r.read_exact(&mut magic)?;
    Ok(&magic == b"\x93NUMPY")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchscript_external_references_are_reported() {
        let mut f = Findings::default();
        let code = "import __torch__.fixture\nimport os.path\nfrom subprocess import run\ndef f(y):\n  x = ops.mylib.fuse(y)\n  z = ops.aten.add(x, y)\n  w = torch.ops.prim.NumToTensor(1)\n  v = myops.thing.x\n";
        let mut ts = torchscript::TorchScript::new();
        ts.add_file("m/code/__torch__/a.py", "__torch__.a", code.as_bytes());
        ts.finish(&mut f);
        let mut globals: Vec<String> = f.into_vec().into_iter().filter_map(|x| x.global).collect();
        globals.sort();
        assert_eq!(globals, ["ops.mylib", "os.path", "subprocess"]);
    }
}
