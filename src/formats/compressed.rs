//! Whole-file compression as joblib writes it (`compress=` zlib or gzip). The stream is
//! inflated into memory, bounded by `max_inflated_member`, and parsed like any pickle file;
//! tensors then point into the inflated bytes.

use super::{pickle_file, Analysis, Format, Options};
use crate::error::{Error, Result};
use crate::tensors::spec::DataSource;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zlib,
    Gzip,
}

pub fn detect(head: &[u8]) -> Option<Compression> {
    match head {
        [0x78, b, ..] if (0x7800u16 | *b as u16).is_multiple_of(31) => Some(Compression::Zlib),
        [0x1f, 0x8b, 8, ..] => Some(Compression::Gzip),
        _ => None,
    }
}

pub fn analyze<R: Read + Seek>(
    r: &mut R,
    len: u64,
    kind: Compression,
    opts: &Options,
    a: &mut Analysis,
) -> Result<()> {
    let max = opts.limits.max_inflated_member;
    if len > max {
        return Err(Error::limit(
            "max_inflated_member",
            format!("compressed file of {len} bytes"),
        ));
    }
    let mut raw = Vec::with_capacity(len as usize);
    r.seek(SeekFrom::Start(0))?;
    r.take(len).read_to_end(&mut raw)?;
    let inflated = match kind {
        Compression::Zlib => {
            miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&raw, max as usize)
        }
        Compression::Gzip => {
            miniz_oxide::inflate::decompress_to_vec_with_limit(gzip_body(&raw)?, max as usize)
        }
    }
    .map_err(|e| match e.status {
        miniz_oxide::inflate::TINFLStatus::HasMoreOutput => Error::limit(
            "max_inflated_member",
            format!("the file inflates to more than {max} bytes"),
        ),
        s => Error::malformed(format!("compressed stream is corrupt ({s:?})")),
    })?;
    drop(raw);
    super::archive::charge(opts, inflated.len() as u64, "the compressed file")?;
    let bytes: Arc<[u8]> = Arc::from(inflated);
    let mut cursor = std::io::Cursor::new(&bytes[..]);
    if !bytes.first().is_some_and(|&b| super::pickle_start(b)) {
        // Not a joblib dump: a .tar.gz (read member by member) or another compressed file.
        a.format = Format::Gzip;
        let n = bytes.len() as u64;
        if super::tar_header::first_block(&bytes) == super::tar_header::FirstBlock::Header {
            return super::tar::analyze(&mut cursor, n, opts, a);
        }
        let compressed = detect(&bytes[..bytes.len().min(4)]).is_some();
        if !compressed && super::sniff(&mut cursor, n)? == Format::Unknown {
            return Err(Error::UnknownFormat(
                "a compressed file holding no model content".into(),
            ));
        }
        return match super::archive::analyze_member(&mut cursor, n, "(content)", opts, a) {
            Some(e) => Err(e),
            None => Ok(()),
        };
    }
    pickle_file::analyze(&mut cursor, bytes.len() as u64, opts, a)?;
    if a.format == Format::Pickle {
        a.format = Format::Joblib;
    }
    for (_, spec) in &mut a.tensors {
        if let DataSource::File { offset, len } = spec.source {
            spec.source =
                DataSource::Inline(Arc::from(&bytes[offset as usize..(offset + len) as usize]));
        }
    }
    Ok(())
}

/// Skip a gzip member header (RFC 1952) to its deflate body.
fn gzip_body(b: &[u8]) -> Result<&[u8]> {
    let bad = || Error::malformed("gzip header is truncated");
    let flags = *b.get(3).ok_or_else(bad)?;
    let mut i = 10usize;
    if flags & 4 != 0 {
        let n = u16::from_le_bytes([*b.get(i).ok_or_else(bad)?, *b.get(i + 1).ok_or_else(bad)?])
            as usize;
        i += 2 + n;
    }
    for bit in [8u8, 16] {
        if flags & bit != 0 {
            while *b.get(i).ok_or_else(bad)? != 0 {
                i += 1;
            }
            i += 1;
        }
    }
    if flags & 2 != 0 {
        i += 2;
    }
    b.get(i..).ok_or_else(bad)
}
