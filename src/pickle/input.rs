//! A bounded, position-tracking reader for pickle streams. Every read is checked against the
//! bytes that remain, so a length prefix larger than the input is an error before any allocation.

use crate::error::{Error, Result};
use std::io::{BufRead, ErrorKind, Read};

pub struct Input<'a> {
    inner: &'a mut dyn BufRead,
    pos: u64,
    end: u64,
}

impl<'a> Input<'a> {
    /// `start` is the absolute position of the reader's first byte; `end` the absolute end.
    pub fn new(inner: &'a mut dyn BufRead, start: u64, end: u64) -> Self {
        Input {
            inner,
            pos: start,
            end,
        }
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    pub fn remaining(&self) -> u64 {
        self.end.saturating_sub(self.pos)
    }

    pub fn at_end(&mut self) -> Result<bool> {
        if self.remaining() == 0 {
            return Ok(true);
        }
        Ok(self.inner.fill_buf()?.is_empty())
    }

    fn check_len(&self, n: u64, what: &str) -> Result<()> {
        if n > self.remaining() {
            return Err(Error::malformed(format!(
                "{what} of {n} bytes exceeds the {} bytes left in the input",
                self.remaining()
            )));
        }
        Ok(())
    }

    pub fn read_u8(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read_into(&mut b, "byte")?;
        Ok(b[0])
    }

    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.read_into(&mut b, "argument")?;
        Ok(b)
    }

    fn read_into(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.check_len(buf.len() as u64, what)?;
        self.inner.read_exact(buf).map_err(|e| truncated(e, what))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// Read `n` bytes; the caller has already charged them to its memory budget.
    pub fn read_vec(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        self.check_len(n, what)?;
        let mut v = Vec::with_capacity(n as usize);
        let got = (&mut *self.inner).take(n).read_to_end(&mut v)?;
        if got as u64 != n {
            return Err(Error::malformed(format!("input truncated inside {what}")));
        }
        self.pos += n;
        Ok(v)
    }

    /// Skip `n` bytes (joblib array data that stays in the file).
    pub fn skip(&mut self, n: u64, what: &str) -> Result<()> {
        self.check_len(n, what)?;
        let got = std::io::copy(&mut (&mut *self.inner).take(n), &mut std::io::sink())?;
        if got != n {
            return Err(Error::malformed(format!("input truncated inside {what}")));
        }
        self.pos += n;
        Ok(())
    }

    /// A `\n`-terminated line without the newline, at most `max` bytes.
    pub fn read_line(&mut self, max: u64) -> Result<Vec<u8>> {
        self.read_line_or(max, |max| {
            Error::malformed(format!("text argument longer than {max} bytes"))
        })
    }

    /// [`Self::read_line`] with the error a line longer than `max` gets: the bound may be a
    /// memory budget rather than a format rule.
    pub fn read_line_or(&mut self, max: u64, too_long: impl Fn(u64) -> Error) -> Result<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            let remaining = self.remaining();
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() || remaining == 0 {
                return Err(Error::malformed(
                    "input truncated inside a text argument (no newline)",
                ));
            }
            let avail = buf.len().min(remaining as usize);
            let buf = &buf[..avail];
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if (line.len() + i) as u64 > max {
                        return Err(too_long(max));
                    }
                    line.extend_from_slice(&buf[..i]);
                    self.inner.consume(i + 1);
                    self.pos += i as u64 + 1;
                    return Ok(line);
                }
                None => {
                    if (line.len() + avail) as u64 > max {
                        return Err(too_long(max));
                    }
                    line.extend_from_slice(buf);
                    self.inner.consume(avail);
                    self.pos += avail as u64;
                }
            }
        }
    }
}

fn truncated(e: std::io::Error, what: &str) -> Error {
    if e.kind() == ErrorKind::UnexpectedEof {
        Error::malformed(format!("input truncated inside {what}"))
    } else {
        Error::Io(e)
    }
}
