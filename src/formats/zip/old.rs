//! Hostile-input-safe ZIP reader that resolves members the way PyTorch's reader does.
//!
//! `torch.load` reads a zip checkpoint through `caffe2/serialize/inline_container.cc`, which uses
//! miniz (`mz_zip_reader_init(ar, size, 0)`, built with `MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS`).
//! This module mirrors miniz's choices so that we read the *same bytes* torch would, and reports
//! every place where another reader (Python `zipfile`, scanners, other Rust crates) could see
//! something different:
//!
//! * End record: the **last** `PK\x05\x06` in the file that has at least 22 bytes after it, searched
//!   backwards in miniz's 4096-byte chunks until ~64 KiB from the end. The comment length is not
//!   checked, so trailing junk is accepted (reported as [`ContainerIssueKind::DataAfterEnd`]).
//! * ZIP64: a locator directly before the end record points (absolute offset) at the ZIP64 end
//!   record; when that record's signature is present its values replace the 32-bit ones
//!   unconditionally. ZIP64 extended-information extra fields (id 0x0001) are read from the
//!   central directory only for the fields whose 32-bit value is 0xFFFFFFFF, in the order
//!   uncompressed size, compressed size, local-header offset.
//! * Exactly `total entries` central headers are read; anything after them inside the directory
//!   is ignored by torch (reported as [`ContainerIssueKind::CentralDirectoryCountMismatch`]).
//! * Sizes and offsets come from the central directory. The payload starts at
//!   `local_header_offset + 30 + local name length + local extra length` (lengths from the local
//!   header, which is where torch's `FB` alignment padding lives).
//! * **Lookup** (`mz_zip_reader_locate_file` with flags 0): miniz heap-sorts the central directory
//!   by ASCII-lower-cased name and binary-searches it, so the lookup is *case-insensitive* and,
//!   among duplicates, returns whichever one the (unstable) heap sort and binary search land on:
//!   the first or the last depending on the other names (checked against torch 2.15 on 24
//!   layouts, see the tests). [`ZipArchive::find`] runs the same algorithm, so it returns the
//!   entry torch reads; every group of names that miniz considers equal is reported as
//!   [`ContainerIssueKind::DuplicateMember`].
//! * Extraction: stored members are read verbatim; deflated ones must inflate to exactly the
//!   central-directory uncompressed size with a complete stream. A member whose name ends in `/`
//!   or whose DOS directory attribute is set is *not extracted* by miniz (torch gets an
//!   uninitialised buffer), so [`ZipArchive::open_member`] refuses such a member when it has data.
//!
//! Everything read from the file is bounds-checked before use; allocations are bounded by
//! [`Limits::max_archive_members`] (entries, and at most 1 KiB of name bytes per allowed member),
//! by the caller's `max` in [`ZipArchive::read_member`], or are fixed-size buffers.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use crate::error::{Error, Location, Result};
use crate::limits::Limits;

const SIG_LOCAL: u32 = 0x0403_4b50;
const SIG_CENTRAL: u32 = 0x0201_4b50;
const SIG_EOCD: u32 = 0x0605_4b50;
const SIG_ZIP64_EOCD: u32 = 0x0606_4b50;
const SIG_ZIP64_LOCATOR: u32 = 0x0706_4b50;

const LOCAL_HEADER_LEN: u64 = 30;
const CENTRAL_HEADER_LEN: u64 = 46;
const EOCD_LEN: u64 = 22;
const ZIP64_EOCD_LEN: u64 = 56;
const ZIP64_LOCATOR_LEN: u64 = 20;

/// General-purpose flag bits torch (miniz) refuses: encrypted, compressed patch data, strong
/// encryption, masked local directory.
const FLAG_ENCRYPTED: u16 = 0x0001;
const FLAG_PATCH: u16 = 0x0020;
const FLAG_STRONG_ENCRYPTION: u16 = 0x0040;
const FLAG_MASKED_LOCAL: u16 = 0x2000;
const FLAGS_REFUSED: u16 = FLAG_ENCRYPTED | FLAG_PATCH | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_LOCAL;
/// Bits any ordinary writer sets: data descriptor (torch always), UTF-8 names (torch always).
const FLAGS_ORDINARY: u16 = 0x0008 | 0x0800;
/// Deflate compression-option bits (only meaningful for method 8).
const FLAGS_DEFLATE_OPTIONS: u16 = 0x0006;

const METHOD_STORED: u16 = 0;
const METHOD_DEFLATE: u16 = 8;

/// Name bytes (central + local) allowed per permitted archive member.
const NAME_BYTES_PER_MEMBER: u64 = 1024;
/// Individual issues kept per kind; the rest are summarised in one issue.
const MAX_ISSUES_PER_KIND: usize = 100;
/// Input buffer for inflating a member.
const INFLATE_IN_BUF: usize = 32 * 1024;

/// True when the first four bytes are a local file header signature (`PK\x03\x04`); this is the
/// whole of torch's `_is_zipfile` test.
pub fn is_zip_prefix(first4: &[u8]) -> bool {
    first4.len() >= 4 && first4[..4] == *b"PK\x03\x04"
}

/// A way the container could be read differently by torch and by other tools. None of these stop
/// torch from loading the file (except [`ContainerIssueKind::MixedRoots`], which makes
/// `getAllRecords` throw, and [`ContainerIssueKind::DataBeforeFirstHeader`] from
/// [`ZipArchive::open_lenient`]); they are findings for the report and the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ContainerIssueKind {
    /// Several central-directory entries with names miniz treats as equal (ASCII case-insensitive),
    /// or entries whose bytes overlap (another form of one payload appearing as two members).
    DuplicateMember,
    /// The local header names the member differently from the central directory.
    LocalNameMismatch,
    /// Stored CRC-32 differs from the data (torch never checks).
    CrcMismatch,
    /// Bytes before the first local header that the central directory references.
    DataBeforeFirstHeader,
    /// Bytes after the end-of-central-directory record (and its comment).
    DataAfterEnd,
    /// Entries outside `<root>/`, where `<root>` comes from the first entry.
    MixedRoots,
    /// Name is not valid UTF-8 (shown lossily).
    NonUtf8Name,
    /// Flag bits, method or attributes that ordinary writers do not produce, or that differ
    /// between the local header and the central directory.
    UnusualFlags,
    /// `..` components, absolute paths, drive letters, backslashes or NUL in a name.
    SuspiciousPath,
    /// The end records disagree with each other or with the central directory.
    CentralDirectoryCountMismatch,
}

const ISSUE_KINDS: usize = 10;

