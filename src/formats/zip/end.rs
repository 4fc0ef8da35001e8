//! The end of the archive: the end-of-central-directory record (EOCD, APPNOTE 4.3.16), the
//! ZIP64 end-of-central-directory locator (4.3.15) and the ZIP64 end record (4.3.14), and the
//! two ways of finding them that matter here:
//!
//! * **miniz** (torch, `mz_zip_reader_locate_header_sig` + `mz_zip_reader_read_central_dir` in
//!   `third_party/miniz-3.0.2/miniz.c`): scan backwards in 4096-byte chunks that overlap by 3
//!   bytes for the last `PK\x05\x06` with at least 22 bytes after it; give up after a failed
//!   chunk that starts 65535+22 or more bytes from the end. The step to the next chunk is
//!   computed in unsigned arithmetic, so when the chunk before the one at offset 0 starts below
//!   offset 4093 the next read is at a *negative* offset and torch's reader fails: such files
//!   are refused as torch refuses them. A locator right before the EOCD that points (absolute
//!   offset) at a ZIP64 end record with a valid signature replaces the 32-bit values.
//! * **CPython** (`zipfile._EndRecData` / `_EndRecData64`, `Lib/zipfile.py` 3.11, what
//!   `numpy.load` uses for `.npz`): the last 22 bytes if they are an EOCD with an empty comment,
//!   else the LAST `PK\x05\x06` in the final 64 KiB + 22 bytes, which must have 22 bytes after
//!   it (an earlier one is never tried). A locator right before it makes the ZIP64 end record
//!   that sits *directly before the locator* (its offset field is ignored) replace the 32-bit
//!   values. Entry counts and disk numbers of the EOCD are not used at all.

use super::issues::{ContainerIssueKind, Issues};
use super::{le16, le32, le64, malformed_at, read_at};
use crate::error::{Error, Result};
use std::io::{Read, Seek};

pub(super) const SIG_EOCD: u32 = 0x0605_4b50;
pub(super) const SIG_ZIP64_EOCD: u32 = 0x0606_4b50;
pub(super) const SIG_ZIP64_LOCATOR: u32 = 0x0706_4b50;

pub(super) const EOCD_LEN: u64 = 22;
pub(super) const ZIP64_EOCD_LEN: u64 = 56;
pub(super) const ZIP64_LOCATOR_LEN: u64 = 20;

/// miniz's scan buffer and the overlap between consecutive chunks.
const SCAN_CHUNK: u64 = 4096;
const SCAN_STEP: u64 = SCAN_CHUNK - 3;
/// How far back both readers look for the EOCD: the longest comment plus the record.
const MAX_BACK: u64 = 0xFFFF + EOCD_LEN;

/// The end-of-central-directory record as stored.
#[derive(Debug, Clone, Copy)]
pub(super) struct Eocd {
    pub disk: u16,
    pub cd_disk: u16,
    pub entries_on_disk: u16,
    pub entries: u16,
    pub cd_size: u32,
    pub cd_offset: u32,
    pub comment_len: u16,
}

impl EndRecords {
    /// The records as the classic end record states them (before any ZIP64 record replaces a
    /// saturated field).
    fn from_eocd(e: &Eocd, eocd_pos: u64) -> EndRecords {
        EndRecords {
            total_files: u64::from(e.entries),
            cd_size: u64::from(e.cd_size),
            cd_offset: u64::from(e.cd_offset),
            num_this_disk: u32::from(e.disk),
            eocd_pos,
            records_start: eocd_pos,
            zip64: false,
        }
    }
}

impl Eocd {
    pub fn parse(b: &[u8]) -> Option<Eocd> {
        (b.len() >= EOCD_LEN as usize && le32(b, 0) == SIG_EOCD).then(|| Eocd {
            disk: le16(b, 4),
            cd_disk: le16(b, 6),
            entries_on_disk: le16(b, 8),
            entries: le16(b, 10),
            cd_size: le32(b, 12),
            cd_offset: le32(b, 16),
            comment_len: le16(b, 20),
        })
    }
}

