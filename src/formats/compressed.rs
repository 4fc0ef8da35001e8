//! Whole-file compression as joblib writes it (`compress=` zlib or gzip). The stream is
//! inflated into memory, bounded by `max_inflated_member`, and parsed like any pickle file;
//! tensors then point into the inflated bytes.

use super::{pickle_file, Analysis, Format, Options};
use crate::error::{Error, Result};
use crate::tensors::spec::DataSource;
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};
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
    // joblib reads the file through `BinaryZlibFile` / `BinaryGzipFile` (joblib/compressor.py):
    // one `zlib.decompressobj` stream. Bytes after that stream's end stay in `unused_data`, and
    // `_fill_buffer` then feeds them back to the finished decompressor forever (the buffer
    // doubles until `MemoryError`): joblib.load fails on any byte after the stream, a second
    // gzip member included. zlib checks the Adler-32 (zlib) or the CRC-32 and length (gzip).
    let inflated = match kind {
        Compression::Zlib => {
            let (out, used) = inflate_stream(&raw, DataFormat::Zlib, max)?;
            refuse_trailing(raw.len() - used)?;
            out
        }
        Compression::Gzip => {
            let body_at = gzip_body(&raw)?;
            let (out, used) = inflate_stream(&raw[body_at..], DataFormat::Raw, max)?;
            let trailer_at = body_at + used;
            let trailer = raw
                .get(trailer_at..trailer_at + 8)
                .ok_or_else(|| Error::malformed("gzip stream has no CRC-32/length trailer"))?;
            let crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
            let size = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
            if crc != crc32fast::hash(&out) || size != out.len() as u32 {
                return Err(Error::malformed(
                    "gzip trailer does not match the data (zlib raises \"incorrect data check\" \
                     or \"incorrect length check\")",
                ));
            }
            refuse_trailing(raw.len() - trailer_at - 8)?;
            out
        }
    };
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
    pickle_file::analyze_stream(&mut cursor, bytes.len() as u64, opts, a, false)?;
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

/// Inflate one stream from the start of `input`, at most `max` bytes out. Returns the data and
/// how many input bytes the stream took. A cut-off or corrupt stream (a wrong Adler-32 for zlib)
/// is an error.
fn inflate_stream(input: &[u8], format: DataFormat, max: u64) -> Result<(Vec<u8>, usize)> {
    let mut state = InflateState::new_boxed(format);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = 0usize;
    loop {
        let res = inflate(&mut state, &input[pos..], &mut buf, MZFlush::None);
        pos += res.bytes_consumed;
        if (out.len() + res.bytes_written) as u64 > max {
            return Err(Error::limit(
                "max_inflated_member",
                format!("the file inflates to more than {max} bytes"),
            ));
        }
        out.extend_from_slice(&buf[..res.bytes_written]);
        match res.status {
            Ok(MZStatus::StreamEnd) => return Ok((out, pos)),
            Ok(_) if res.bytes_consumed > 0 || res.bytes_written > 0 => {}
            Ok(_) | Err(MZError::Buf) => {
                return Err(Error::malformed(
                    "compressed stream ends before its end marker",
                ))
            }
            Err(e) => {
                return Err(Error::malformed(format!(
                    "compressed stream is corrupt ({e:?})"
                )))
            }
        }
    }
}

fn refuse_trailing(n: usize) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    Err(Error::malformed(format!(
        "{n} bytes after the end of the compressed stream: joblib.load never finishes reading \
         them (its decompressor is fed the leftover bytes again and again until MemoryError)"
    )))
}

/// Where a gzip member's deflate body starts, after its header (RFC 1952), checked as zlib
/// checks it with `wbits=31`: reserved flag bits are an error, and so is a wrong header CRC.
fn gzip_body(b: &[u8]) -> Result<usize> {
    let bad = || Error::malformed("gzip header is truncated");
    let flags = *b.get(3).ok_or_else(bad)?;
    if flags & 0xe0 != 0 {
        return Err(Error::malformed(
            "gzip header sets reserved flag bits (zlib: \"unknown header flags set\")",
        ));
    }
    let mut i = 10usize;
    if b.len() < i {
        return Err(bad());
    }
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
        let stored =
            u16::from_le_bytes([*b.get(i).ok_or_else(bad)?, *b.get(i + 1).ok_or_else(bad)?]);
        if stored != (crc32fast::hash(&b[..i]) & 0xffff) as u16 {
            return Err(Error::malformed(
                "gzip header CRC does not match (zlib: \"header crc mismatch\")",
            ));
        }
        i += 2;
    }
    if i > b.len() {
        return Err(bad());
    }
    Ok(i)
}