impl ContainerIssueKind {
    fn index(self) -> usize {
        match self {
            ContainerIssueKind::DuplicateMember => 0,
            ContainerIssueKind::LocalNameMismatch => 1,
            ContainerIssueKind::CrcMismatch => 2,
            ContainerIssueKind::DataBeforeFirstHeader => 3,
            ContainerIssueKind::DataAfterEnd => 4,
            ContainerIssueKind::MixedRoots => 5,
            ContainerIssueKind::NonUtf8Name => 6,
            ContainerIssueKind::UnusualFlags => 7,
            ContainerIssueKind::SuspiciousPath => 8,
            ContainerIssueKind::CentralDirectoryCountMismatch => 9,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ContainerIssue {
    pub kind: ContainerIssueKind,
    pub member: Option<String>,
    pub detail: String,
}

/// One central-directory entry, with the local-header facts needed to read it.
#[derive(Debug, Clone)]
pub struct ZipEntry {
    /// Central-directory name (lossy UTF-8 if not valid UTF-8, and that is an issue).
    pub name: String,
    /// Name in the local header (lossy UTF-8).
    pub local_name: String,
    /// 0 stored, 8 deflate.
    pub method: u16,
    /// General-purpose flags from the central directory.
    pub flags: u16,
    /// CRC-32 from the central directory.
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Absolute offset of the local header in the file.
    pub local_header_offset: u64,
    /// Absolute offset of the member's bytes in the file.
    pub data_offset: u64,
    raw_name: Vec<u8>,
    external_attr: u32,
}

impl ZipEntry {
    /// miniz's `mz_zip_reader_is_file_a_directory`: name ends in `/` or DOS directory attribute.
    /// miniz does not extract such a member's bytes.
    pub fn is_directory(&self) -> bool {
        self.raw_name.last() == Some(&b'/') || self.external_attr & 0x10 != 0
    }

    /// The central-directory name exactly as stored.
    pub fn raw_name(&self) -> &[u8] {
        &self.raw_name
    }
}

#[derive(Debug)]
pub struct ZipArchive {
    pub entries: Vec<ZipEntry>,
    pub issues: Vec<ContainerIssue>,
    /// Entry indices in miniz's heap-sorted order (for [`ZipArchive::find`]).
    sorted: Vec<u32>,
    issue_counts: [usize; ISSUE_KINDS],
}

fn malformed_at(msg: impl Into<String>, offset: u64) -> Error {
    Error::Malformed {
        msg: msg.into(),
        loc: Location {
            offset: Some(offset),
            ..Location::default()
        },
    }
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

fn read_at<R: Read + Seek>(r: &mut R, off: u64, buf: &mut [u8], what: &str) -> Result<()> {
    r.seek(SeekFrom::Start(off))?;
    r.read_exact(buf).map_err(|e| eof_error(e, what, off))
}

fn eof_error(e: io::Error, what: &str, off: u64) -> Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        malformed_at(format!("file ends inside the {what}"), off)
    } else {
        Error::Io(e)
    }
}

fn add(a: u64, b: u64, what: &str) -> Result<u64> {
    a.checked_add(b)
        .ok_or_else(|| Error::malformed(format!("{what}: offset arithmetic overflows")))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Where miniz's backwards EOCD scan starts (it reads 4096-byte chunks overlapping by 3 bytes and
/// gives up once it has gone 65535+22 bytes back from the end).
fn eocd_search_start(size: u64) -> u64 {
    const CHUNK: u64 = 4096;
    let mut cur = size.saturating_sub(CHUNK);
    loop {
        if cur == 0 || size - cur >= 0xFFFF + EOCD_LEN {
            return cur;
        }
        cur = cur.saturating_sub(CHUNK - 3);
    }
}

/// miniz's ASCII-only lower-casing.
fn lower(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

/// `mz_zip_reader_filename_less`.
fn filename_less(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    for i in 0..n {
        let (l, r) = (lower(a[i]), lower(b[i]));
        if l != r {
            return l < r;
        }
    }
    a.len() < b.len()
}

/// `mz_zip_filename_compare`: <0, 0, >0.
fn filename_compare(entry: &[u8], key: &[u8]) -> i64 {
    let n = entry.len().min(key.len());
    for i in 0..n {
        let (l, r) = (lower(entry[i]), lower(key[i]));
        if l != r {
            return i64::from(l) - i64::from(r);
        }
    }
    entry.len() as i64 - key.len() as i64
}

/// `mz_zip_reader_sort_central_dir_offsets_by_filename`, step for step (heap sort: not stable,
/// so which duplicate ends up where depends on exactly these swaps).
fn miniz_sort(names: &[&[u8]]) -> Vec<u32> {
    let size = names.len();
    let mut idx: Vec<u32> = (0..size as u32).collect();
    if size <= 1 {
        return idx;
    }
    let less = |idx: &Vec<u32>, a: usize, b: usize| {
        filename_less(names[idx[a] as usize], names[idx[b] as usize])
    };
    let mut start = (size - 2) >> 1;
    loop {
        let mut root = start;
        loop {
            let mut child = (root << 1) + 1;
            if child >= size {
                break;
            }
            if child + 1 < size && less(&idx, child, child + 1) {
                child += 1;
            }
            if !less(&idx, root, child) {
                break;
            }
            idx.swap(root, child);
            root = child;
        }
        if start == 0 {
            break;
        }
        start -= 1;
    }
    let mut end = size - 1;
    while end > 0 {
        idx.swap(end, 0);
        let mut root = 0usize;
        loop {
            let mut child = (root << 1) + 1;
            if child >= end {
                break;
            }
            if child + 1 < end && less(&idx, child, child + 1) {
                child += 1;
            }
            if !less(&idx, root, child) {
                break;
            }
            idx.swap(root, child);
            root = child;
        }
        end -= 1;
    }
    idx
}

fn suspicious_path(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty name");
    }
    if name.contains(&0) {
        return Some("NUL byte in name (C readers truncate it)");
    }
    if name.contains(&b'\\') {
        return Some("backslash in name");
    }
    if name[0] == b'/' {
        return Some("absolute path");
    }
    if name.len() >= 2 && name[1] == b':' && name[0].is_ascii_alphabetic() {
        return Some("drive-letter path");
    }
    if name.split(|&c| c == b'/').any(|c| c == b"..") {
        return Some("`..` path component");
    }
    None
}

/// Collects issues, keeping at most [`MAX_ISSUES_PER_KIND`] of each kind.
struct Issues<'a> {
    list: &'a mut Vec<ContainerIssue>,
    counts: &'a mut [usize; ISSUE_KINDS],
}

impl Issues<'_> {
    fn push(&mut self, kind: ContainerIssueKind, member: Option<&str>, detail: String) {
        let c = &mut self.counts[kind.index()];
        *c += 1;
        if *c <= MAX_ISSUES_PER_KIND {
            self.list.push(ContainerIssue {
                kind,
                member: member.map(str::to_string),
                detail,
            });
        }
    }

    /// Append one summary issue for every kind that overflowed.
    fn summarise(&mut self) {
        let kinds = [
            ContainerIssueKind::DuplicateMember,
            ContainerIssueKind::LocalNameMismatch,
            ContainerIssueKind::CrcMismatch,
            ContainerIssueKind::DataBeforeFirstHeader,
            ContainerIssueKind::DataAfterEnd,
            ContainerIssueKind::MixedRoots,
            ContainerIssueKind::NonUtf8Name,
            ContainerIssueKind::UnusualFlags,
            ContainerIssueKind::SuspiciousPath,
            ContainerIssueKind::CentralDirectoryCountMismatch,
        ];
        for kind in kinds {
            let n = self.counts[kind.index()];
            if n > MAX_ISSUES_PER_KIND {
                // Drop any older summary for this kind and write a fresh one.
                self.list.retain(|i| {
                    !(i.kind == kind && i.member.is_none() && i.detail.starts_with("… "))
                });
                self.list.push(ContainerIssue {
                    kind,
                    member: None,
                    detail: format!(
                        "… and {} more issues of this kind not listed individually",
                        n - MAX_ISSUES_PER_KIND
                    ),
                });
            }
        }
    }
}

/// Values from the end records, after miniz's ZIP64 substitution.
struct EndRecords {
    total_files: u64,
    cd_size: u64,
    cd_offset: u64,
    num_this_disk: u32,
    /// Where the end records begin (ZIP64 end record if used, else the EOCD).
    records_start: u64,
}

fn read_end_records<R: Read + Seek>(
    r: &mut R,
    len: u64,
    issues: &mut Issues<'_>,
) -> Result<EndRecords> {
    if len < EOCD_LEN {
        return Err(Error::malformed(format!(
            "file of {len} bytes is too small to be a zip archive"
        )));
    }
    let start = eocd_search_start(len);
    let window_len = usize::try_from(len - start)
        .map_err(|_| Error::malformed("end-record search window too large"))?;
    let mut window = vec![0u8; window_len];
    read_at(
        r,
        start,
        &mut window,
        "end-of-central-directory search window",
    )?;
    // Last signature with at least 22 bytes after it (positions ≤ len - 22).
    let last = window_len - EOCD_LEN as usize;
    let pos_in_window = (0..=last)
        .rev()
        .find(|&i| le32(&window, i) == SIG_EOCD)
        .ok_or_else(|| {
            Error::malformed(
                "no end-of-central-directory record in the last 64 KiB (not a zip archive)",
            )
        })?;
    let eocd_pos = start + pos_in_window as u64;
    let e = &window[pos_in_window..pos_in_window + EOCD_LEN as usize];
    let comment_len = u64::from(le16(e, 20));
    let end = eocd_pos + EOCD_LEN + comment_len;
    if end < len {
        issues.push(
            ContainerIssueKind::DataAfterEnd,
            None,
            format!(
                "{} bytes after the end-of-central-directory record at offset {eocd_pos} (torch ignores them)",
                len - end
            ),
        );
    }

    let mut rec = EndRecords {
        total_files: u64::from(le16(e, 10)),
        cd_size: u64::from(le32(e, 12)),
        cd_offset: u64::from(le32(e, 16)),
        num_this_disk: u32::from(le16(e, 4)),
        records_start: eocd_pos,
    };
    let mut entries_on_disk = u64::from(le16(e, 8));
    let mut cd_disk = u32::from(le16(e, 6));

    if eocd_pos >= ZIP64_LOCATOR_LEN + ZIP64_EOCD_LEN {
        let mut loc = [0u8; ZIP64_LOCATOR_LEN as usize];
        let loc_pos = eocd_pos - ZIP64_LOCATOR_LEN;
        read_at(
            r,
            loc_pos,
            &mut loc,
            "ZIP64 end-of-central-directory locator",
        )?;
        if le32(&loc, 0) == SIG_ZIP64_LOCATOR {
            let z64_pos = le64(&loc, 8);
            if z64_pos > len - ZIP64_EOCD_LEN {
                return Err(malformed_at(
                    format!("ZIP64 locator points at offset {z64_pos}, past the end of the file"),
                    loc_pos,
                ));
            }
            let mut z = [0u8; ZIP64_EOCD_LEN as usize];
            read_at(r, z64_pos, &mut z, "ZIP64 end-of-central-directory record")?;
            if le32(&z, 0) == SIG_ZIP64_EOCD {
                let record_size = le64(&z, 4);
                if record_size < ZIP64_EOCD_LEN - 12 {
                    return Err(malformed_at(
                        format!("ZIP64 end record declares size {record_size} (< 44)"),
                        z64_pos,
                    ));
                }
                let total_disks = le32(&loc, 16);
                if total_disks != 1 {
                    return Err(Error::unsupported(format!(
                        "multi-disk zip archive ({total_disks} disks in ZIP64 locator)"
                    )));
                }
                let z_total = le64(&z, 32);
                let z_on_disk = le64(&z, 24);
                let z_cd_size = le64(&z, 40);
                let z_cd_offset = le64(&z, 48);
                if z_total > u64::from(u32::MAX) || z_on_disk > u64::from(u32::MAX) {
                    return Err(malformed_at(
                        format!("ZIP64 end record declares {z_total} entries"),
                        z64_pos,
                    ));
                }
                if z_cd_size > u64::from(u32::MAX) {
                    return Err(malformed_at(
                        format!("ZIP64 central directory size {z_cd_size} exceeds 4 GiB"),
                        z64_pos,
                    ));
                }
                // The 32-bit values are ignored by torch once a ZIP64 record exists; readers that
                // prefer them when they are not 0xFFFF/0xFFFFFFFF would see another directory.
                let mut disagree = Vec::new();
                if rec.total_files != 0xFFFF && rec.total_files != z_total {
                    disagree.push(format!("entries {} vs {z_total}", rec.total_files));
                }
                if rec.cd_size != 0xFFFF_FFFF && rec.cd_size != z_cd_size {
                    disagree.push(format!("directory size {} vs {z_cd_size}", rec.cd_size));
                }
                if rec.cd_offset != 0xFFFF_FFFF && rec.cd_offset != z_cd_offset {
                    disagree.push(format!(
                        "directory offset {} vs {z_cd_offset}",
                        rec.cd_offset
                    ));
                }
                if !disagree.is_empty() {
                    issues.push(
                        ContainerIssueKind::CentralDirectoryCountMismatch,
                        None,
                        format!(
                            "32-bit end record disagrees with the ZIP64 end record ({}); torch uses the ZIP64 values",
                            disagree.join(", ")
                        ),
                    );
                }
                if z64_pos + ZIP64_EOCD_LEN != loc_pos {
                    issues.push(
                        ContainerIssueKind::CentralDirectoryCountMismatch,
                        None,
                        format!(
                            "ZIP64 end record at {z64_pos} is not directly before its locator at {loc_pos}; \
                             readers that assume adjacency (Python zipfile) read different bytes"
                        ),
                    );
                }
                rec.total_files = z_total;
                entries_on_disk = z_on_disk;
                rec.cd_size = z_cd_size;
                rec.cd_offset = z_cd_offset;
                rec.num_this_disk = le32(&z, 16);
                cd_disk = le32(&z, 20);
                rec.records_start = z64_pos;
            } else {
                issues.push(
                    ContainerIssueKind::CentralDirectoryCountMismatch,
                    None,
                    format!(
                        "ZIP64 locator points at offset {z64_pos}, which holds no ZIP64 end record; \
                         torch falls back to the 32-bit end record, other readers may refuse"
                    ),
                );
            }
        }
    }

    if rec.total_files != entries_on_disk {
        return Err(Error::unsupported(format!(
            "multi-disk zip archive ({} entries in total, {entries_on_disk} on this disk)",
            rec.total_files
        )));
    }
    if (rec.num_this_disk | cd_disk) != 0 && (rec.num_this_disk != 1 || cd_disk != 1) {
        return Err(Error::unsupported(format!(
            "multi-disk zip archive (disk {}, central directory on disk {cd_disk})",
            rec.num_this_disk
        )));
    }
    Ok(rec)
}

struct CentralRaw {
    flags: u16,
    method: u16,
    crc32: u32,
    compressed_size: u64,
    uncompressed_size: u64,
    local_header_offset: u64,
    external_attr: u32,
    name: Vec<u8>,
}

/// Apply ZIP64 extended information to the fields whose 32-bit value is 0xFFFFFFFF
/// (`mz_zip_file_stat_internal`).
fn apply_zip64_extra(
    extra: &[u8],
    usize32: u32,
    csize32: u32,
    lho32: u32,
) -> std::result::Result<(u64, u64, u64), &'static str> {
    let (mut u, mut c, mut l) = (u64::from(usize32), u64::from(csize32), u64::from(lho32));
    if usize32 != u32::MAX && csize32 != u32::MAX && lho32 != u32::MAX {
        return Ok((u, c, l));
    }
    let mut ex = extra;
    while !ex.is_empty() {
        if ex.len() < 4 {
            return Err("truncated extra field header");
        }
        let id = le16(ex, 0);
        let size = usize::from(le16(ex, 2));
        if 4 + size > ex.len() {
            return Err("extra field overruns the extra data");
        }
        if id == 0x0001 {
            let mut f = &ex[4..4 + size];
            let take = |f: &mut &[u8]| -> std::result::Result<u64, &'static str> {
                if f.len() < 8 {
                    return Err("ZIP64 extra field too short");
                }
                let v = le64(f, 0);
                *f = &f[8..];
                Ok(v)
            };
            if usize32 == u32::MAX {
                u = take(&mut f)?;
            }
            if csize32 == u32::MAX {
                c = take(&mut f)?;
            }
            if lho32 == u32::MAX {
                l = take(&mut f)?;
            }
            break;
        }
        ex = &ex[4 + size..];
    }
    Ok((u, c, l))
}

impl ZipArchive {
    /// Parse the end records and central directory from `r` (any Read+Seek, length `len`).
    ///
    /// Like `torch.load`, refuses a file that does not start with `PK\x03\x04`.
    pub fn open<R: Read + Seek>(r: &mut R, len: u64, limits: &Limits) -> Result<ZipArchive> {
        Self::open_impl(r, len, limits, false)
    }

    /// Like [`ZipArchive::open`] but accepts bytes before the archive (self-extractors, polyglots,
    /// `cat junk model.pt`), which torch refuses; reports them as
    /// [`ContainerIssueKind::DataBeforeFirstHeader`]. When the central directory is not where the
    /// end record says but is found shifted by the prefix length, offsets are shifted the way
    /// Python's `zipfile` does. For reports only: torch cannot load such a file.
    pub fn open_lenient<R: Read + Seek>(
        r: &mut R,
        len: u64,
        limits: &Limits,
    ) -> Result<ZipArchive> {
        Self::open_impl(r, len, limits, true)
    }

