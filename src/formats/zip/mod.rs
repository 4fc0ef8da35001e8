//! A hostile-input-safe ZIP reader with the rules of the two readers that load models from zip
//! files: torch's miniz reader (`torch.load`, `torch.jit.load`) and CPython's `zipfile`
//! (`numpy.load` of `.npz`). The same bytes can be a different archive to each of them, so an
//! archive is opened for one [`Dialect`] and reads exactly what that loader reads; everything
//! another reader could see differently is reported as a [`ContainerIssue`].
//!
//! One file per on-disk structure and rule set:
//!
//! | file | what |
//! |---|---|
//! | [`end`] | the end-of-central-directory record, the ZIP64 locator and end record, and how each reader finds them |
//! | [`central`] | central directory file headers and the ZIP64 extended information field |
//! | [`local`] | local file headers (where a member's bytes start) |
//! | [`lookup`] | which member a name selects: miniz's case-insensitive binary search, torch's record list, CPython's `NameToInfo` |
//! | [`member`] | reading a member's bytes (stored, or inflated to exactly the declared size) |
//! | [`issues`] | container issues (findings) |
//!
//! The rules are written up, with the upstream source they come from, in
//! `docs/containers.md`. Everything read from the file is bounds-checked before use;
//! allocations are bounded by [`Limits::max_archive_members`] (entries, and at most 1 KiB of
//! name bytes per allowed member), by the caller's `max` in [`ZipArchive::read_member`], or are
//! fixed-size buffers.

mod central;
mod end;
mod issues;
mod local;
mod lookup;
mod member;
#[cfg(test)]
mod tests;

pub use issues::{ContainerIssue, ContainerIssueKind};
pub use member::{into_error, MemberReader};

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use crate::error::{Error, Location, Result};
use crate::limits::Limits;
use central::{CentralHeader, Sizes, CENTRAL_HEADER_LEN, SIG_CENTRAL};
use issues::{suspicious_path, Issues, ISSUE_KINDS};
use local::{LocalHeader, LOCAL_HEADER_LEN};

/// Whose rules an archive is read by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// torch's `PyTorchStreamReader` over miniz (`caffe2/serialize/inline_container.cc`,
    /// `third_party/miniz-3.0.2/miniz.c`).
    Miniz,
    /// CPython's `zipfile.ZipFile` (3.11), which `numpy.load` uses for `.npz` files.
    CPython,
}

/// General-purpose flag bits: encrypted, compressed patch data, strong encryption (refused
/// when a member is read, by both readers), masked local directory (miniz refuses the archive).
const FLAG_ENCRYPTED: u16 = 0x0001;
const FLAG_PATCH: u16 = 0x0020;
const FLAG_STRONG_ENCRYPTION: u16 = 0x0040;
const FLAG_MASKED_LOCAL: u16 = 0x2000;
const FLAGS_UNREADABLE: u16 = FLAG_ENCRYPTED | FLAG_PATCH | FLAG_STRONG_ENCRYPTION;
/// Bits any ordinary writer sets: data descriptor (torch always), UTF-8 names (torch always).
const FLAGS_ORDINARY: u16 = 0x0008 | 0x0800;
/// Deflate compression-option bits (only meaningful for method 8).
const FLAGS_DEFLATE_OPTIONS: u16 = 0x0006;

const METHOD_STORED: u16 = 0;
const METHOD_DEFLATE: u16 = 8;

/// Name bytes (central + local) allowed per permitted archive member.
const NAME_BYTES_PER_MEMBER: u64 = 1024;

/// CPython's `MAX_EXTRACT_VERSION`: a higher "version needed" is NotImplementedError.
const CPYTHON_MAX_EXTRACT_VERSION: u8 = 63;

/// True when the first four bytes are a local file header signature (`PK\x03\x04`); this is the
/// whole of torch's `_is_zipfile` test.
pub fn is_zip_prefix(first4: &[u8]) -> bool {
    first4.len() >= 4 && first4[..4] == *b"PK\x03\x04"
}

