//! Materialise a view in C order (what `tensor.contiguous()` gives), streaming: contiguous views
//! are copied in 1 MiB chunks; strided views gather from the storage span they touch.

use super::spec::{DataSource, TensorSpec};
use super::torch_dtype::TorchDtype;
use crate::error::{Error, Result};
use std::io::{Read, Seek, SeekFrom};

const CHUNK: usize = 1 << 20;

/// Random access to the input.
pub trait ReadAt {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
}

/// `ReadAt` over any seekable reader.
pub struct SeekReader<'a, R: Read + Seek>(pub &'a mut R);

impl<R: Read + Seek> ReadAt for SeekReader<'_, R> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.0.seek(SeekFrom::Start(offset))?;
        self.0.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::malformed(format!(
                    "input truncated: {} bytes at offset {offset} are missing",
                    buf.len()
                ))
            } else {
                Error::Io(e)
            }
        })
    }
}

/// Reads storage-relative byte ranges, whatever the storage's source.
struct StorageReader<'a> {
    source: &'a DataSource,
    input: &'a mut dyn ReadAt,
}

impl StorageReader<'_> {
    fn read(&mut self, start: u64, buf: &mut [u8]) -> Result<()> {
        match self.source {
            DataSource::File { offset, .. } => self.input.read_at(offset + start, buf),
            DataSource::Inline(bytes) => {
                let s = start as usize;
                buf.copy_from_slice(&bytes[s..s + buf.len()]);
                Ok(())
            }
        }
    }
}

/// Stream the tensor's bytes (little-endian, C order, transforms applied) into `sink`.
pub fn gather(
    spec: &TensorSpec,
    input: &mut dyn ReadAt,
    max_span: u64,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let nbytes = spec.nbytes();
    if nbytes == 0 {
        return Ok(());
    }
    let mut reader = StorageReader {
        source: &spec.source,
        input,
    };
    let item = spec.itemsize as usize;
    if spec.is_contiguous() {
        let mut buf = vec![0u8; CHUNK.min(nbytes as usize)];
        let mut done = 0u64;
        let start = spec.offset * spec.itemsize;
        while done < nbytes {
            let n = (nbytes - done).min(buf.len() as u64) as usize;
            reader.read(start + done, &mut buf[..n])?;
            fix_up(spec, &mut buf[..n]);
            sink(&buf[..n])?;
            done += n as u64;
        }
        return Ok(());
    }
    // The span of storage bytes the view touches (bounds were checked when the spec was built).
    let lo = spec.offset * spec.itemsize;
    let last: u64 = spec.offset
        + spec
            .size
            .iter()
            .zip(&spec.stride)
            .map(|(&s, &st)| (s - 1) * st)
            .sum::<u64>();
    let hi = (last + 1) * spec.itemsize;
    let span = hi - lo;
    if span > max_span {
        return Err(Error::limit(
            "max_gather_span",
            format!(
                "a strided view touches {span} bytes of its storage; raise the limit to gather it in memory"
            ),
        ));
    }
    let mut window = vec![0u8; span as usize];
    reader.read(lo, &mut window)?;
    let rank = spec.size.len();
    let mut idx = vec![0u64; rank];
    let mut out = Vec::with_capacity(CHUNK.min(nbytes as usize));
    let (inner_size, inner_stride) = (spec.size[rank - 1], spec.stride[rank - 1]);
    loop {
        let mut base = spec.offset;
        for (i, st) in idx.iter().zip(&spec.stride).take(rank - 1) {
            base += i * st;
        }
        let base_byte = (base * spec.itemsize - lo) as usize;
        // Flushed every CHUNK bytes even inside a row: a stride-0 row of a billion elements
        // over one stored value must not be buffered whole.
        let mut flush = |out: &mut Vec<u8>| -> Result<()> {
            if out.len() >= CHUNK {
                fix_up(spec, out);
                sink(out)?;
                out.clear();
            }
            Ok(())
        };
        if inner_stride == 1 {
            let n = inner_size as usize * item;
            // CHUNK is a multiple of every itemsize, so pieces hold whole elements.
            for piece in window[base_byte..base_byte + n].chunks(CHUNK) {
                out.extend_from_slice(piece);
                flush(&mut out)?;
            }
        } else {
            let step = (inner_stride * spec.itemsize) as usize;
            for k in 0..inner_size as usize {
                let at = base_byte + k * step;
                out.extend_from_slice(&window[at..at + item]);
                flush(&mut out)?;
            }
        }
        // Advance the outer multi-index (row-major, last outer dim fastest).
        let mut d = rank - 1;
        loop {
            if d == 0 {
                if !out.is_empty() {
                    fix_up(spec, &mut out);
                    sink(&out)?;
                }
                return Ok(());
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < spec.size[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Byte order and neg/conj, applied to whole elements.
fn fix_up(spec: &TensorSpec, bytes: &mut [u8]) {
    if let Some(unit) = spec.swap_unit {
        for c in bytes.chunks_exact_mut(unit as usize) {
            c.reverse();
        }
    }
    let t = spec.transform;
    if !t.neg && !t.conj {
        return;
    }
    let item = spec.itemsize as usize;
    let float = matches!(
        spec.torch_dtype,
        TorchDtype::Float64
            | TorchDtype::Float32
            | TorchDtype::Float16
            | TorchDtype::BFloat16
            | TorchDtype::Complex64
    );
    for e in bytes.chunks_exact_mut(item) {
        if spec.torch_dtype == TorchDtype::Complex64 {
            // [re f32][im f32]: conj flips im; neg flips both.
            if t.neg {
                e[3] ^= 0x80;
                e[7] ^= 0x80;
            }
            if t.conj {
                e[7] ^= 0x80;
            }
        } else if float {
            e[item - 1] ^= 0x80;
        } else {
            // two's complement negation, little-endian
            let mut carry = 1u16;
            for b in e.iter_mut() {
                let v = (!*b) as u16 + carry;
                *b = v as u8;
                carry = v >> 8;
            }
        }
    }
}

/// `ReadAt` over bytes in memory.
pub struct SliceReader<'a>(pub &'a [u8]);

impl ReadAt for SliceReader<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|s| self.0.get(s..s.checked_add(buf.len())?))
            .ok_or_else(|| {
                Error::malformed(format!(
                    "read of {} bytes at {offset} is past the end",
                    buf.len()
                ))
            })?;
        buf.copy_from_slice(src);
        Ok(())
    }
}