    fn open_impl<R: Read + Seek>(
        r: &mut R,
        len: u64,
        limits: &Limits,
        lenient: bool,
    ) -> Result<ZipArchive> {
        let mut list = Vec::new();
        let mut counts = [0usize; ISSUE_KINDS];
        let mut issues = Issues {
            list: &mut list,
            counts: &mut counts,
        };

        if !lenient {
            let mut magic = [0u8; 4];
            if len < 4 {
                return Err(Error::malformed("file too small to be a zip archive"));
            }
            read_at(r, 0, &mut magic, "local file header")?;
            if !is_zip_prefix(&magic) {
                return Err(malformed_at(
                    "file does not start with a zip local file header (PK\\x03\\x04); torch.load refuses it",
                    0,
                ));
            }
        }

        let end = read_end_records(r, len, &mut issues)?;
        let max_members = limits.max_archive_members;
        if end.total_files > max_members as u64 {
            return Err(Error::limit(
                "max_archive_members",
                format!(
                    "archive declares {} members, limit is {max_members}",
                    end.total_files
                ),
            ));
        }
        let total = end.total_files as usize; // ≤ max_archive_members, a usize
        if end.cd_size < end.total_files * CENTRAL_HEADER_LEN {
            return Err(Error::malformed(format!(
                "central directory of {} bytes cannot hold {} entries",
                end.cd_size, end.total_files
            )));
        }
        let cd_end = add(end.cd_offset, end.cd_size, "central directory")?;
        if cd_end > len {
            return Err(Error::malformed(format!(
                "central directory [{}, {cd_end}) extends past the end of the {len}-byte file",
                end.cd_offset
            )));
        }

        // Base added to every offset: 0 as in miniz, or the prefix length in lenient mode when
        // the directory is found shifted (Python zipfile's "concat").
        let mut base = 0u64;
        if total > 0 {
            let mut sig = [0u8; 4];
            read_at(r, end.cd_offset, &mut sig, "central directory")?;
            if le32(&sig, 0) != SIG_CENTRAL && lenient {
                if let Some(concat) = end.records_start.checked_sub(cd_end).filter(|&c| c > 0) {
                    let shifted = end.cd_offset + concat; // ≤ records_start ≤ len
                    if shifted + 4 <= len {
                        read_at(r, shifted, &mut sig, "central directory")?;
                        if le32(&sig, 0) == SIG_CENTRAL {
                            base = concat;
                        }
                    }
                }
            }
        }
        let cd_start = end.cd_offset + base;

        let name_budget_total = (max_members as u64).saturating_mul(NAME_BYTES_PER_MEMBER);
        let mut name_budget = name_budget_total;
        let mut charge = |n: u64| -> Result<()> {
            name_budget = name_budget.checked_sub(n).ok_or_else(|| {
                Error::limit(
                    "max_archive_members",
                    format!(
                        "member names exceed {name_budget_total} bytes \
                         ({NAME_BYTES_PER_MEMBER} per allowed member)"
                    ),
                )
            })?;
            Ok(())
        };

        // ---- central directory ----
        let mut raws: Vec<CentralRaw> = Vec::with_capacity(total);
        let mut remaining = end.cd_size;
        let mut hidden_entries = false;
        {
            r.seek(SeekFrom::Start(cd_start))?;
            let mut cd = BufReader::with_capacity(64 * 1024, &mut *r);
            let mut cur = cd_start;
            for i in 0..total {
                let truncated = || {
                    malformed_at(
                        format!(
                            "central directory holds only {i} of the {total} entries the end record declares"
                        ),
                        cur,
                    )
                };
                if remaining < CENTRAL_HEADER_LEN {
                    return Err(truncated());
                }
                let mut h = [0u8; CENTRAL_HEADER_LEN as usize];
                cd.read_exact(&mut h)
                    .map_err(|e| eof_error(e, "central directory", cur))?;
                if le32(&h, 0) != SIG_CENTRAL {
                    return Err(if i == 0 {
                        malformed_at(
                            "no central directory header where the end record points",
                            cur,
                        )
                    } else {
                        truncated()
                    });
                }
                let flags = le16(&h, 8);
                let method = le16(&h, 10);
                let crc32 = le32(&h, 16);
                let csize32 = le32(&h, 20);
                let usize32 = le32(&h, 24);
                let name_len = u64::from(le16(&h, 28));
                let extra_len = u64::from(le16(&h, 30));
                let comment_len = u64::from(le16(&h, 32));
                let disk = le16(&h, 34);
                let external_attr = le32(&h, 38);
                let lho32 = le32(&h, 42);
                let entry_len = CENTRAL_HEADER_LEN + name_len + extra_len + comment_len;
                if entry_len > remaining {
                    return Err(malformed_at(
                        format!("central directory entry {i} overruns the central directory"),
                        cur,
                    ));
                }
                charge(name_len)?;
                let mut name = vec![0u8; name_len as usize];
                cd.read_exact(&mut name)
                    .map_err(|e| eof_error(e, "central directory", cur))?;
                let mut extra = vec![0u8; extra_len as usize];
                cd.read_exact(&mut extra)
                    .map_err(|e| eof_error(e, "central directory", cur))?;
                if comment_len > 0 {
                    let copied = io::copy(&mut (&mut cd).take(comment_len), &mut io::sink())?;
                    if copied != comment_len {
                        return Err(malformed_at("file ends inside the central directory", cur));
                    }
                }
                let shown = lossy(&name);
                let at = |e: Error| e.at_member(&shown);

                let (uncompressed_size, compressed_size, local_header_offset) =
                    apply_zip64_extra(&extra, usize32, csize32, lho32)
                        .map_err(|m| at(malformed_at(m, cur)))?;
                if uncompressed_size > 0 && compressed_size == 0 {
                    return Err(at(malformed_at(
                        format!(
                            "member declares {uncompressed_size} uncompressed bytes but no compressed bytes"
                        ),
                        cur,
                    )));
                }
                if disk == u16::MAX || (u32::from(disk) != end.num_this_disk && disk != 1) {
                    return Err(at(Error::unsupported(format!(
                        "member on disk {disk} of a multi-disk archive"
                    ))));
                }
                if flags & FLAGS_REFUSED != 0 {
                    return Err(at(Error::unsupported(format!(
                        "member {shown:?} has general-purpose flags {flags:#06x} \
                         (encrypted/patch/masked); torch refuses it"
                    ))));
                }
                if method != METHOD_STORED && method != METHOD_DEFLATE {
                    return Err(at(Error::unsupported(format!(
                        "member {shown:?} uses compression method {method} (only 0 stored and 8 deflate are supported)"
                    ))));
                }
                if method == METHOD_STORED && compressed_size != uncompressed_size {
                    return Err(at(malformed_at(
                        format!(
                            "stored member has compressed size {compressed_size} but uncompressed size {uncompressed_size}"
                        ),
                        cur,
                    )));
                }
                raws.push(CentralRaw {
                    flags,
                    method,
                    crc32,
                    compressed_size,
                    uncompressed_size,
                    local_header_offset,
                    external_attr,
                    name,
                });
                remaining -= entry_len;
                cur += entry_len;
            }
            if remaining >= 4 {
                let mut sig = [0u8; 4];
                if cd.read_exact(&mut sig).is_ok() && le32(&sig, 0) == SIG_CENTRAL {
                    hidden_entries = true;
                }
            }
        }
        if hidden_entries {
            issues.push(
                ContainerIssueKind::CentralDirectoryCountMismatch,
                None,
                format!(
                    "central directory holds more entries than the {total} the end record declares; \
                     torch ignores the extra ones, other readers may not"
                ),
            );
        }

        // ---- local headers ----
        let mut entries: Vec<ZipEntry> = Vec::with_capacity(total);
        for raw in raws {
            let shown = lossy(&raw.name);
            let at = |e: Error| e.at_member(&shown);
            let lho = add(raw.local_header_offset, base, "local header").map_err(at)?;
            if add(lho, LOCAL_HEADER_LEN, "local header").map_err(at)? > len {
                return Err(at(malformed_at(
                    format!("local header offset {lho} is outside the {len}-byte file"),
                    lho,
                )));
            }
            let mut h = [0u8; LOCAL_HEADER_LEN as usize];
            read_at(r, lho, &mut h, "local header").map_err(at)?;
            if le32(&h, 0) != SIG_LOCAL {
                return Err(at(malformed_at("no local file header signature", lho)));
            }
            let local_flags = le16(&h, 6);
            let local_method = le16(&h, 8);
            let local_name_len = u64::from(le16(&h, 26));
            let local_extra_len = u64::from(le16(&h, 28));
            let data_offset = lho + LOCAL_HEADER_LEN + local_name_len + local_extra_len;
            if data_offset > len {
                return Err(at(malformed_at(
                    "local header name/extra fields run past the end of the file",
                    lho,
                )));
            }
            let data_end = add(data_offset, raw.compressed_size, "member data").map_err(at)?;
            if data_end > len {
                return Err(at(malformed_at(
                    format!(
                        "member data [{data_offset}, {data_end}) extends past the end of the {len}-byte file"
                    ),
                    data_offset,
                )));
            }
            charge(local_name_len)?;
            let mut local_name = vec![0u8; local_name_len as usize];
            read_at(
                r,
                lho + LOCAL_HEADER_LEN,
                &mut local_name,
                "local header name",
            )
            .map_err(at)?;

            if local_name != raw.name {
                issues.push(
                    ContainerIssueKind::LocalNameMismatch,
                    Some(&shown),
                    format!(
                        "local header at {lho} names it {:?}; torch uses the central-directory name",
                        lossy(&local_name)
                    ),
                );
            }
            if local_flags != raw.flags {
                issues.push(
                    ContainerIssueKind::UnusualFlags,
                    Some(&shown),
                    format!(
                        "local header flags {local_flags:#06x} differ from central-directory flags {:#06x} \
                         (torch uses the central directory)",
                        raw.flags
                    ),
                );
            }
            if local_method != raw.method {
                issues.push(
                    ContainerIssueKind::UnusualFlags,
                    Some(&shown),
                    format!(
                        "local header method {local_method} differs from central-directory method {} \
                         (torch uses the central directory)",
                        raw.method
                    ),
                );
            }
            let mut ordinary = FLAGS_ORDINARY;
            if raw.method == METHOD_DEFLATE {
                ordinary |= FLAGS_DEFLATE_OPTIONS;
            }
            if raw.flags & !ordinary != 0 {
                issues.push(
                    ContainerIssueKind::UnusualFlags,
                    Some(&shown),
                    format!("unusual general-purpose flags {:#06x}", raw.flags),
                );
            }
            let entry = ZipEntry {
                name: shown.clone(),
                local_name: lossy(&local_name),
                method: raw.method,
                flags: raw.flags,
                crc32: raw.crc32,
                compressed_size: raw.compressed_size,
                uncompressed_size: raw.uncompressed_size,
                local_header_offset: lho,
                data_offset,
                raw_name: raw.name,
                external_attr: raw.external_attr,
            };
            if entry.is_directory() && (entry.compressed_size > 0 || entry.uncompressed_size > 0) {
                issues.push(
                    ContainerIssueKind::UnusualFlags,
                    Some(&shown),
                    format!(
                        "member is marked as a directory (name ending in '/' or DOS attribute, external \
                         attributes {:#010x}) but has {} bytes; torch does not extract them",
                        entry.external_attr, entry.uncompressed_size
                    ),
                );
            }
            if std::str::from_utf8(&entry.raw_name).is_err() {
                issues.push(
                    ContainerIssueKind::NonUtf8Name,
                    Some(&shown),
                    "central-directory name is not valid UTF-8".to_string(),
                );
            }
            if let Some(why) = suspicious_path(&entry.raw_name) {
                issues.push(
                    ContainerIssueKind::SuspiciousPath,
                    Some(&shown),
                    why.to_string(),
                );
            }
            if local_name != entry.raw_name {
                if let Some(why) = suspicious_path(&local_name) {
                    issues.push(
                        ContainerIssueKind::SuspiciousPath,
                        Some(&shown),
                        format!("local header name: {why}"),
                    );
                }
            }
            entries.push(entry);
        }

        let names: Vec<&[u8]> = entries.iter().map(|e| e.raw_name.as_slice()).collect();
        let sorted = miniz_sort(&names);
        drop(names);

        let mut archive = ZipArchive {
            entries,
            issues: Vec::new(),
            sorted,
            issue_counts: [0; ISSUE_KINDS],
        };
        archive.archive_issues(&mut issues, base, cd_start, cd_end.saturating_add(base));
        issues.summarise();
        archive.issues = list;
        archive.issue_counts = counts;
        Ok(archive)
    }