/// One central-directory entry, with the local-header facts needed to read it.
#[derive(Debug, Clone)]
pub struct ZipEntry {
    /// The name: lossy UTF-8 of the stored bytes (miniz), or the name CPython gives the entry
    /// (decoded, cut at its first NUL).
    pub name: String,
    /// Name in the local header (lossy UTF-8).
    pub local_name: String,
    local_raw_name: Vec<u8>,
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
    /// Absolute offset of the member's bytes in the file (0 when the local header is unusable).
    pub data_offset: u64,
    raw_name: Vec<u8>,
    external_attr: u32,
    /// Why the local header cannot be used (the loader fails when it reads this member).
    local_error: Option<String>,
    /// CPython: why newer `zipfile`s refuse to open it ("Overlapped entries").
    overlap: Option<String>,
    local_flags: u16,
    local_method: u16,
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
    pub dialect: Dialect,
    /// Entry indices in miniz's heap-sorted order (for [`ZipArchive::find`]).
    sorted: Vec<u32>,
    issue_counts: [usize; ISSUE_KINDS],
    /// CPython: refuse members newer `zipfile`s refuse as overlapping (the default).
    refuse_overlaps: bool,
}

pub(super) fn malformed_at(msg: impl Into<String>, offset: u64) -> Error {
    Error::Malformed {
        msg: msg.into(),
        loc: Location {
            offset: Some(offset),
            ..Location::default()
        },
    }
}

pub(super) fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
pub(super) fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
pub(super) fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