/// The ZIP64 end-of-central-directory locator as stored.
#[derive(Debug, Clone, Copy)]
pub(super) struct Zip64Locator {
    pub cd_disk: u32,
    pub end_offset: u64,
    pub disks: u32,
}

impl Zip64Locator {
    pub fn parse(b: &[u8]) -> Option<Zip64Locator> {
        (b.len() >= ZIP64_LOCATOR_LEN as usize && le32(b, 0) == SIG_ZIP64_LOCATOR).then(|| {
            Zip64Locator {
                cd_disk: le32(b, 4),
                end_offset: le64(b, 8),
                disks: le32(b, 16),
            }
        })
    }
}

/// The ZIP64 end-of-central-directory record as stored (without extensible data).
#[derive(Debug, Clone, Copy)]
pub(super) struct Zip64Eocd {
    pub record_size: u64,
    pub disk: u32,
    pub cd_disk: u32,
    pub entries_on_disk: u64,
    pub entries: u64,
    pub cd_size: u64,
    pub cd_offset: u64,
}

impl Zip64Eocd {
    pub fn parse(b: &[u8]) -> Option<Zip64Eocd> {
        (b.len() >= ZIP64_EOCD_LEN as usize && le32(b, 0) == SIG_ZIP64_EOCD).then(|| Zip64Eocd {
            record_size: le64(b, 4),
            disk: le32(b, 16),
            cd_disk: le32(b, 20),
            entries_on_disk: le64(b, 24),
            entries: le64(b, 32),
            cd_size: le64(b, 40),
            cd_offset: le64(b, 48),
        })
    }
}

/// What a reader takes from the end records.
#[derive(Debug, Clone, Copy)]
pub(super) struct EndRecords {
    /// Entries to read (miniz); CPython reads entries until `cd_size` bytes are consumed.
    pub total_files: u64,
    pub cd_size: u64,
    /// Where the central directory is, as recorded (before any prefix shift).
    pub cd_offset: u64,
    pub num_this_disk: u32,
    /// Position of the EOCD in the file.
    pub eocd_pos: u64,
    /// Where the end records begin (the ZIP64 end record if one was used, else the EOCD).
    pub records_start: u64,
    /// A ZIP64 end record was used.
    pub zip64: bool,
}

/// miniz's backward search. `Ok(None)`: no record found where miniz looks. `lenient` walks
/// to offset 0 instead of failing where torch's reader reads at a negative offset.
fn miniz_scan<R: Read + Seek>(r: &mut R, len: u64, lenient: bool) -> Result<Option<u64>> {
    if len < EOCD_LEN {
        return Ok(None);
    }
    let mut cur = len.saturating_sub(SCAN_CHUNK);
    let mut buf = vec![0u8; SCAN_CHUNK as usize];
    loop {
        let n = (len - cur).min(SCAN_CHUNK) as usize;
        read_at(r, cur, &mut buf[..n], "end-of-central-directory search")?;
        // The last signature in this chunk with at least 22 bytes after it in the FILE.
        if n >= 4 {
            if let Some(i) = (0..=n - 4)
                .rev()
                .find(|&i| le32(&buf, i) == SIG_EOCD && len - (cur + i as u64) >= EOCD_LEN)
            {
                return Ok(Some(cur + i as u64));
            }
        }
        if cur == 0 || len - cur >= MAX_BACK {
            return Ok(None);
        }
        if cur < SCAN_STEP && !lenient {
            return Err(Error::malformed(format!(
                "no end-of-central-directory record in the last {} bytes, and torch's zip reader \
                 (miniz) would next read at a negative offset ({cur} - {SCAN_STEP}) and fail",
                len - cur
            )));
        }
        cur = cur.saturating_sub(SCAN_STEP);
    }
}