    /// Whole-archive findings: roots, duplicates, overlaps, prefix bytes.
    fn archive_issues(&self, issues: &mut Issues<'_>, base: u64, cd_start: u64, cd_end: u64) {
        // Roots (torch's init and getAllRecords).
        if let Some(first) = self.entries.first() {
            match first.raw_name.iter().position(|&c| c == b'/') {
                None => issues.push(
                    ContainerIssueKind::MixedRoots,
                    Some(&first.name),
                    "first entry is not in a subdirectory; torch refuses the archive".to_string(),
                ),
                Some(p) => {
                    let prefix = &first.raw_name[..=p];
                    for e in &self.entries[1..] {
                        if !e.raw_name.starts_with(prefix) {
                            issues.push(
                                ContainerIssueKind::MixedRoots,
                                Some(&e.name),
                                format!(
                                    "not under {:?}, the root taken from the first entry \
                                     (torch's getAllRecords throws; lookups never see it)",
                                    lossy(prefix)
                                ),
                            );
                        }
                    }
                }
            }
        }

        // Names miniz treats as equal.
        let mut groups: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            groups
                .entry(e.raw_name.to_ascii_lowercase())
                .or_default()
                .push(i);
        }
        let mut dups: Vec<&Vec<usize>> = groups.values().filter(|g| g.len() > 1).collect();
        dups.sort_by_key(|g| g[0]);
        for g in dups {
            let last = *g.last().unwrap_or(&0);
            let key = &self.entries[g[0]].raw_name;
            let chosen = self.find_raw(key);
            let case_differs = g.iter().any(|&i| self.entries[i].raw_name != *key);
            let chosen_txt = match chosen {
                Some(c) => format!("torch reads entry #{c}"),
                None => "torch finds none of them".to_string(),
            };
            issues.push(
                ContainerIssueKind::DuplicateMember,
                Some(&self.entries[last].name),
                format!(
                    "{} central-directory entries #{:?} share this name{}; {chosen_txt} (the last is #{last})",
                    g.len(),
                    g,
                    if case_differs {
                        " ignoring ASCII case (torch's lookup is case-insensitive)"
                    } else {
                        ""
                    },
                ),
            );
        }

        // Overlapping byte ranges (local header .. end of data), and overlap with the directory.
        let mut ranges: Vec<(u64, u64, usize)> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.local_header_offset, e.data_offset + e.compressed_size, i))
            .collect();
        ranges.sort_unstable();
        let mut reach: Option<(u64, usize)> = None;
        for &(s, e, i) in &ranges {
            if let Some((end, j)) = reach {
                if s < end {
                    issues.push(
                        ContainerIssueKind::DuplicateMember,
                        Some(&self.entries[i].name),
                        format!(
                            "bytes [{s}, {e}) overlap member {:?} (ends at {end}): one payload read as several members",
                            self.entries[j].name
                        ),
                    );
                }
            }
            if reach.is_none_or(|(end, _)| e > end) {
                reach = Some((e, i));
            }
            if s < cd_end && cd_start < e {
                issues.push(
                    ContainerIssueKind::DuplicateMember,
                    Some(&self.entries[i].name),
                    format!(
                        "bytes [{s}, {e}) overlap the central directory [{cd_start}, {cd_end})"
                    ),
                );
            }
        }

        // Bytes before the first referenced local header.
        if let Some(first) = ranges.first().map(|r| r.0) {
            if first > 0 {
                let detail = if base > 0 {
                    format!(
                        "{first} bytes before the first local header; archive offsets are shifted by {base} \
                         (prepended data); torch refuses this file"
                    )
                } else {
                    format!(
                        "{first} bytes before the first local header the central directory references \
                         (torch never reads them)"
                    )
                };
                issues.push(ContainerIssueKind::DataBeforeFirstHeader, None, detail);
            }
        }
    }

    /// The root folder torch uses: the text before the first '/' of the FIRST central-directory
    /// entry (`None` when there is no entry or it has no '/', which torch refuses).
    pub fn root(&self) -> Option<&str> {
        let first = self.entries.first()?;
        first.name.find('/').map(|p| &first.name[..p])
    }

    /// Index of the member torch would read for `name` (a full name, including the root).
    ///
    /// This runs miniz's lookup exactly: a binary search over the central directory heap-sorted
    /// by ASCII-lower-cased name, comparing case-insensitively, with `name` cut at its first NUL
    /// (it is a C string there). With duplicate names this is NOT always the last entry (nor
    /// the first): it is whichever miniz lands on, which depends on all the names. Any such
    /// ambiguity is also a [`ContainerIssueKind::DuplicateMember`] issue; use
    /// [`ZipArchive::find_last_exact`] for Python `zipfile`'s answer.
    pub fn find(&self, name: &str) -> Option<usize> {
        let key = name.as_bytes();
        let key = key.split(|&c| c == 0).next().unwrap_or(key);
        self.find_raw(key)
    }

    /// torch's `getRecordID(name)`: [`ZipArchive::find`] of `<root>/<name>`, with the root taken
    /// byte-exactly from the first entry (works for non-UTF-8 roots too).
    pub fn find_record(&self, name: &str) -> Option<usize> {
        let first = self.entries.first()?;
        let p = first.raw_name.iter().position(|&c| c == b'/')?;
        let mut key = first.raw_name[..=p].to_vec();
        key.extend_from_slice(name.as_bytes());
        let cut = key.iter().position(|&c| c == 0).unwrap_or(key.len());
        self.find_raw(&key[..cut])
    }

    /// The LAST central-directory entry whose name is byte-for-byte `name` (what Python's
    /// `zipfile` returns); compare with [`ZipArchive::find`] to spot differentials.
    pub fn find_last_exact(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .rposition(|e| e.raw_name == name.as_bytes())
    }

    fn find_raw(&self, key: &[u8]) -> Option<usize> {
        let (mut l, mut h) = (0i64, self.sorted.len() as i64 - 1);
        while l <= h {
            let m = l + ((h - l) >> 1);
            let idx = self.sorted[m as usize] as usize;
            let c = filename_compare(&self.entries[idx].raw_name, key);
            if c == 0 {
                return Some(idx);
            } else if c < 0 {
                l = m + 1;
            } else {
                h = m - 1;
            }
        }
        None
    }

    fn entry(&self, idx: usize) -> Result<&ZipEntry> {
        self.entries.get(idx).ok_or_else(|| {
            Error::malformed(format!(
                "member index {idx} out of range ({} members)",
                self.entries.len()
            ))
        })
    }

    /// A reader over member `idx`'s uncompressed bytes. Stored members are read with bounded
    /// seeks; deflated members are inflated in a streaming fashion and never produce more than
    /// `uncompressed_size` bytes: a stream that would produce more, ends with fewer, or is cut
    /// off is an error (reported by the `read` call that would hand out its last bytes, so a
    /// caller reading exactly `uncompressed_size` bytes still sees it).
    ///
    /// Errors from `read` are `io::Error`s wrapping this crate's [`Error`]; use
    /// [`into_error`] to get it back.
    pub fn open_member<'a, R: Read + Seek>(
        &self,
        r: &'a mut R,
        idx: usize,
    ) -> Result<MemberReader<'a, R>> {
        let e = self.entry(idx)?;
        if e.is_directory() && (e.compressed_size > 0 || e.uncompressed_size > 0) {
            return Err(Error::malformed(
                "member is marked as a directory; torch does not extract its bytes",
            )
            .at_member(&e.name));
        }
        let body = match e.method {
            METHOD_STORED => Body::Stored,
            METHOD_DEFLATE => Body::Deflate(Box::new(Inflater {
                state: miniz_oxide::inflate::stream::InflateState::new_boxed(
                    miniz_oxide::DataFormat::Raw,
                ),
                buf: vec![0u8; INFLATE_IN_BUF],
                start: 0,
                end: 0,
                ended: false,
            })),
            m => {
                return Err(
                    Error::unsupported(format!("compression method {m}")).at_member(&e.name)
                );
            }
        };
        let mut reader = MemberReader {
            r,
            name: e.name.clone(),
            pos: e.data_offset,
            comp_remaining: e.compressed_size,
            out_remaining: e.uncompressed_size,
            declared: e.uncompressed_size,
            body,
        };
        if reader.out_remaining == 0 && reader.comp_remaining > 0 {
            // An empty member with compressed bytes: they must be a complete empty stream.
            reader.finish().map_err(into_error)?;
        }
        Ok(reader)
    }

    /// Read a whole member into memory, refusing above `max` bytes (limit `max_inflated_member`).
    pub fn read_member<R: Read + Seek>(&self, r: &mut R, idx: usize, max: u64) -> Result<Vec<u8>> {
        let e = self.entry(idx)?;
        if e.uncompressed_size > max {
            return Err(Error::limit(
                "max_inflated_member",
                format!(
                    "member declares {} bytes uncompressed, limit is {max}",
                    e.uncompressed_size
                ),
            )
            .at_member(&e.name));
        }
        // Stored sizes were checked against the file; for deflate, grow as real bytes arrive.
        let cap = if e.method == METHOD_STORED {
            e.uncompressed_size
        } else {
            e.uncompressed_size.min(16 << 20)
        };
        let mut out = Vec::with_capacity(usize::try_from(cap).unwrap_or(0));
        let mut reader = self.open_member(r, idx)?;
        reader.read_to_end(&mut out).map_err(into_error)?;
        if out.len() as u64 != e.uncompressed_size {
            return Err(Error::malformed(format!(
                "member produced {} bytes, expected {}",
                out.len(),
                e.uncompressed_size
            ))
            .at_member(&e.name));
        }
        Ok(out)
    }

    /// Compute the CRC-32 of every member (streaming) and record a
    /// [`ContainerIssueKind::CrcMismatch`] for each stored CRC that differs. torch never checks
    /// CRCs. Members torch does not extract (directory-marked) are skipped. Fails if a member
    /// cannot be read at all.
    pub fn check_crcs<R: Read + Seek>(&mut self, r: &mut R) -> Result<()> {
        let mut found = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        for idx in 0..self.entries.len() {
            let e = &self.entries[idx];
            if e.is_directory() && (e.compressed_size > 0 || e.uncompressed_size > 0) {
                continue;
            }
            let mut hasher = crc32fast::Hasher::new();
            let mut reader = self.open_member(r, idx)?;
            loop {
                let n = reader.read(&mut buf).map_err(into_error)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            let computed = hasher.finalize();
            if computed != e.crc32 {
                let detail = if e.crc32 == 0 {
                    format!(
                        "stored CRC-32 is 0 but the data's is {computed:#010x} (torch writes 0 when saved \
                         with torch.serialization.set_crc32_options(False); torch never checks, \
                         Python zipfile refuses)"
                    )
                } else {
                    format!(
                        "stored CRC-32 {:#010x}, data's is {computed:#010x} (torch never checks; \
                         Python zipfile and many scanners refuse)",
                        e.crc32
                    )
                };
                found.push((e.name.clone(), detail));
            }
        }
        let mut issues = Issues {
            list: &mut self.issues,
            counts: &mut self.issue_counts,
        };
        for (name, detail) in found {
            issues.push(ContainerIssueKind::CrcMismatch, Some(&name), detail);
        }
        issues.summarise();
        Ok(())
    }
}

