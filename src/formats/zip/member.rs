//! Reading one member's bytes: stored members verbatim, deflated members inflated as a stream
//! that must produce exactly the declared size (what miniz's `mz_zip_reader_extract_to_mem`
//! requires: a complete stream whose output fills the buffer of the central directory's
//! uncompressed size, no more, no less).

use crate::error::Error;
use std::io::{self, Read, Seek, SeekFrom};

/// Input buffer for inflating a member.
pub(super) const INFLATE_IN_BUF: usize = 32 * 1024;

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

impl<'a, R: Read + Seek> MemberReader<'a, R> {
    /// A reader over `compressed` bytes at `data_offset` that must produce `uncompressed` bytes
    /// (method 0 stored, 8 deflate; the caller has checked the method).
    pub(super) fn new(
        r: &'a mut R,
        name: &str,
        data_offset: u64,
        compressed: u64,
        uncompressed: u64,
        deflated: bool,
    ) -> crate::error::Result<MemberReader<'a, R>> {
        let body = if deflated {
            Body::Deflate(Box::new(Inflater {
                state: miniz_oxide::inflate::stream::InflateState::new_boxed(
                    miniz_oxide::DataFormat::Raw,
                ),
                buf: vec![0u8; INFLATE_IN_BUF],
                start: 0,
                end: 0,
                ended: false,
            }))
        } else {
            Body::Stored
        };
        let mut reader = MemberReader {
            r,
            name: name.to_string(),
            pos: data_offset,
            comp_remaining: compressed,
            out_remaining: uncompressed,
            declared: uncompressed,
            body,
        };
        if reader.out_remaining == 0 && reader.comp_remaining > 0 {
            // An empty member with compressed bytes: they must be a complete empty stream.
            reader.finish().map_err(into_error)?;
        }
        Ok(reader)
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