/// The end records as torch's miniz reader takes them. Disagreements that torch resolves one
/// way and other readers another are recorded in `issues`.
pub(super) fn miniz<R: Read + Seek>(
    r: &mut R,
    len: u64,
    lenient: bool,
    issues: &mut Issues<'_>,
) -> Result<EndRecords> {
    if len < EOCD_LEN {
        return Err(Error::malformed(format!(
            "file of {len} bytes is too small to be a zip archive"
        )));
    }
    let eocd_pos = miniz_scan(r, len, lenient)?.ok_or_else(|| {
        Error::malformed(
            "no end-of-central-directory record in the last 64 KiB (not a zip archive)",
        )
    })?;
    let mut raw = [0u8; EOCD_LEN as usize];
    read_at(r, eocd_pos, &mut raw, "end-of-central-directory record")?;
    let e = Eocd::parse(&raw).expect("the scan found the signature");
    let end = eocd_pos + EOCD_LEN + u64::from(e.comment_len);
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
    let mut rec = EndRecords::from_eocd(&e, eocd_pos);
    let mut entries_on_disk = u64::from(e.entries_on_disk);
    let mut cd_disk = u32::from(e.cd_disk);

    if eocd_pos >= ZIP64_LOCATOR_LEN + ZIP64_EOCD_LEN {
        let loc_pos = eocd_pos - ZIP64_LOCATOR_LEN;
        let mut lraw = [0u8; ZIP64_LOCATOR_LEN as usize];
        read_at(
            r,
            loc_pos,
            &mut lraw,
            "ZIP64 end-of-central-directory locator",
        )?;
        if let Some(loc) = Zip64Locator::parse(&lraw) {
            let z64_pos = loc.end_offset;
            if z64_pos > len - ZIP64_EOCD_LEN {
                return Err(malformed_at(
                    format!("ZIP64 locator points at offset {z64_pos}, past the end of the file"),
                    loc_pos,
                ));
            }
            let mut zraw = [0u8; ZIP64_EOCD_LEN as usize];
            read_at(
                r,
                z64_pos,
                &mut zraw,
                "ZIP64 end-of-central-directory record",
            )?;
            match Zip64Eocd::parse(&zraw) {
                Some(z) => {
                    if z.record_size < ZIP64_EOCD_LEN - 12 {
                        return Err(malformed_at(
                            format!("ZIP64 end record declares size {} (< 44)", z.record_size),
                            z64_pos,
                        ));
                    }
                    if loc.disks != 1 {
                        return Err(Error::unsupported(format!(
                            "multi-disk zip archive ({} disks in ZIP64 locator)",
                            loc.disks
                        )));
                    }
                    if z.entries > u64::from(u32::MAX) || z.entries_on_disk > u64::from(u32::MAX)
                    {
                        return Err(malformed_at(
                            format!("ZIP64 end record declares {} entries", z.entries),
                            z64_pos,
                        ));
                    }
                    if z.cd_size > u64::from(u32::MAX) {
                        return Err(malformed_at(
                            format!("ZIP64 central directory size {} exceeds 4 GiB", z.cd_size),
                            z64_pos,
                        ));
                    }
                    // torch ignores the 32-bit values once a ZIP64 record exists; readers that
                    // prefer them when they are not saturated see another directory.
                    let mut disagree = Vec::new();
                    if u64::from(e.entries) != 0xFFFF && u64::from(e.entries) != z.entries {
                        disagree.push(format!("entries {} vs {}", e.entries, z.entries));
                    }
                    if e.cd_size != u32::MAX && u64::from(e.cd_size) != z.cd_size {
                        disagree.push(format!("directory size {} vs {}", e.cd_size, z.cd_size));
                    }
                    if e.cd_offset != u32::MAX && u64::from(e.cd_offset) != z.cd_offset {
                        disagree.push(format!(
                            "directory offset {} vs {}",
                            e.cd_offset, z.cd_offset
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
                    rec.total_files = z.entries;
                    entries_on_disk = z.entries_on_disk;
                    rec.cd_size = z.cd_size;
                    rec.cd_offset = z.cd_offset;
                    rec.num_this_disk = z.disk;
                    cd_disk = z.cd_disk;
                    rec.records_start = z64_pos;
                    rec.zip64 = true;
                }
                None => issues.push(
                    ContainerIssueKind::CentralDirectoryCountMismatch,
                    None,
                    format!(
                        "ZIP64 locator points at offset {z64_pos}, which holds no ZIP64 end record; \
                         torch falls back to the 32-bit end record, other readers may refuse"
                    ),
                ),
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

fn not_a_zip(why: &str) -> Error {
    Error::malformed(format!(
        "numpy's zip reader (Python zipfile) refuses this archive: {why}"
    ))
}

/// The end records as CPython's `zipfile` takes them.
pub(super) fn cpython<R: Read + Seek>(r: &mut R, len: u64) -> Result<EndRecords> {
    if len < EOCD_LEN {
        return Err(not_a_zip("the file is smaller than an end record"));
    }
    let mut tail = [0u8; EOCD_LEN as usize];
    read_at(
        r,
        len - EOCD_LEN,
        &mut tail,
        "end-of-central-directory record",
    )?;
    let eocd_pos = match Eocd::parse(&tail) {
        Some(e) if e.comment_len == 0 => len - EOCD_LEN,
        _ => {
            let start = len.saturating_sub(1 << 16).saturating_sub(EOCD_LEN);
            let n = usize::try_from(len - start).expect("at most 64 KiB");
            let mut window = vec![0u8; n];
            read_at(r, start, &mut window, "end-of-central-directory search")?;
            let at = window
                .windows(4)
                .rposition(|w| le32(w, 0) == SIG_EOCD)
                .ok_or_else(|| {
                    not_a_zip("no end-of-central-directory record in the last 64 KiB")
                })?;
            if n - at < EOCD_LEN as usize {
                return Err(not_a_zip(
                    "the last end-of-central-directory signature has fewer than 22 bytes after it",
                ));
            }
            start + at as u64
        }
    };
    let mut raw = [0u8; EOCD_LEN as usize];
    read_at(r, eocd_pos, &mut raw, "end-of-central-directory record")?;
    let e = Eocd::parse(&raw).expect("found by its signature");
    let mut rec = EndRecords::from_eocd(&e, eocd_pos);
    if eocd_pos < ZIP64_LOCATOR_LEN {
        return Ok(rec);
    }
    let mut lraw = [0u8; ZIP64_LOCATOR_LEN as usize];
    read_at(r, eocd_pos - ZIP64_LOCATOR_LEN, &mut lraw, "ZIP64 locator")?;
    let Some(loc) = Zip64Locator::parse(&lraw) else {
        return Ok(rec);
    };
    if loc.cd_disk != 0 || loc.disks > 1 {
        return Err(not_a_zip("the ZIP64 locator names several disks"));
    }
    let Some(z64_pos) = eocd_pos.checked_sub(ZIP64_LOCATOR_LEN + ZIP64_EOCD_LEN) else {
        // zipfile seeks before the start of the file: an OSError, reported as not a zip file
        return Err(not_a_zip(
            "a ZIP64 locator with no room for a ZIP64 end record before it",
        ));
    };
    let mut zraw = [0u8; ZIP64_EOCD_LEN as usize];
    read_at(r, z64_pos, &mut zraw, "ZIP64 end record")?;
    let Some(z) = Zip64Eocd::parse(&zraw) else {
        return Ok(rec);
    };
    rec.total_files = z.entries;
    rec.cd_size = z.cd_size;
    rec.cd_offset = z.cd_offset;
    rec.num_this_disk = z.disk;
    rec.records_start = z64_pos;
    rec.zip64 = true;
    Ok(rec)
}

#[cfg(test)]
pub(super) fn miniz_scan_for_tests(b: &[u8], lenient: bool) -> Result<Option<u64>> {
    miniz_scan(&mut std::io::Cursor::new(b), b.len() as u64, lenient)
}