/// Recover this crate's [`Error`] from an `io::Error` returned by [`MemberReader`]'s `read`
/// (other `io::Error`s become [`Error::Io`]).
pub fn into_error(e: io::Error) -> Error {
    let kind = e.kind();
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(inner) = e.into_inner() {
            return match inner.downcast::<Error>() {
                Ok(err) => *err,
                Err(other) => Error::Io(io::Error::new(kind, other)),
            };
        }
        return Error::Io(io::Error::from(kind));
    }
    Error::Io(e)
}

struct Inflater {
    state: Box<miniz_oxide::inflate::stream::InflateState>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    ended: bool,
}

enum Body {
    Stored,
    Deflate(Box<Inflater>),
}

/// Streaming reader over one member's uncompressed bytes (see [`ZipArchive::open_member`]).
pub struct MemberReader<'a, R> {
    r: &'a mut R,
    name: String,
    /// Next absolute file offset to read (stored bytes or compressed input).
    pos: u64,
    comp_remaining: u64,
    out_remaining: u64,
    declared: u64,
    body: Body,
}

impl<R> std::fmt::Debug for MemberReader<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberReader")
            .field("name", &self.name)
            .field("pos", &self.pos)
            .field("out_remaining", &self.out_remaining)
            .finish()
    }
}

impl<R: Read + Seek> MemberReader<'_, R> {
    /// Bytes this reader will still produce.
    pub fn remaining(&self) -> u64 {
        self.out_remaining
    }

    fn err(&self, msg: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            Error::malformed(msg).at_member(&self.name),
        )
    }

    /// Refill the inflate input buffer from the file; false when no compressed bytes are left.
    fn refill(&mut self) -> io::Result<bool> {
        let Body::Deflate(inf) = &mut self.body else {
            return Ok(false);
        };
        if self.comp_remaining == 0 {
            return Ok(false);
        }
        let want = self.comp_remaining.min(inf.buf.len() as u64) as usize;
        self.r.seek(SeekFrom::Start(self.pos))?;
        let n = self.r.read(&mut inf.buf[..want])?;
        if n == 0 {
            let msg = format!(
                "file ends inside the member's compressed data at offset {}",
                self.pos
            );
            return Err(self.err(msg));
        }
        inf.start = 0;
        inf.end = n;
        self.pos += n as u64;
        self.comp_remaining -= n as u64;
        Ok(true)
    }

    /// One inflate step into `out`. Returns bytes written; errors on corrupt or cut-off streams.
    fn inflate_step(&mut self, out: &mut [u8]) -> io::Result<usize> {
        use miniz_oxide::inflate::stream::inflate;
        use miniz_oxide::{MZError, MZFlush, MZStatus};
        loop {
            let needs_input = match &self.body {
                Body::Deflate(inf) if inf.ended => return Ok(0),
                Body::Deflate(inf) => inf.start == inf.end,
                Body::Stored => return Ok(0),
            };
            // With no compressed bytes left, the decompressor may still hold buffered output:
            // one call with empty input drains it; no progress then means the stream is cut off.
            let exhausted = needs_input && !self.refill()?;
            let Body::Deflate(inf) = &mut self.body else {
                return Ok(0);
            };
            let res = inflate(
                &mut inf.state,
                &inf.buf[inf.start..inf.end],
                out,
                MZFlush::None,
            );
            inf.start += res.bytes_consumed;
            if exhausted && res.bytes_written == 0 && !matches!(res.status, Ok(MZStatus::StreamEnd))
            {
                let msg = format!(
                    "deflate stream is cut off after {} of {} bytes",
                    self.declared - self.out_remaining,
                    self.declared
                );
                return Err(self.err(msg));
            }
            match res.status {
                Ok(MZStatus::StreamEnd) => inf.ended = true,
                Ok(_) | Err(MZError::Buf) => {}
                Err(e) => {
                    let msg = format!("corrupt deflate stream ({e:?})");
                    return Err(self.err(msg));
                }
            }
            if res.bytes_written > 0 || inf.ended {
                return Ok(res.bytes_written);
            }
            if res.bytes_consumed == 0 && inf.start < inf.end {
                let msg = "deflate stream makes no progress".to_string();
                return Err(self.err(msg));
            }
        }
    }

    /// After the declared size has been produced: the stream must end there, as miniz requires.
    fn finish(&mut self) -> io::Result<()> {
        loop {
            match &self.body {
                Body::Stored => return Ok(()),
                Body::Deflate(inf) if inf.ended => return Ok(()),
                Body::Deflate(_) => {}
            }
            let mut scratch = [0u8; 1];
            let n = self.inflate_step(&mut scratch)?;
            if n > 0 {
                let msg = format!(
                    "deflate stream produces more than the declared {} bytes",
                    self.declared
                );
                return Err(self.err(msg));
            }
        }
    }
}

