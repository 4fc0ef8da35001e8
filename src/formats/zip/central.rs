//! Central directory file headers (APPNOTE 4.3.12) and the ZIP64 extended information extra
//! field (4.5.3), read the way each reader reads them.
//!
//! * **miniz** (`mz_zip_reader_read_central_dir`, `mz_zip_file_stat_internal`): reads exactly
//!   `total entries` headers; the ZIP64 field is consulted only when one of the 32-bit sizes or
//!   the offset is `0xFFFFFFFF`, and then only for those fields, in the order uncompressed size,
//!   compressed size, local-header offset; a field too short for what it must supply, or an
//!   extra block whose sub-field lengths overrun it, is an error. Anything in the directory
//!   after the declared entries is never read.
//! * **CPython** (`ZipFile._RealGetContents`, `ZipInfo._decodeExtra`): reads headers until
//!   `central directory size` bytes are consumed, whatever the entry count says; every extra
//!   block is walked (an overrunning sub-field is an error, fewer than 4 trailing bytes are
//!   ignored) and EVERY ZIP64 field in it applies to the values still saturated (the file size
//!   also when it is `0xFFFFFFFFFFFFFFFF`).

use super::{le16, le32, le64};

pub(super) const SIG_CENTRAL: u32 = 0x0201_4b50;
pub(super) const CENTRAL_HEADER_LEN: u64 = 46;

/// One central directory file header as stored (name, extra and comment follow it).
#[derive(Debug, Clone, Copy)]
pub(super) struct CentralHeader {
    pub version_needed: u16,
    pub flags: u16,
    pub method: u16,
    pub crc32: u32,
    pub compressed_size: u32,
    pub uncompressed_size: u32,
    pub name_len: u16,
    pub extra_len: u16,
    pub comment_len: u16,
    pub disk: u16,
    pub external_attr: u32,
    pub local_offset: u32,
}

impl CentralHeader {
    pub fn parse(b: &[u8]) -> Option<CentralHeader> {
        (b.len() >= CENTRAL_HEADER_LEN as usize && le32(b, 0) == SIG_CENTRAL).then(|| {
            CentralHeader {
                version_needed: le16(b, 6),
                flags: le16(b, 8),
                method: le16(b, 10),
                crc32: le32(b, 16),
                compressed_size: le32(b, 20),
                uncompressed_size: le32(b, 24),
                name_len: le16(b, 28),
                extra_len: le16(b, 30),
                comment_len: le16(b, 32),
                disk: le16(b, 34),
                external_attr: le32(b, 38),
                local_offset: le32(b, 42),
            }
        })
    }

    /// Bytes of the header with its name, extra field and comment.
    pub fn total_len(&self) -> u64 {
        CENTRAL_HEADER_LEN
            + u64::from(self.name_len)
            + u64::from(self.extra_len)
            + u64::from(self.comment_len)
    }
}

/// Sizes and local-header offset after the ZIP64 extra field is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sizes {
    pub uncompressed: u64,
    pub compressed: u64,
    pub local_offset: u64,
}

impl Sizes {
    fn of(h: &CentralHeader) -> Sizes {
        Sizes {
            uncompressed: u64::from(h.uncompressed_size),
            compressed: u64::from(h.compressed_size),
            local_offset: u64::from(h.local_offset),
        }
    }
}

/// `(id, data)` of each sub-field, or the error of the first one that overruns the block.
fn subfields(extra: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), &'static str>> {
    let mut rest = extra;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() < 4 {
            rest = &[];
            return Some(Err("truncated extra field header"));
        }
        let id = le16(rest, 0);
        let size = usize::from(le16(rest, 2));
        if 4 + size > rest.len() {
            rest = &[];
            return Some(Err("extra field overruns the extra data"));
        }
        let data = &rest[4..4 + size];
        rest = &rest[4 + size..];
        Some(Ok((id, data)))
    })
}

/// miniz's values: the ZIP64 field only for saturated fields, strictly.
pub(super) fn miniz_sizes(h: &CentralHeader, extra: &[u8]) -> Result<Sizes, &'static str> {
    let mut s = Sizes::of(h);
    let saturated = |v: u32| v == u32::MAX;
    if !(saturated(h.uncompressed_size)
        || saturated(h.compressed_size)
        || saturated(h.local_offset))
    {
        return Ok(s);
    }
    for field in subfields(extra) {
        let (id, data) = field?;
        if id != 0x0001 {
            continue;
        }
        let mut f = data;
        let mut take = || -> Result<u64, &'static str> {
            if f.len() < 8 {
                return Err("ZIP64 extra field too short");
            }
            let v = le64(f, 0);
            f = &f[8..];
            Ok(v)
        };
        if saturated(h.uncompressed_size) {
            s.uncompressed = take()?;
        }
        if saturated(h.compressed_size) {
            s.compressed = take()?;
        }
        if saturated(h.local_offset) {
            s.local_offset = take()?;
        }
        break;
    }
    Ok(s)
}

/// CPython's values (`ZipInfo._decodeExtra`).
pub(super) fn cpython_sizes(h: &CentralHeader, extra: &[u8]) -> Result<Sizes, &'static str> {
    let mut s = Sizes::of(h);
    let mut rest = extra;
    while rest.len() >= 4 {
        let id = le16(rest, 0);
        let size = usize::from(le16(rest, 2));
        if size + 4 > rest.len() {
            return Err("corrupt extra field (a sub-field overruns the extra data)");
        }
        if id == 0x0001 {
            let mut f = &rest[4..4 + size];
            let mut take = || -> Result<u64, &'static str> {
                if f.len() < 8 {
                    return Err("corrupt ZIP64 extra field (a value is missing)");
                }
                let v = le64(f, 0);
                f = &f[8..];
                Ok(v)
            };
            if s.uncompressed == u64::from(u32::MAX) || s.uncompressed == u64::MAX {
                s.uncompressed = take()?;
            }
            if s.compressed == u64::from(u32::MAX) {
                s.compressed = take()?;
            }
            if s.local_offset == u64::from(u32::MAX) {
                s.local_offset = take()?;
            }
        }
        rest = &rest[4 + size..];
    }
    Ok(s)
}