pub(super) fn read_at<R: Read + Seek>(
    r: &mut R,
    off: u64,
    buf: &mut [u8],
    what: &str,
) -> Result<()> {
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

/// A central directory entry as read, before its local header is looked at.
struct CentralRecord {
    header: CentralHeader,
    sizes: Sizes,
    name: Vec<u8>,
    /// CPython's `(orig_filename, filename)`.
    py_names: Option<(String, String)>,
}

/// The per-archive byte budget for member names.
struct NameBudget {
    left: u64,
    total: u64,
}

impl NameBudget {
    fn new(limits: &Limits) -> NameBudget {
        let total = (limits.max_archive_members as u64).saturating_mul(NAME_BYTES_PER_MEMBER);
        NameBudget { left: total, total }
    }

    fn charge(&mut self, n: u64) -> Result<()> {
        self.left = self.left.checked_sub(n).ok_or_else(|| {
            Error::limit(
                "max_archive_members",
                format!(
                    "member names exceed {} bytes ({NAME_BYTES_PER_MEMBER} per allowed member)",
                    self.total
                ),
            )
        })?;
        Ok(())
    }
}

impl ZipArchive {
    /// Open the archive the way `torch.load` does (miniz). Refuses a file that does not start
    /// with `PK\x03\x04`, as torch does.
    pub fn open<R: Read + Seek>(r: &mut R, len: u64, limits: &Limits) -> Result<ZipArchive> {
        Self::open_miniz(r, len, limits, false)
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
        Self::open_miniz(r, len, limits, true)
    }

    /// Open the archive the way `numpy.load` does for an `.npz` (CPython's `zipfile`).
    pub fn open_cpython<R: Read + Seek>(
        r: &mut R,
        len: u64,
        limits: &Limits,
    ) -> Result<ZipArchive> {
        let mut list = Vec::new();
        let mut counts = [0usize; ISSUE_KINDS];
        let mut issues = Issues {
            list: &mut list,
            counts: &mut counts,
        };
        let end = end::cpython(r, len)?;
        // "concat": how far the archive was shifted by bytes before it (zipfile adds it to
        // every offset it reads).
        let z64 = if end.zip64 {
            i128::from(end::ZIP64_EOCD_LEN + end::ZIP64_LOCATOR_LEN)
        } else {
            0
        };
        let concat =
            i128::from(end.eocd_pos) - i128::from(end.cd_size) - i128::from(end.cd_offset) - z64;
        let start_dir = i128::from(end.cd_offset) + concat;
        if start_dir < 0 {
            return Err(Error::malformed(
                "numpy's zip reader (Python zipfile) refuses this archive: bad offset for the central directory",
            ));
        }
        let start_dir = start_dir as u64; // ≤ eocd_pos
        let records = Self::cpython_directory(r, len, start_dir, end.cd_size, limits)?;
        let mut entries = Vec::with_capacity(records.len());
        let mut offsets = Vec::with_capacity(records.len());
        for rec in records {
            let offset = i128::from(rec.sizes.local_offset) + concat;
            offsets.push(offset);
            entries.push(Self::resolve_local(r, len, rec, offset, Dialect::CPython)?);
        }
        Self::cpython_overlaps(&mut entries, &offsets, start_dir);
        if concat > 0 {
            issues.push(
                ContainerIssueKind::DataBeforeFirstHeader,
                None,
                format!(
                    "the archive is shifted by {concat} bytes of data before it; Python's zipfile (numpy) \
                     reads it shifted, torch cannot read it"
                ),
            );
        }
        let end_of_records = end.eocd_pos + end::EOCD_LEN;
        if end_of_records < len {
            issues.push(
                ContainerIssueKind::DataAfterEnd,
                None,
                format!(
                    "{} bytes after the end-of-central-directory record at offset {}",
                    len - end_of_records,
                    end.eocd_pos
                ),
            );
        }
        Ok(Self::finish(
            entries,
            Dialect::CPython,
            list,
            counts,
            start_dir,
            start_dir + end.cd_size,
        ))
    }

    /// `ZipFile.open`'s "Overlapped entries" refusal (upstream since 3.12 and in the 3.11
    /// security releases, and in Debian's patched 3.11.2; older ones such as 3.11.7 lack it and
    /// read such members): `_RealGetContents` gives each entry an end, the next local header
    /// offset above its own (entries sorted by offset, highest first, ties kept in directory
    /// order) or the central directory's start for the highest; `open` refuses an entry whose
    /// data (from where its local header says it starts) runs past that end. Two entries sharing
    /// a local header therefore fail, all but the first of them in directory order.
    fn cpython_overlaps(entries: &mut [ZipEntry], offsets: &[i128], start_dir: u64) {
        let mut order: Vec<usize> = (0..entries.len()).collect();
        // stable: equal offsets keep directory order, as Python's sorted(..., reverse=True) does
        order.sort_by(|&a, &b| offsets[b].cmp(&offsets[a]));
        let mut end = i128::from(start_dir);
        for i in order {
            let e = &mut entries[i];
            if e.local_error.is_none()
                && i128::from(e.data_offset) + i128::from(e.compressed_size) > end
            {
                e.overlap = Some(format!(
                    "its data [{}, {}) runs past {end}, where the next member or the central \
                     directory starts: numpy's zip reader (Python zipfile) raises \"Overlapped \
                     entries\"",
                    e.data_offset,
                    e.data_offset + e.compressed_size
                ));
            }
            end = offsets[i];
        }
    }

    /// CPython's central directory walk: entries until `cd_size` bytes are consumed.
    fn cpython_directory<R: Read + Seek>(
        r: &mut R,
        len: u64,
        start: u64,
        cd_size: u64,
        limits: &Limits,
    ) -> Result<Vec<CentralRecord>> {
        let refuse = |why: String| {
            Error::malformed(format!(
                "numpy's zip reader (Python zipfile) refuses this archive: {why}"
            ))
        };
        // zipfile reads min(cd_size, what the file holds) bytes and parses that buffer
        let avail = len.saturating_sub(start).min(cd_size);
        r.seek(SeekFrom::Start(start))?;
        let mut cd = BufReader::with_capacity(64 * 1024, (&mut *r).take(avail));
        let mut budget = NameBudget::new(limits);
        let mut out = Vec::new();
        let mut total = 0u64;
        while total < cd_size {
            if out.len() >= limits.max_archive_members {
                return Err(Error::limit(
                    "max_archive_members",
                    format!(
                        "more than {} central directory entries",
                        limits.max_archive_members
                    ),
                ));
            }
            let mut h = [0u8; CENTRAL_HEADER_LEN as usize];
            if cd.read_exact(&mut h).is_err() {
                return Err(refuse("truncated central directory".into()));
            }
            let header = CentralHeader::parse(&h)
                .ok_or_else(|| refuse("bad magic number for the central directory".into()))?;
            budget.charge(u64::from(header.name_len))?;
            let mut name = vec![0u8; usize::from(header.name_len)];
            let mut extra = vec![0u8; usize::from(header.extra_len)];
            let mut comment = vec![0u8; usize::from(header.comment_len)];
            if cd.read_exact(&mut name).is_err()
                || cd.read_exact(&mut extra).is_err()
                || cd.read_exact(&mut comment).is_err()
            {
                return Err(refuse(
                    "a central directory entry runs past the bytes zipfile reads (it would take a \
                     shortened name)"
                        .into(),
                ));
            }
            let py_names = lookup::cpython_name(&name, header.flags)?;
            if (header.version_needed & 0xFF) as u8 > CPYTHON_MAX_EXTRACT_VERSION {
                return Err(refuse(format!(
                    "entry {:?} needs zip version {} (NotImplementedError)",
                    py_names.0,
                    header.version_needed & 0xFF
                )));
            }
            let sizes = central::cpython_sizes(&header, &extra)
                .map_err(|m| refuse(format!("entry {:?}: {m}", py_names.0)))?;
            total += header.total_len();
            out.push(CentralRecord {
                header,
                sizes,
                name,
                py_names: Some(py_names),
            });
        }
        Ok(out)
    }

    fn open_miniz<R: Read + Seek>(
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

        let end = end::miniz(r, len, lenient, &mut issues)?;
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
        if end.total_files > 0 && lenient {
            let mut sig = [0u8; 4];
            read_at(r, end.cd_offset, &mut sig, "central directory")?;
            if le32(&sig, 0) != SIG_CENTRAL {
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
        let (records, hidden) = Self::miniz_directory(r, len, &end, cd_start, limits)?;
        if hidden {
            issues.push(
                ContainerIssueKind::CentralDirectoryCountMismatch,
                None,
                format!(
                    "central directory holds more entries than the {} the end record declares; \
                     torch ignores the extra ones, other readers may not",
                    end.total_files
                ),
            );
        }
        let mut entries = Vec::with_capacity(records.len());
        for rec in records {
            let offset = i128::from(rec.sizes.local_offset) + i128::from(base);
            entries.push(Self::resolve_local(r, len, rec, offset, Dialect::Miniz)?);
        }
        let mut archive = Self::finish(
            entries,
            Dialect::Miniz,
            list,
            counts,
            cd_start,
            cd_end.saturating_add(base),
        );
        if base > 0 {
            let mut issues = Issues {
                list: &mut archive.issues,
                counts: &mut archive.issue_counts,
            };
            issues.push(
                ContainerIssueKind::DataBeforeFirstHeader,
                None,
                format!(
                    "archive offsets are shifted by {base} bytes of prepended data; torch refuses this file"
                ),
            );
        }
        Ok(archive)
    }

    /// miniz's central directory walk: exactly `total_files` entries with its checks
    /// (`mz_zip_reader_read_central_dir`). Returns the entries and whether another entry
    /// follows them inside the directory (other readers may list it).
    fn miniz_directory<R: Read + Seek>(
        r: &mut R,
        len: u64,
        end: &end::EndRecords,
        cd_start: u64,
        limits: &Limits,
    ) -> Result<(Vec<CentralRecord>, bool)> {
        let total = end.total_files as usize; // ≤ max_archive_members, a usize
        let mut budget = NameBudget::new(limits);
        let mut out: Vec<CentralRecord> = Vec::with_capacity(total);
        let mut remaining = end.cd_size;
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
            let Some(header) = CentralHeader::parse(&h) else {
                return Err(if i == 0 {
                    malformed_at(
                        "no central directory header where the end record points",
                        cur,
                    )
                } else {
                    truncated()
                });
            };
            let entry_len = header.total_len();
            if entry_len > remaining {
                return Err(malformed_at(
                    format!("central directory entry {i} overruns the central directory"),
                    cur,
                ));
            }
            budget.charge(u64::from(header.name_len))?;
            let mut name = vec![0u8; usize::from(header.name_len)];
            cd.read_exact(&mut name)
                .map_err(|e| eof_error(e, "central directory", cur))?;
            let mut extra = vec![0u8; usize::from(header.extra_len)];
            cd.read_exact(&mut extra)
                .map_err(|e| eof_error(e, "central directory", cur))?;
            let comment_len = u64::from(header.comment_len);
            if comment_len > 0 {
                let copied = io::copy(&mut (&mut cd).take(comment_len), &mut io::sink())?;
                if copied != comment_len {
                    return Err(malformed_at("file ends inside the central directory", cur));
                }
            }
            let shown = lossy(&name);
            let at = |e: Error| e.at_member(&shown);
            let sizes =
                central::miniz_sizes(&header, &extra).map_err(|m| at(malformed_at(m, cur)))?;
            if sizes.uncompressed > 0 && sizes.compressed == 0 {
                return Err(at(malformed_at(
                    format!(
                        "member declares {} uncompressed bytes but no compressed bytes",
                        sizes.uncompressed
                    ),
                    cur,
                )));
            }
            if header.disk == u16::MAX
                || (u32::from(header.disk) != end.num_this_disk && header.disk != 1)
            {
                return Err(at(Error::unsupported(format!(
                    "member on disk {} of a multi-disk archive",
                    header.disk
                ))));
            }
            if header.flags & FLAG_MASKED_LOCAL != 0 {
                return Err(at(Error::unsupported(format!(
                    "member {shown:?} has general-purpose flags {:#06x} (masked local headers); torch refuses the archive",
                    header.flags
                ))));
            }
            if header.method == METHOD_STORED && sizes.compressed != sizes.uncompressed {
                return Err(at(malformed_at(
                    format!(
                        "stored member has compressed size {} but uncompressed size {}",
                        sizes.compressed, sizes.uncompressed
                    ),
                    cur,
                )));
            }
            if sizes.compressed != u64::from(u32::MAX)
                && sizes
                    .local_offset
                    .checked_add(LOCAL_HEADER_LEN)
                    .and_then(|x| x.checked_add(sizes.compressed))
                    .is_none_or(|e| e > len)
            {
                return Err(at(malformed_at(
                    format!(
                        "member data at local header {} (+{} bytes) extends past the end of the {len}-byte file",
                        sizes.local_offset, sizes.compressed
                    ),
                    cur,
                )));
            }
            out.push(CentralRecord {
                header,
                sizes,
                name,
                py_names: None,
            });
            remaining -= entry_len;
            cur += entry_len;
        }
        let mut hidden = false;
        if remaining >= 4 {
            let mut sig = [0u8; 4];
            if cd.read_exact(&mut sig).is_ok() && le32(&sig, 0) == SIG_CENTRAL {
                hidden = true;
            }
        }
        Ok((out, hidden))
    }

    /// The entry with its local header read (at `offset`, already shifted by any prefix).
    /// A local header the loader cannot use is kept as the entry's error: the loader fails
    /// only when it reads that member.
    fn resolve_local<R: Read + Seek>(
        r: &mut R,
        len: u64,
        rec: CentralRecord,
        offset: i128,
        dialect: Dialect,
    ) -> Result<ZipEntry> {
        let CentralRecord {
            header,
            sizes,
            name,
            py_names,
        } = rec;
        let (shown, py_orig) = match py_names {
            Some((orig, cut)) => (cut, Some(orig)),
            None => (lossy(&name), None),
        };
        let mut entry = ZipEntry {
            name: shown,
            local_name: String::new(),
            local_raw_name: Vec::new(),
            method: header.method,
            flags: header.flags,
            crc32: header.crc32,
            compressed_size: sizes.compressed,
            uncompressed_size: sizes.uncompressed,
            local_header_offset: u64::try_from(offset).unwrap_or(0),
            data_offset: 0,
            raw_name: name,
            external_attr: header.external_attr,
            local_error: None,
            overlap: None,
            local_flags: header.flags,
            local_method: header.method,
        };
        let lho = match u64::try_from(offset) {
            Ok(o) if o.checked_add(LOCAL_HEADER_LEN).is_some_and(|e| e <= len) => o,
            _ => {
                entry.local_error = Some(format!(
                    "local header offset {offset} is outside the {len}-byte file"
                ));
                return Ok(entry);
            }
        };
        let mut h = [0u8; LOCAL_HEADER_LEN as usize];
        read_at(r, lho, &mut h, "local header")?;
        let Some(local) = LocalHeader::parse(&h) else {
            entry.local_error = Some(format!("no local file header signature at offset {lho}"));
            return Ok(entry);
        };
        let data_offset = local.data_offset(lho);
        if data_offset > len {
            entry.local_error =
                Some("local header name/extra fields run past the end of the file".into());
            return Ok(entry);
        }
        let data_end = add(data_offset, entry.compressed_size, "member data")?;
        if data_end > len {
            entry.local_error = Some(format!(
                "member data [{data_offset}, {data_end}) extends past the end of the {len}-byte file"
            ));
            return Ok(entry);
        }
        let mut local_name = vec![0u8; usize::from(local.name_len)];
        read_at(
            r,
            lho + LOCAL_HEADER_LEN,
            &mut local_name,
            "local header name",
        )?;
        if dialect == Dialect::CPython {
            // ZipFile.open: the local name, decoded by the LOCAL flags, must equal the central
            // orig_filename; patch and strong-encryption flags are NotImplementedError.
            let local_decoded = lookup::cpython_decode(&local_name, local.flags);
            if let (Some(_), Err(e)) = (&py_orig, &local_decoded) {
                entry.local_error = Some(format!("local header name: {e}"));
            }
            let same = match (&py_orig, &local_decoded) {
                (Some(orig), Ok(local)) => local == orig,
                _ => true,
            };
            if !same {
                entry.local_error = Some(format!(
                    "the local header names it {:?}: numpy's zip reader (Python zipfile) raises \
                     \"File name in directory and header differ\"",
                    lossy(&local_name)
                ));
            }
        }
        entry.local_name = lossy(&local_name);
        entry.local_raw_name = local_name;
        entry.data_offset = data_offset;
        entry.local_flags = local.flags;
        entry.local_method = local.method;
        Ok(entry)
    }

    /// The archive with its lookup order and its issues.
    fn finish(
        entries: Vec<ZipEntry>,
        dialect: Dialect,
        mut list: Vec<ContainerIssue>,
        mut counts: [usize; ISSUE_KINDS],
        cd_start: u64,
        cd_end: u64,
    ) -> ZipArchive {
        let names: Vec<&[u8]> = entries.iter().map(|e| e.raw_name.as_slice()).collect();
        let sorted = lookup::miniz_sort(&names);
        drop(names);
        let archive = ZipArchive {
            entries,
            issues: Vec::new(),
            dialect,
            sorted,
            issue_counts: [0; ISSUE_KINDS],
            refuse_overlaps: true,
        };
        {
            let mut issues = Issues {
                list: &mut list,
                counts: &mut counts,
            };
            for e in &archive.entries {
                archive.entry_issues(e, &mut issues);
            }
            archive.archive_issues(&mut issues, cd_start, cd_end);
            issues.summarise();
        }
        ZipArchive {
            issues: list,
            issue_counts: counts,
            ..archive
        }
    }

    /// What one entry does that ordinary writers do not, or that readers disagree on.
    fn entry_issues(&self, e: &ZipEntry, issues: &mut Issues<'_>) {
        let shown = e.name.as_str();
        if let Some(why) = &e.local_error {
            issues.push(
                ContainerIssueKind::UnusualFlags,
                Some(shown),
                format!("{why} (the loader fails if it reads this member)"),
            );
            return;
        }
        let local_raw = e.local_raw_name.as_slice();
        if local_raw != e.raw_name.as_slice() {
            issues.push(
                ContainerIssueKind::LocalNameMismatch,
                Some(shown),
                format!(
                    "local header at {} names it {:?}; torch uses the central-directory name",
                    e.local_header_offset, e.local_name
                ),
            );
            if let Some(why) = suspicious_path(local_raw) {
                issues.push(
                    ContainerIssueKind::SuspiciousPath,
                    Some(shown),
                    format!("local header name: {why}"),
                );
            }
        }
        if e.local_flags != e.flags {
            issues.push(
                ContainerIssueKind::UnusualFlags,
                Some(shown),
                format!(
                    "local header flags {:#06x} differ from central-directory flags {:#06x} \
                     (the loaders use the central directory)",
                    e.local_flags, e.flags
                ),
            );
        }
        if e.local_method != e.method {
            issues.push(
                ContainerIssueKind::UnusualFlags,
                Some(shown),
                format!(
                    "local header method {} differs from central-directory method {} \
                     (the loaders use the central directory)",
                    e.local_method, e.method
                ),
            );
        }
        let mut ordinary = FLAGS_ORDINARY;
        if e.method == METHOD_DEFLATE {
            ordinary |= FLAGS_DEFLATE_OPTIONS;
        }
        if e.flags & !ordinary != 0 {
            issues.push(
                ContainerIssueKind::UnusualFlags,
                Some(shown),
                format!("unusual general-purpose flags {:#06x}", e.flags),
            );
        }
        if e.method != METHOD_STORED && e.method != METHOD_DEFLATE {
            issues.push(
                ContainerIssueKind::UnusualFlags,
                Some(shown),
                format!(
                    "compression method {} (only 0 stored and 8 deflate are read)",
                    e.method
                ),
            );
        }
        if e.is_directory() && (e.compressed_size > 0 || e.uncompressed_size > 0) {
            issues.push(
                ContainerIssueKind::UnusualFlags,
                Some(shown),
                format!(
                    "member is marked as a directory (name ending in '/' or DOS attribute, external \
                     attributes {:#010x}) but has {} bytes; torch does not extract them",
                    e.external_attr, e.uncompressed_size
                ),
            );
        }
        if std::str::from_utf8(&e.raw_name).is_err() {
            issues.push(
                ContainerIssueKind::NonUtf8Name,
                Some(shown),
                "central-directory name is not valid UTF-8".to_string(),
            );
        }
        if let Some(why) = suspicious_path(&e.raw_name) {
            issues.push(
                ContainerIssueKind::SuspiciousPath,
                Some(shown),
                why.to_string(),
            );
        }
    }

    /// Whole-archive findings: roots, duplicates, overlaps, prefix bytes.
    fn archive_issues(&self, issues: &mut Issues<'_>, cd_start: u64, cd_end: u64) {
        if self.dialect == Dialect::Miniz {
            // Roots (torch's init and getAllRecords).
            if let Some(first) = self.entries.first() {
                match first.raw_name.iter().position(|&c| c == b'/') {
                    None => issues.push(
                        ContainerIssueKind::MixedRoots,
                        Some(&first.name),
                        "first entry is not in a subdirectory; torch refuses the archive"
                            .to_string(),
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
                                         (torch's getAllRecords throws)",
                                        lossy(prefix)
                                    ),
                                );
                            }
                        }
                    }
                }
            }
        }

        // Names the reader treats as equal: miniz ignores ASCII case, CPython compares the
        // decoded names exactly.
        let mut groups: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            let key = match self.dialect {
                Dialect::Miniz => e.raw_name.to_ascii_lowercase(),
                Dialect::CPython => e.name.as_bytes().to_vec(),
            };
            groups.entry(key).or_default().push(i);
        }
        let mut dups: Vec<&Vec<usize>> = groups.values().filter(|g| g.len() > 1).collect();
        dups.sort_by_key(|g| g[0]);
        for g in dups {
            let last = *g.last().unwrap_or(&0);
            let chosen_txt = match self.dialect {
                Dialect::Miniz => {
                    let key = &self.entries[g[0]].raw_name;
                    match self.find_raw(key) {
                        Some(c) => format!("torch reads entry #{c}"),
                        None => "torch finds none of them".to_string(),
                    }
                }
                Dialect::CPython => format!("numpy reads entry #{last}"),
            };
            let case_differs = g
                .iter()
                .any(|&i| self.entries[i].raw_name != self.entries[g[0]].raw_name);
            issues.push(
                ContainerIssueKind::DuplicateMember,
                Some(&self.entries[last].name),
                format!(
                    "{} central-directory entries #{:?} share this name{}; {chosen_txt} (the last is #{last})",
                    g.len(),
                    g,
                    if case_differs && self.dialect == Dialect::Miniz {
                        " ignoring ASCII case (torch's lookup is case-insensitive)"
                    } else if case_differs {
                        " once cut at NUL"
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
            .filter(|(_, e)| e.local_error.is_none())
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
                issues.push(
                    ContainerIssueKind::DataBeforeFirstHeader,
                    None,
                    format!(
                        "{first} bytes before the first local header the central directory references \
                         (the loaders never read them)"
                    ),
                );
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
        self.find_raw(lookup::c_string(name.as_bytes()))
    }

    /// torch's `getRecordID(name)`: [`ZipArchive::find`] of `<root>/<name>`, with the root taken
    /// byte-exactly from the first entry (works for non-UTF-8 roots too).
    pub fn find_record(&self, name: &str) -> Option<usize> {
        let first = self.entries.first()?;
        let p = first.raw_name.iter().position(|&c| c == b'/')?;
        let mut key = first.raw_name[..=p].to_vec();
        key.extend_from_slice(name.as_bytes());
        self.find_raw(lookup::c_string(&key))
    }

    /// The LAST central-directory entry whose name is byte-for-byte `name`; compare with
    /// [`ZipArchive::find`] to spot differentials.
    pub fn find_last_exact(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .rposition(|e| e.raw_name == name.as_bytes())
    }

    /// CPython's `ZipFile.getinfo(name)`: the last entry whose decoded, NUL-cut name is `name`
    /// (archives opened with [`ZipArchive::open_cpython`]).
    pub fn name_to_info(&self, name: &str) -> Option<usize> {
        self.entries.iter().rposition(|e| e.name == name)
    }

    /// torch's `getAllRecords()` (root removed, `.debug_pkl` left out), or its error.
    pub fn torch_records(&self) -> Result<Vec<Vec<u8>>> {
        let names: Vec<&[u8]> = self.entries.iter().map(|e| e.raw_name.as_slice()).collect();
        lookup::torch_all_records(&names)
    }

    /// torch's `_is_torchscript_zip`: a record named exactly `constants.pkl`.
    pub fn is_torchscript(&self) -> Result<bool> {
        Ok(self
            .torch_records()?
            .iter()
            .any(|r| r.as_slice() == b"constants.pkl"))
    }

    fn find_raw(&self, key: &[u8]) -> Option<usize> {
        lookup::miniz_find(|i| &self.entries[i].raw_name, &self.sorted, key)
    }

    fn entry(&self, idx: usize) -> Result<&ZipEntry> {
        self.entries.get(idx).ok_or_else(|| {
            Error::malformed(format!(
                "member index {idx} out of range ({} members)",
                self.entries.len()
            ))
        })
    }

    /// Read members that only newer `zipfile`s refuse as overlapping (for findings: an older
    /// Python reads them).
    pub fn allow_overlaps(&mut self) {
        self.refuse_overlaps = false;
    }

    /// Whether the loader can read member `idx` at all; the error says why not.
    pub fn check_readable(&self, idx: usize) -> Result<&ZipEntry> {
        let e = self.entry(idx)?;
        if let Some(why) = &e.local_error {
            return Err(Error::malformed(why.clone()).at_member(&e.name));
        }
        if let Some(why) = e.overlap.as_ref().filter(|_| self.refuse_overlaps) {
            return Err(Error::malformed(why.clone()).at_member(&e.name));
        }
        if e.flags & FLAGS_UNREADABLE != 0 {
            return Err(Error::unsupported(format!(
                "member {:?} has general-purpose flags {:#06x} (encrypted/patch data); the loader refuses it",
                e.name, e.flags
            ))
            .at_member(&e.name));
        }
        if e.method != METHOD_STORED && e.method != METHOD_DEFLATE {
            return Err(Error::unsupported(format!(
                "compression method {} (only 0 stored and 8 deflate are supported)",
                e.method
            ))
            .at_member(&e.name));
        }
        if self.dialect == Dialect::Miniz
            && e.is_directory()
            && (e.compressed_size > 0 || e.uncompressed_size > 0)
        {
            return Err(Error::malformed(
                "member is marked as a directory; torch does not extract its bytes (it gets uninitialised memory)",
            )
            .at_member(&e.name));
        }
        if self.dialect == Dialect::CPython
            && e.method == METHOD_STORED
            && e.compressed_size != e.uncompressed_size
        {
            return Err(Error::unsupported(format!(
                "stored member has compressed size {} but uncompressed size {}",
                e.compressed_size, e.uncompressed_size
            ))
            .at_member(&e.name));
        }
        Ok(e)
    }

    /// Where a stored member's bytes are: `(offset, length)`, checked as for reading.
    pub fn stored_range(&self, idx: usize) -> Result<Option<(u64, u64)>> {
        let e = self.check_readable(idx)?;
        Ok((e.method == METHOD_STORED).then_some((e.data_offset, e.uncompressed_size)))
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
        let e = self.check_readable(idx)?;
        MemberReader::new(
            r,
            &e.name,
            e.data_offset,
            e.compressed_size,
            e.uncompressed_size,
            e.method == METHOD_DEFLATE,
        )
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

    /// Compute the CRC-32 of member `idx` (streaming).
    pub fn crc_of<R: Read + Seek>(&self, r: &mut R, idx: usize) -> Result<u32> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut hasher = crc32fast::Hasher::new();
        let mut reader = self.open_member(r, idx)?;
        loop {
            let n = reader.read(&mut buf).map_err(into_error)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hasher.finalize())
    }

    /// Compute the CRC-32 of every member (streaming) and record a
    /// [`ContainerIssueKind::CrcMismatch`] for each stored CRC that differs. torch never checks
    /// CRCs. Members the loader cannot read are skipped. Fails if a member cannot be inflated.
    pub fn check_crcs<R: Read + Seek>(&mut self, r: &mut R) -> Result<()> {
        let mut found = Vec::new();
        for idx in 0..self.entries.len() {
            if self.check_readable(idx).is_err() {
                continue;
            }
            let computed = self.crc_of(r, idx)?;
            let e = &self.entries[idx];
            if computed != e.crc32 {
                found.push((e.name.clone(), crc_detail(e.crc32, computed)));
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

    /// Record an issue found by a caller (a CRC it checked, a record it parsed).
    pub fn push_issue(&mut self, kind: ContainerIssueKind, member: Option<&str>, detail: String) {
        let mut issues = Issues {
            list: &mut self.issues,
            counts: &mut self.issue_counts,
        };
        issues.push(kind, member, detail);
        issues.summarise();
    }
}

/// How a wrong CRC is described.
pub fn crc_detail(stored: u32, computed: u32) -> String {
    if stored == 0 {
        format!(
            "stored CRC-32 is 0 but the data's is {computed:#010x} (torch writes 0 when saved \
             with torch.serialization.set_crc32_options(False); torch never checks, \
             Python zipfile refuses)"
        )
    } else {
        format!(
            "stored CRC-32 {stored:#010x}, data's is {computed:#010x} (torch never checks; \
             Python zipfile and many scanners refuse)"
        )
    }
}