impl<R: Read + Seek> Read for MemberReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = self.out_remaining.min(buf.len() as u64) as usize;
        let n = match self.body {
            Body::Stored => {
                self.r.seek(SeekFrom::Start(self.pos))?;
                let n = self.r.read(&mut buf[..want])?;
                if n == 0 {
                    let msg = format!("file ends inside the member's data at offset {}", self.pos);
                    return Err(self.err(msg));
                }
                self.pos += n as u64;
                n
            }
            Body::Deflate(_) => {
                let n = self.inflate_step(&mut buf[..want])?;
                if n == 0 {
                    // The stream ended early.
                    let msg = format!(
                        "deflate stream ends after {} bytes, but the central directory declares {}",
                        self.declared - self.out_remaining,
                        self.declared
                    );
                    return Err(self.err(msg));
                }
                n
            }
        };
        self.out_remaining -= n as u64;
        if self.out_remaining == 0 {
            self.finish()?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    // ---------- a small archive builder with knobs for every differential ----------

    #[derive(Clone)]
    struct M {
        name: Vec<u8>,
        local_name: Option<Vec<u8>>,
        data: Vec<u8>,
        /// Compressed bytes to write instead of compressing `data`.
        raw_payload: Option<Vec<u8>>,
        method: u16,
        flags: u16,
        local_flags: Option<u16>,
        local_method: Option<u16>,
        crc: Option<u32>,
        usize: Option<u64>,
        csize: Option<u64>,
        align: Option<u64>,
        zip64_central: bool,
        ext_attr: u32,
        lho: Option<u64>,
    }

    fn m(name: &str, data: &[u8]) -> M {
        M {
            name: name.as_bytes().to_vec(),
            local_name: None,
            data: data.to_vec(),
            raw_payload: None,
            method: 0,
            flags: 0,
            local_flags: None,
            local_method: None,
            crc: None,
            usize: None,
            csize: None,
            align: None,
            zip64_central: false,
            ext_attr: 0,
            lho: None,
        }
    }

    /// torch-style member: stored, flags 0x0808 (data descriptor + UTF-8), 64-aligned via "FB".
    fn tm(name: &str, data: &[u8]) -> M {
        M {
            flags: 0x0808,
            align: Some(64),
            ..m(name, data)
        }
    }

    fn deflated(name: &str, data: &[u8]) -> M {
        M {
            method: 8,
            ..m(name, data)
        }
    }

    #[derive(Default)]
    struct Opts {
        zip64_end: bool,
        suffix: Vec<u8>,
        count: Option<u64>,
        /// Extra central entries written after the declared ones.
        hidden: Vec<M>,
    }

    fn p16(v: &mut Vec<u8>, x: u16) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    fn p32(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    fn p64(v: &mut Vec<u8>, x: u64) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    fn crc(d: &[u8]) -> u32 {
        let mut h = crc32fast::Hasher::new();
        h.update(d);
        h.finalize()
    }

    fn build(ms: &[M], o: &Opts) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        let all: Vec<(bool, &M)> = ms
            .iter()
            .map(|x| (false, x))
            .chain(o.hidden.iter().map(|x| (true, x)))
            .collect();
        let mut n_declared = 0u64;
        for (hidden, mm) in all {
            let lho = out.len() as u64;
            let payload = match (&mm.raw_payload, mm.method) {
                (Some(p), _) => p.clone(),
                (None, 8) => miniz_oxide::deflate::compress_to_vec(&mm.data, 6),
                (None, _) => mm.data.clone(),
            };
            let c = mm.crc.unwrap_or_else(|| crc(&mm.data));
            let us = mm.usize.unwrap_or(mm.data.len() as u64);
            let cs = mm.csize.unwrap_or(payload.len() as u64);
            let lname = mm.local_name.clone().unwrap_or_else(|| mm.name.clone());
            let mut lextra = Vec::new();
            if let Some(a) = mm.align {
                let start = lho + 30 + lname.len() as u64 + 4;
                let pad = (a - start % a) % a;
                lextra.extend_from_slice(b"FB");
                p16(&mut lextra, pad as u16);
                lextra.extend(std::iter::repeat_n(b'Z', pad as usize));
            }
            let dd = mm.flags & 8 != 0;
            p32(&mut out, SIG_LOCAL);
            p16(&mut out, 20);
            p16(&mut out, mm.local_flags.unwrap_or(mm.flags));
            p16(&mut out, mm.local_method.unwrap_or(mm.method));
            p32(&mut out, 0);
            p32(&mut out, if dd { 0 } else { c });
            p32(&mut out, if dd { 0 } else { cs as u32 });
            p32(&mut out, if dd { 0 } else { us as u32 });
            p16(&mut out, lname.len() as u16);
            p16(&mut out, lextra.len() as u16);
            out.extend_from_slice(&lname);
            out.extend_from_slice(&lextra);
            out.extend_from_slice(&payload);
            if dd {
                p32(&mut out, 0x0807_4b50);
                p32(&mut out, c);
                p32(&mut out, cs as u32);
                p32(&mut out, us as u32);
            }
            let lho = mm.lho.unwrap_or(lho);
            let mut cextra = Vec::new();
            let (cs32, us32, lho32) = if mm.zip64_central {
                p16(&mut cextra, 1);
                p16(&mut cextra, 24);
                p64(&mut cextra, us);
                p64(&mut cextra, cs);
                p64(&mut cextra, lho);
                (u32::MAX, u32::MAX, u32::MAX)
            } else {
                (cs as u32, us as u32, lho as u32)
            };
            p32(&mut central, SIG_CENTRAL);
            p16(&mut central, 0x031e);
            p16(&mut central, 20);
            p16(&mut central, mm.flags);
            p16(&mut central, mm.method);
            p32(&mut central, 0x0021_0000); // time 0, date 1980-01-01
            p32(&mut central, c);
            p32(&mut central, cs32);
            p32(&mut central, us32);
            p16(&mut central, mm.name.len() as u16);
            p16(&mut central, cextra.len() as u16);
            p16(&mut central, 0);
            p16(&mut central, 0);
            p16(&mut central, 0);
            p32(&mut central, mm.ext_attr);
            p32(&mut central, lho32);
            central.extend_from_slice(&mm.name);
            central.extend_from_slice(&cextra);
            if !hidden {
                n_declared += 1;
            }
        }
        let count = o.count.unwrap_or(n_declared);
        let cd_ofs = out.len() as u64;
        let cd_size = central.len() as u64;
        out.extend_from_slice(&central);
        if o.zip64_end {
            let z = out.len() as u64;
            p32(&mut out, SIG_ZIP64_EOCD);
            p64(&mut out, 44);
            p16(&mut out, 45);
            p16(&mut out, 45);
            p32(&mut out, 0);
            p32(&mut out, 0);
            p64(&mut out, count);
            p64(&mut out, count);
            p64(&mut out, cd_size);
            p64(&mut out, cd_ofs);
            p32(&mut out, SIG_ZIP64_LOCATOR);
            p32(&mut out, 0);
            p64(&mut out, z);
            p32(&mut out, 1);
        }
        p32(&mut out, SIG_EOCD);
        p16(&mut out, 0);
        p16(&mut out, 0);
        p16(&mut out, count.min(0xFFFF) as u16);
        p16(&mut out, count.min(0xFFFF) as u16);
        p32(&mut out, cd_size.min(0xFFFF_FFFF) as u32);
        p32(&mut out, cd_ofs.min(0xFFFF_FFFF) as u32);
        p16(&mut out, 0);
        out.extend_from_slice(&o.suffix);
        out
    }

    fn open(b: &[u8]) -> Result<ZipArchive> {
        ZipArchive::open(&mut Cursor::new(b), b.len() as u64, &Limits::default())
    }

    fn kinds(a: &ZipArchive) -> Vec<ContainerIssueKind> {
        a.issues.iter().map(|i| i.kind).collect()
    }

    fn read_all(a: &ZipArchive, b: &[u8], idx: usize) -> Result<Vec<u8>> {
        a.read_member(&mut Cursor::new(b), idx, 1 << 30)
    }

    fn python_ok() -> bool {
        std::process::Command::new("python3")
            .arg("-c")
            .arg("import zipfile")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Run a Python snippet with `P` bound to a fresh temp path; returns the file's bytes.
    fn python_zip(script: &str) -> Option<Vec<u8>> {
        if !python_ok() {
            eprintln!("python3 not available; skipping");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.zip");
        let full = format!("import zipfile, sys\nP = sys.argv[1]\n{script}");
        let st = std::process::Command::new("python3")
            .arg("-c")
            .arg(&full)
            .arg(&p)
            .status()
            .unwrap();
        assert!(st.success(), "python failed");
        Some(std::fs::read(&p).unwrap())
    }

    /// Python's zipfile must accept what the builder writes (keeps the builder honest).
    fn python_reads(b: &[u8]) -> Option<String> {
        if !python_ok() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.zip");
        std::fs::write(&p, b).unwrap();
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(
                "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1])\n\
                 print(z.testzip(), [ (i.filename, len(z.read(i))) for i in z.infolist()])",
            )
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python zipfile rejects the built archive: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn torch_like() -> Vec<M> {
        vec![
            tm("sd/data.pkl", b"\x80\x02}q\x00."),
            tm("sd/.format_version", b"1"),
            tm("sd/.storage_alignment", b"64"),
            tm("sd/byteorder", b"little"),
            tm("sd/data/0", &[1u8; 24]),
            tm("sd/data/1", &[2u8; 8]),
            tm("sd/version", b"3\n"),
            tm(
                "sd/.data/serialization_id",
                b"0123456789012345678901234567890123456789",
            ),
        ]
    }

    // ---------- tests ----------

    #[test]
    fn prefix_detection() {
        assert!(is_zip_prefix(b"PK\x03\x04rest"));
        assert!(!is_zip_prefix(b"PK\x05\x06"));
        assert!(!is_zip_prefix(b"PK"));
    }

    #[test]
    fn torch_layout_fb_alignment_zip64_end() {
        let b = build(
            &torch_like(),
            &Opts {
                zip64_end: true,
                ..Opts::default()
            },
        );
        if let Some(s) = python_reads(&b) {
            assert!(s.starts_with("None"), "{s}");
        }
        let a = open(&b).unwrap();
        assert!(a.issues.is_empty(), "{:?}", a.issues);
        assert_eq!(a.root(), Some("sd"));
        assert_eq!(a.entries.len(), 8);
        for (i, e) in a.entries.iter().enumerate() {
            assert_eq!(e.data_offset % 64, 0, "{}", e.name);
            assert_eq!(e.flags, 0x0808);
            assert_eq!(e.local_name, e.name);
            assert_eq!(read_all(&a, &b, i).unwrap(), torch_like()[i].data);
        }
        let i = a.find_record("data/0").unwrap();
        assert_eq!(a.entries[i].name, "sd/data/0");
        assert_eq!(a.find("sd/data.pkl"), Some(0));
        assert_eq!(a.find("sd/missing"), None);
        let mut a = a;
        a.check_crcs(&mut Cursor::new(&b)).unwrap();
        assert!(a.issues.is_empty());
    }

    #[test]
    fn python_stored_and_deflated() {
        let Some(b) = python_zip(
            "z = zipfile.ZipFile(P, 'w')\n\
             z.writestr('arc/stored', b'hello world' * 10, compress_type=zipfile.ZIP_STORED)\n\
             z.writestr('arc/deflated', bytes(range(256)) * 300, compress_type=zipfile.ZIP_DEFLATED)\n\
             z.writestr('arc/empty', b'', compress_type=zipfile.ZIP_DEFLATED)\n\
             z.close()",
        ) else {
            return;
        };
        let mut a = open(&b).unwrap();
        assert!(a.issues.is_empty(), "{:?}", a.issues);
        assert_eq!(a.entries[1].method, 8);
        assert_eq!(read_all(&a, &b, 0).unwrap(), b"hello world".repeat(10));
        let want: Vec<u8> = (0..=255u8).collect::<Vec<_>>().repeat(300);
        assert_eq!(read_all(&a, &b, 1).unwrap(), want);
        assert_eq!(read_all(&a, &b, 2).unwrap(), b"");
        // Streaming with a tiny buffer gives the same bytes.
        let mut cur = Cursor::new(&b);
        let mut rd = a.open_member(&mut cur, 1).unwrap();
        let mut got = Vec::new();
        let mut small = [0u8; 7];
        loop {
            let n = rd.read(&mut small).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, want);
        a.check_crcs(&mut Cursor::new(&b)).unwrap();
        assert!(a.issues.is_empty());
    }

    #[test]
    fn python_force_zip64_local_headers() {
        let Some(b) = python_zip(
            "z = zipfile.ZipFile(P, 'w', compression=zipfile.ZIP_DEFLATED)\n\
             with z.open('root/big', 'w', force_zip64=True) as f: f.write(b'abc' * 1000)\n\
             with z.open('root/st', 'w', force_zip64=True) as f: f.write(b'xyz')\n\
             z.close()",
        ) else {
            return;
        };
        let a = open(&b).unwrap();
        assert_eq!(read_all(&a, &b, 0).unwrap(), b"abc".repeat(1000));
        assert_eq!(read_all(&a, &b, 1).unwrap(), b"xyz");
    }

    #[test]
    fn zip64_central_extra_fields() {
        let mut ms = torch_like();
        for x in &mut ms {
            x.zip64_central = true;
        }
        ms.push(M {
            zip64_central: true,
            ..deflated("sd/code", &b"def f(): pass\n".repeat(50))
        });
        let b = build(
            &ms,
            &Opts {
                zip64_end: true,
                ..Opts::default()
            },
        );
        if let Some(s) = python_reads(&b) {
            assert!(s.starts_with("None"), "{s}");
        }
        let a = open(&b).unwrap();
        assert!(a.issues.is_empty(), "{:?}", a.issues);
        for (i, x) in ms.iter().enumerate() {
            assert_eq!(read_all(&a, &b, i).unwrap(), x.data);
            assert_eq!(a.entries[i].uncompressed_size, x.data.len() as u64);
        }
    }

    #[test]
    fn zip64_extra_only_for_saturated_fields() {
        // Only the local-header offset is 0xFFFFFFFF: the extra holds just that one value.
        let mut b = build(&[tm("r/a", b"data")], &Opts::default());
        // Patch: central lho -> 0xFFFFFFFF and append an extra field carrying the real offset (0).
        let cd = b.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        b[cd + 42..cd + 46].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut extra = Vec::new();
        p16(&mut extra, 1);
        p16(&mut extra, 8);
        p64(&mut extra, 0);
        b[cd + 30..cd + 32].copy_from_slice(&12u16.to_le_bytes());
        let name_end = cd + 46 + 3;
        b.splice(name_end..name_end, extra);
        // Fix end record: directory size grew by 12.
        let e = b.len() - 22;
        let sz = u32::from_le_bytes(b[e + 12..e + 16].try_into().unwrap()) + 12;
        b[e + 12..e + 16].copy_from_slice(&sz.to_le_bytes());
        let a = open(&b).unwrap();
        assert_eq!(a.entries[0].local_header_offset, 0);
        assert_eq!(read_all(&a, &b, 0).unwrap(), b"data");
        // A ZIP64 extra too short for the saturated field is an error.
        let mut bad = b.clone();
        bad[name_end + 2..name_end + 4].copy_from_slice(&4u16.to_le_bytes());
        assert!(open(&bad).is_err());
    }

    /// Names of a torch 2.15 `torch.save` of a state dict with `k` tensors, in record order.
    fn torch_names(k: usize) -> Vec<String> {
        let mut v: Vec<String> = [
            "archive/data.pkl",
            "archive/.format_version",
            "archive/.storage_alignment",
            "archive/byteorder",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend((0..k).map(|i| format!("archive/data/{i}")));
        v.push("archive/version".into());
        v.push("archive/.data/serialization_id".into());
        v
    }

    #[test]
    fn duplicates_resolve_exactly_like_torch() {
        // Observed with torch 2.15.0 (`torch.load(weights_only=True)` on a torch.save output
        // re-zipped with a second `archive/data.pkl` appended or prepended): which copy loads
        // depends on miniz's heap sort, not on "first" or "last".
        // (k tensors, copy torch loaded when appended, when prepended)
        let observed = [
            (0, "first", "last"),
            (1, "last", "last"),
            (2, "first", "last"),
            (3, "last", "last"),
            (4, "first", "first"),
            (5, "first", "last"),
            (6, "first", "first"),
            (7, "first", "first"),
            (8, "first", "first"),
            (9, "last", "last"),
            (10, "last", "last"),
            (11, "last", "last"),
        ];
        for (k, appended, prepended) in observed {
            for (mode, want) in [("append", appended), ("prepend", prepended)] {
                let mut names = torch_names(k);
                if mode == "append" {
                    names.push("archive/data.pkl".into());
                } else {
                    names.insert(0, "archive/data.pkl".into());
                }
                let ms: Vec<M> = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| m(n, format!("{i}").as_bytes()))
                    .collect();
                let b = build(&ms, &Opts::default());
                let a = open(&b).unwrap();
                let dups: Vec<usize> = (0..names.len())
                    .filter(|&i| names[i] == "archive/data.pkl")
                    .collect();
                let expect = if want == "first" { dups[0] } else { dups[1] };
                assert_eq!(a.find_record("data.pkl"), Some(expect), "k={k} {mode}");
                let d = a
                    .issues
                    .iter()
                    .find(|x| x.kind == ContainerIssueKind::DuplicateMember)
                    .unwrap();
                assert!(d.detail.contains(&format!("torch reads entry #{expect}")));
                assert_eq!(a.find_last_exact("archive/data.pkl"), Some(dups[1]));
            }
        }
    }

    #[test]
    fn duplicate_payload_is_the_one_torch_reads() {
        let mut ms = torch_like();
        ms.push(tm("sd/data.pkl", b"EVIL"));
        let b = build(&ms, &Opts::default());
        let a = open(&b).unwrap();
        let i = a.find("sd/data.pkl").unwrap();
        let other = if i == 0 { ms.len() - 1 } else { 0 };
        assert_eq!(read_all(&a, &b, i).unwrap(), ms[i].data);
        assert_ne!(read_all(&a, &b, other).unwrap(), ms[i].data);
    }

    #[test]
    fn lookup_is_case_insensitive_like_miniz() {
        let b = build(
            &[tm("sd/version", b"3\n"), tm("sd/DATA.PKL", b"upper")],
            &Opts::default(),
        );
        let a = open(&b).unwrap();
        // torch's getRecord("data.pkl") finds "sd/DATA.PKL"; Python zipfile would not.
        assert_eq!(a.find_record("data.pkl"), Some(1));
        assert_eq!(a.find_last_exact("sd/data.pkl"), None);

        let b = build(
            &[tm("sd/data.pkl", b"lower"), tm("sd/Data.pkl", b"mixed")],
            &Opts::default(),
        );
        let a = open(&b).unwrap();
        let d = a
            .issues
            .iter()
            .find(|x| x.kind == ContainerIssueKind::DuplicateMember)
            .expect("case-variant duplicate reported");
        assert!(d.detail.contains("case"), "{}", d.detail);
        assert!(a.find("sd/data.pkl").is_some());
    }

    #[test]
    fn miniz_sort_matches_plain_sort_on_distinct_names() {
        let names: Vec<Vec<u8>> = (0..200u32)
            .map(|i| format!("r/data/{}", (i * 7919) % 1000).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = names.iter().map(|n| n.as_slice()).collect();
        let sorted = miniz_sort(&refs);
        for w in sorted.windows(2) {
            assert!(!filename_less(refs[w[1] as usize], refs[w[0] as usize]));
        }
        let mut seen = sorted.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..200).collect::<Vec<u32>>());
    }

    #[test]
    fn three_duplicates_torch_need_not_pick_last() {
        // Whatever miniz picks, find() agrees with the emulation and the issue names it.
        let ms = vec![
            tm("r/data.pkl", b"A"),
            tm("r/data.pkl", b"B"),
            tm("r/data.pkl", b"C"),
            tm("r/version", b"3\n"),
        ];
        let b = build(&ms, &Opts::default());
        let a = open(&b).unwrap();
        let i = a.find("r/data.pkl").unwrap();
        let d = a
            .issues
            .iter()
            .find(|x| x.kind == ContainerIssueKind::DuplicateMember)
            .unwrap();
        assert!(d.detail.contains(&format!("torch reads entry #{i}")));
        assert!(d.detail.contains("the last is #2"));
    }

    #[test]
    fn local_central_name_mismatch() {
        let mut x = tm("sd/data.pkl", b"payload");
        x.local_name = Some(b"sd/innocent.txt".to_vec());
        let b = build(&[x, tm("sd/version", b"3\n")], &Opts::default());
        let a = open(&b).unwrap();
        assert_eq!(a.entries[0].local_name, "sd/innocent.txt");
        assert_eq!(a.entries[0].name, "sd/data.pkl");
        assert_eq!(kinds(&a), vec![ContainerIssueKind::LocalNameMismatch]);
        // Payload offset still uses the local name's length.
        assert_eq!(read_all(&a, &b, 0).unwrap(), b"payload");
    }

    #[test]
    fn local_flags_and_method_differ() {
        let mut x = tm("sd/a", b"x");
        x.local_flags = Some(0x0001);
        x.local_method = Some(8);
        let b = build(&[x], &Opts::default());
        let a = open(&b).unwrap();
        assert_eq!(
            kinds(&a),
            vec![
                ContainerIssueKind::UnusualFlags,
                ContainerIssueKind::UnusualFlags
            ]
        );
    }

    #[test]
    fn crc_mismatch_and_zero_crc() {
        let mut x = tm("sd/data.pkl", b"payload");
        x.crc = Some(0xDEAD_BEEF);
        let mut y = tm("sd/data/0", b"tensor");
        y.crc = Some(0);
        let z = tm("sd/empty", b""); // CRC of nothing is 0: no issue
        let b = build(&[x, y, z], &Opts::default());
        let mut a = open(&b).unwrap();
        assert!(a.issues.is_empty());
        a.check_crcs(&mut Cursor::new(&b)).unwrap();
        let c: Vec<_> = a
            .issues
            .iter()
            .filter(|i| i.kind == ContainerIssueKind::CrcMismatch)
            .collect();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].member.as_deref(), Some("sd/data.pkl"));
        assert!(c[1].detail.contains("set_crc32_options(False)"));
    }

    #[test]
    fn trailing_junk_is_an_issue() {
        let b = build(
            &torch_like(),
            &Opts {
                zip64_end: true,
                suffix: b"junk junk junk".to_vec(),
                ..Opts::default()
            },
        );
        let a = open(&b).unwrap();
        assert_eq!(kinds(&a), vec![ContainerIssueKind::DataAfterEnd]);
        assert!(a.issues[0].detail.starts_with("14 bytes"));
        assert_eq!(read_all(&a, &b, 0).unwrap(), torch_like()[0].data);
    }

    #[test]
    fn last_end_record_wins_like_miniz() {
        // A second central directory + end record appended as "trailing junk" re-labels the
        // first member; miniz uses the last end record in the file.
        let first = build(&[tm("one/data.pkl", b"first")], &Opts::default());
        let mut y = tm("evil/data.pkl", b"first");
        y.lho = Some(0);
        let dir = build(&[y], &Opts::default());
        let cd = dir.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        let mut tail = dir[cd..].to_vec();
        let n = tail.len();
        tail[n - 6..n - 2].copy_from_slice(&(first.len() as u32).to_le_bytes());
        let mut b = first.clone();
        b.extend_from_slice(&tail);
        let a = open(&b).unwrap();
        assert_eq!(a.root(), Some("evil"));
        assert_eq!(a.entries[0].local_name, "one/data.pkl");
        assert!(kinds(&a).contains(&ContainerIssueKind::LocalNameMismatch));
        assert_eq!(read_all(&a, &b, 0).unwrap(), b"first");
    }

    #[test]
    fn prefix_junk_is_refused_but_reported_leniently() {
        let zip = build(&torch_like(), &Opts::default());
        let mut b = b"#!/bin/sh\nexit 0\n".to_vec();
        let pre = b.len() as u64;
        b.extend_from_slice(&zip);
        let e = open(&b).unwrap_err();
        assert!(e.to_string().contains("PK"), "{e}");
        let a = ZipArchive::open_lenient(&mut Cursor::new(&b), b.len() as u64, &Limits::default())
            .unwrap();
        assert!(kinds(&a).contains(&ContainerIssueKind::DataBeforeFirstHeader));
        assert_eq!(a.entries[0].local_header_offset, pre);
        assert_eq!(read_all(&a, &b, 0).unwrap(), torch_like()[0].data);
    }

    #[test]
    fn unreferenced_member_before_first_header() {
        // File starts with a local header the central directory does not reference.
        let mut x = tm("sd/hidden.pkl", b"hidden");
        x.lho = None;
        let full = build(&[x, tm("sd/data.pkl", b"visible")], &Opts::default());
        // Rebuild the directory with only the second entry.
        let a = open(&full).unwrap();
        let second_lho = a.entries[1].local_header_offset;
        let mut y = tm("sd/data.pkl", b"visible");
        y.lho = Some(second_lho);
        let dir_only = build(&[y], &Opts::default());
        // Take the local records of `full` and the directory of `dir_only` (which references second_lho).
        let cd_full = full.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        let cd_only = dir_only
            .windows(4)
            .position(|w| w == b"PK\x01\x02")
            .unwrap();
        let mut b = full[..cd_full].to_vec();
        let mut tail = dir_only[cd_only..].to_vec();
        let n = tail.len();
        tail[n - 6..n - 2].copy_from_slice(&(cd_full as u32).to_le_bytes());
        b.extend_from_slice(&tail);
        let a = open(&b).unwrap();
        assert_eq!(a.entries.len(), 1);
        assert!(kinds(&a).contains(&ContainerIssueKind::DataBeforeFirstHeader));
        assert_eq!(read_all(&a, &b, 0).unwrap(), b"visible");
    }

    #[test]
    fn every_truncation_errors_without_panicking() {
        for zip64 in [false, true] {
            let mut ms = torch_like();
            ms.push(deflated("sd/code", &b"abc".repeat(100)));
            let b = build(
                &ms,
                &Opts {
                    zip64_end: zip64,
                    ..Opts::default()
                },
            );
            for cut in 0..b.len() {
                let t = &b[..cut];
                assert!(open(t).is_err(), "cut at {cut} of {} opened", b.len());
                assert!(ZipArchive::open_lenient(
                    &mut Cursor::new(t),
                    t.len() as u64,
                    &Limits::default()
                )
                .is_err());
            }
            assert!(open(&b).is_ok());
        }
    }

    #[test]
    fn lying_length_is_an_error_not_a_panic() {
        let b = build(&torch_like(), &Opts::default());
        for claimed in [b.len() as u64 + 1, b.len() as u64 + 100_000, u64::MAX] {
            let _ = ZipArchive::open(&mut Cursor::new(&b), claimed, &Limits::default());
        }
    }

    /// Deterministic byte-flip fuzzing: never panic; whatever opens can be read safely.
    #[test]
    fn mutations_never_panic() {
        let mut ms = torch_like();
        ms.push(deflated("sd/code", &b"hello deflate ".repeat(40)));
        ms[1].zip64_central = true;
        let base = build(
            &ms,
            &Opts {
                zip64_end: true,
                ..Opts::default()
            },
        );
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let limits = Limits {
            max_archive_members: 64,
            ..Limits::default()
        };
        for _ in 0..4000 {
            let mut b = base.clone();
            let flips = 1 + rnd() % 4;
            for _ in 0..flips {
                let i = (rnd() % b.len() as u64) as usize;
                b[i] = match rnd() % 4 {
                    0 => 0xFF,
                    1 => 0,
                    _ => rnd() as u8,
                };
            }
            let Ok(mut a) = ZipArchive::open(&mut Cursor::new(&b), b.len() as u64, &limits) else {
                continue;
            };
            for i in 0..a.entries.len() {
                let _ = a.read_member(&mut Cursor::new(&b), i, 1 << 20);
            }
            let _ = a.check_crcs(&mut Cursor::new(&b));
            let _ = a.root();
            let _ = a.find("sd/data.pkl");
        }
    }

    #[test]
    fn bogus_sizes_and_offsets() {
        let ok = build(&[tm("sd/a", b"abc")], &Opts::default());
        let cd = ok.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        let e = ok.len() - 22;
        let patch = |off: usize, val: &[u8]| {
            let mut b = ok.clone();
            b[off..off + val.len()].copy_from_slice(val);
            b
        };
        let cases = [
            ("csize huge", patch(cd + 20, &0xFFFF_FFFEu32.to_le_bytes())),
            ("usize huge", patch(cd + 24, &0xFFFF_FFFEu32.to_le_bytes())),
            ("lho huge", patch(cd + 42, &0xFFFF_FFF0u32.to_le_bytes())),
            (
                "lho saturated no extra",
                patch(cd + 42, &u32::MAX.to_le_bytes()),
            ),
            ("name len huge", patch(cd + 28, &0xFFFFu16.to_le_bytes())),
            ("cd size huge", patch(e + 12, &0xFFFF_FFF0u32.to_le_bytes())),
            (
                "cd offset huge",
                patch(e + 16, &0xFFFF_FFF0u32.to_le_bytes()),
            ),
            ("cd offset wrong", patch(e + 16, &1u32.to_le_bytes())),
            ("count huge", patch(e + 8, &[0xFF, 0xFF, 0xFF, 0xFF])),
            ("count too big for dir", patch(e + 8, &[2, 0, 2, 0])),
            ("multi disk", patch(e + 4, &[1, 0, 0, 0])),
            ("bad local sig", patch(0, b"PK\x03\x05")),
            ("local extra len huge", patch(28, &0xFFFFu16.to_le_bytes())),
            ("method 12", patch(cd + 10, &12u16.to_le_bytes())),
            ("encrypted", patch(cd + 8, &1u16.to_le_bytes())),
            ("patch flag", patch(cd + 8, &0x20u16.to_le_bytes())),
            ("strong enc", patch(cd + 8, &0x40u16.to_le_bytes())),
            ("masked", patch(cd + 8, &0x2000u16.to_le_bytes())),
        ];
        for (what, b) in cases {
            assert!(open(&b).is_err(), "{what} was accepted");
        }
        assert!(matches!(
            open(&patch(cd + 10, &12u16.to_le_bytes())),
            Err(Error::Unsupported { .. })
        ));
        // Unusual but harmless flags are issues.
        let a = open(&patch(cd + 8, &0x1008u16.to_le_bytes())).unwrap();
        assert!(kinds(&a).contains(&ContainerIssueKind::UnusualFlags));
    }

    #[test]
    fn bogus_zip64_records() {
        let ok = build(
            &[tm("sd/a", b"abc")],
            &Opts {
                zip64_end: true,
                ..Opts::default()
            },
        );
        let loc = ok.len() - 22 - 20;
        let z = loc - 56;
        let patch = |off: usize, val: &[u8]| {
            let mut b = ok.clone();
            b[off..off + val.len()].copy_from_slice(val);
            b
        };
        for (what, b) in [
            ("locator past end", patch(loc + 8, &u64::MAX.to_le_bytes())),
            (
                "entries 2^40",
                patch(z + 24, &[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]),
            ),
            ("cd size 2^40", patch(z + 40, &(1u64 << 40).to_le_bytes())),
            ("cd offset max", patch(z + 48, &u64::MAX.to_le_bytes())),
            ("record size 0", patch(z + 4, &0u64.to_le_bytes())),
            ("disks 2", patch(loc + 16, &2u32.to_le_bytes())),
        ] {
            assert!(open(&b).is_err(), "{what} was accepted");
        }
        // Locator pointing at something that is not a ZIP64 record: torch falls back.
        let b = patch(loc + 8, &0u64.to_le_bytes());
        let a = open(&b).unwrap();
        assert!(kinds(&a).contains(&ContainerIssueKind::CentralDirectoryCountMismatch));
        // 32-bit record disagreeing with the ZIP64 one.
        let e = ok.len() - 22;
        let mut b = ok.clone();
        b[e + 8..e + 12].copy_from_slice(&[5, 0, 5, 0]);
        let a = open(&b).unwrap();
        assert_eq!(a.entries.len(), 1);
        assert!(kinds(&a).contains(&ContainerIssueKind::CentralDirectoryCountMismatch));
    }

    #[test]
    fn hidden_central_entries_are_reported() {
        let b = build(
            &[tm("sd/data.pkl", b"seen")],
            &Opts {
                hidden: vec![tm("sd/data.pkl", b"hidden")],
                ..Opts::default()
            },
        );
        // The end record declares 1 entry but the directory size covers 2.
        let a = open(&b).unwrap();
        assert_eq!(a.entries.len(), 1);
        assert!(kinds(&a).contains(&ContainerIssueKind::CentralDirectoryCountMismatch));
        assert_eq!(read_all(&a, &b, 0).unwrap(), b"seen");
    }

    #[test]
    fn entry_count_over_limit() {
        let ms: Vec<M> = (0..10).map(|i| tm(&format!("r/{i}"), b"x")).collect();
        let b = build(&ms, &Opts::default());
        let limits = Limits {
            max_archive_members: 9,
            ..Limits::default()
        };
        let e = ZipArchive::open(&mut Cursor::new(&b), b.len() as u64, &limits).unwrap_err();
        assert!(matches!(
            e,
            Error::Limit {
                limit: "max_archive_members",
                ..
            }
        ));
        let limits = Limits {
            max_archive_members: 10,
            ..Limits::default()
        };
        assert!(ZipArchive::open(&mut Cursor::new(&b), b.len() as u64, &limits).is_ok());
        // A declared count of 65535 with a tiny directory is refused before any allocation.
        let mut b2 = b.clone();
        let e = b2.len() - 22;
        b2[e + 8..e + 12].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(open(&b2).is_err());
    }

    #[test]
    fn deflate_bomb_is_bounded() {
        let zeros = vec![0u8; 50 << 20];
        let bomb = miniz_oxide::deflate::compress_to_vec(&zeros, 9);
        assert!(bomb.len() < 200 << 10);
        // Declared small: the reader stops at the declared size and reports the excess.
        let x = M {
            raw_payload: Some(bomb.clone()),
            usize: Some(4096),
            crc: Some(0),
            ..deflated("sd/data.pkl", b"")
        };
        let b = build(&[x], &Opts::default());
        let a = open(&b).unwrap();
        let mut cur = Cursor::new(&b);
        let mut rd = a.open_member(&mut cur, 0).unwrap();
        let mut out = Vec::new();
        let e = rd.read_to_end(&mut out).unwrap_err();
        assert!(out.len() <= 4096);
        assert!(into_error(e).to_string().contains("more than the declared"));
        // Exact-size reads still see the error.
        let mut rd = a.open_member(&mut cur, 0).unwrap();
        let mut exact = vec![0u8; 4096];
        assert!(rd.read_exact(&mut exact).is_err());
        assert!(matches!(
            a.read_member(&mut Cursor::new(&b), 0, 1 << 20),
            Err(Error::Malformed { .. })
        ));

        // Declared huge: read_member refuses up front, open_member streams only what is asked.
        let x = M {
            raw_payload: Some(bomb),
            usize: Some(1 << 40),
            zip64_central: true,
            ..deflated("sd/data.pkl", b"")
        };
        let b = build(&[x], &Opts::default());
        let a = open(&b).unwrap();
        let e = a.read_member(&mut Cursor::new(&b), 0, 1 << 20).unwrap_err();
        assert!(matches!(
            e,
            Error::Limit {
                limit: "max_inflated_member",
                ..
            }
        ));
        let mut cur = Cursor::new(&b);
        let rd = a.open_member(&mut cur, 0).unwrap();
        let mut sink = Vec::new();
        let n = rd.take(1 << 20).read_to_end(&mut sink).unwrap();
        assert_eq!(n, 1 << 20);
    }

    #[test]
    fn deflate_short_and_truncated_streams() {
        let data = b"some tensor bytes ".repeat(100);
        // Declared larger than the stream produces.
        let x = M {
            usize: Some(data.len() as u64 + 1),
            ..deflated("sd/a", &data)
        };
        let b = build(&[x], &Opts::default());
        let a = open(&b).unwrap();
        let e = read_all(&a, &b, 0).unwrap_err();
        assert!(e.to_string().contains("ends after"), "{e}");
        // Compressed stream cut short (csize smaller than the real stream).
        let full = miniz_oxide::deflate::compress_to_vec(&data, 6);
        let x = M {
            raw_payload: Some(full[..full.len() / 2].to_vec()),
            ..deflated("sd/a", &data)
        };
        let b = build(&[x], &Opts::default());
        let a = open(&b).unwrap();
        let e = read_all(&a, &b, 0).unwrap_err();
        assert!(e.to_string().contains("cut off"), "{e}");
        // Garbage instead of deflate.
        let x = M {
            raw_payload: Some(vec![0xFF; 64]),
            ..deflated("sd/a", &data)
        };
        let b = build(&[x], &Opts::default());
        let a = open(&b).unwrap();
        assert!(read_all(&a, &b, 0).is_err());
        // Empty member whose compressed bytes are not an empty stream.
        let x = M {
            raw_payload: Some(full.clone()),
            usize: Some(0),
            ..deflated("sd/a", b"")
        };
        let b = build(&[x], &Opts::default());
        let a = open(&b).unwrap();
        assert!(a.open_member(&mut Cursor::new(&b), 0).is_err());
    }

    #[test]
    fn stored_size_mismatch_and_phantom_sizes_refused() {
        let x = M {
            usize: Some(2),
            ..tm("sd/a", b"abc")
        };
        assert!(open(&build(&[x], &Opts::default())).is_err());
        let x = M {
            raw_payload: Some(Vec::new()),
            usize: Some(10),
            zip64_central: true,
            ..deflated("sd/a", b"")
        };
        assert!(open(&build(&[x], &Opts::default())).is_err());
    }

    #[test]
    fn roots_paths_and_names() {
        let b = build(
            &[
                tm("sd/data.pkl", b"a"),
                tm("other/data.pkl", b"b"),
                tm("sd/../../etc/passwd", b"c"),
                tm("/abs", b"d"),
                tm("sd\\win", b"e"),
                m("sd/nul\0.pkl", b"f"),
                m("C:/x", b"g"),
            ],
            &Opts::default(),
        );
        let a = open(&b).unwrap();
        let k = kinds(&a);
        assert_eq!(
            k.iter()
                .filter(|x| **x == ContainerIssueKind::MixedRoots)
                .count(),
            4
        );
        assert_eq!(
            k.iter()
                .filter(|x| **x == ContainerIssueKind::SuspiciousPath)
                .count(),
            5
        );
        // Non-UTF-8 name.
        let x = M {
            name: b"sd/\xff\xfe.pkl".to_vec(),
            ..tm("", b"x")
        };
        let b = build(&[x], &Opts::default());
        let a = open(&b).unwrap();
        assert_eq!(kinds(&a), vec![ContainerIssueKind::NonUtf8Name]);
        assert_eq!(a.root(), Some("sd"));
        assert_eq!(a.find_record(".pkl"), None);
        // First entry not in a folder: torch refuses; root() is None.
        let b = build(&[tm("data.pkl", b"x")], &Opts::default());
        let a = open(&b).unwrap();
        assert_eq!(a.root(), None);
        assert_eq!(kinds(&a), vec![ContainerIssueKind::MixedRoots]);
    }

    #[test]
    fn directory_marked_member_is_not_read() {
        let x = M {
            ext_attr: 0x10,
            ..tm("sd/data.pkl", b"real pickle")
        };
        let b = build(&[x], &Opts::default());
        let mut a = open(&b).unwrap();
        assert!(kinds(&a).contains(&ContainerIssueKind::UnusualFlags));
        assert!(a.entries[0].is_directory());
        assert!(a.open_member(&mut Cursor::new(&b), 0).is_err());
        a.check_crcs(&mut Cursor::new(&b)).unwrap();
        // Plain empty directory entries are fine.
        let b = build(&[tm("sd/", b""), tm("sd/x", b"1")], &Opts::default());
        let a = open(&b).unwrap();
        assert!(a.issues.is_empty(), "{:?}", a.issues);
        assert_eq!(read_all(&a, &b, 0).unwrap(), b"");
    }

    #[test]
    fn overlapping_members_are_reported() {
        let full = build(&[tm("sd/a", b"shared bytes")], &Opts::default());
        let mut y = tm("sd/b", b"shared bytes");
        y.lho = Some(0);
        // Two entries whose local header offsets are both 0, local name "sd/a".
        let mut x = tm("sd/a", b"shared bytes");
        x.lho = Some(0);
        let dir = build(&[x, y], &Opts::default());
        let cd_dir = dir.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        let cd_full = full.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        let mut b = full[..cd_full].to_vec();
        let mut tail = dir[cd_dir..].to_vec();
        let n = tail.len();
        tail[n - 6..n - 2].copy_from_slice(&(cd_full as u32).to_le_bytes());
        b.extend_from_slice(&tail);
        let a = open(&b).unwrap();
        assert!(
            a.issues
                .iter()
                .any(|i| i.kind == ContainerIssueKind::DuplicateMember
                    && i.detail.contains("overlap"))
        );
        assert!(kinds(&a).contains(&ContainerIssueKind::LocalNameMismatch));
    }

    #[test]
    fn many_issues_are_capped() {
        let ms: Vec<M> = (0..300).map(|i| tm(&format!("r{i}/x"), b"x")).collect();
        let b = build(&ms, &Opts::default());
        let a = open(&b).unwrap();
        let mixed = a
            .issues
            .iter()
            .filter(|i| i.kind == ContainerIssueKind::MixedRoots)
            .count();
        assert_eq!(mixed, MAX_ISSUES_PER_KIND + 1);
        assert!(a.issues.last().unwrap().detail.contains("199 more"));
    }

    #[test]
    fn eocd_scan_window_matches_miniz() {
        // miniz gives up once it has scanned back 65535+22 bytes (in 4096-byte chunks).
        assert_eq!(eocd_search_start(100), 0);
        let s = eocd_search_start(1 << 20);
        assert!((1u64 << 20) - s >= 65557 && (1u64 << 20) - s < 65557 + 4096);
        let mut b = build(&[tm("sd/a", b"x")], &Opts::default());
        b.extend(std::iter::repeat_n(0u8, 60_000));
        assert!(open(&b).is_ok());
        b.extend(std::iter::repeat_n(0u8, 20_000));
        assert!(open(&b).is_err());
    }

    #[test]
    fn issue_serialises() {
        let i = ContainerIssue {
            kind: ContainerIssueKind::CrcMismatch,
            member: Some("a".into()),
            detail: "d".into(),
        };
        let s = serde_json::to_string(&i).unwrap();
        assert_eq!(s, r#"{"kind":"CrcMismatch","member":"a","detail":"d"}"#);
    }
}
