//! A tensor ready to be written: its safetensors dtype and shape, where its storage bytes are,
//! and the bounds-checked view over them. Built from untrusted metadata, so every number here
//! went through checked arithmetic before a byte is read.

use super::dtype::Dtype;
use super::torch_dtype::TorchDtype;
use crate::error::{Error, Result};
use std::sync::Arc;

/// Where a storage's bytes live.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// A byte range of the input file (stored zip member, legacy storage blob, npy data...).
    File { offset: u64, len: u64 },
    /// Bytes already in memory (pickle-embedded numpy data, inflated members, nested streams).
    Inline(Arc<[u8]>),
}

impl DataSource {
    pub fn len(&self) -> u64 {
        match self {
            DataSource::File { len, .. } => *len,
            DataSource::Inline(b) => b.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A storage as the container resolved it.
#[derive(Debug, Clone)]
pub struct Storage {
    /// Identity of the storage (zip key, legacy key...) for alias detection.
    pub key: String,
    /// The storage class dtype (None for untyped storages).
    pub dtype: Option<TorchDtype>,
    pub source: DataSource,
    /// Stored big-endian: swap every element.
    pub big_endian: bool,
}

/// Element-wise fix-ups torch records as metadata instead of applying.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Transform {
    pub neg: bool,
    pub conj: bool,
}

/// Storage, dtype, offset, size, stride and transform: what makes two views the same bytes.
pub type ViewKey<'a> = (&'a str, TorchDtype, u64, &'a [u64], &'a [u64], Transform);

#[derive(Debug, Clone)]
pub struct TensorSpec {
    pub dtype: Dtype,
    pub torch_dtype: TorchDtype,
    /// Shape as written in the safetensors header.
    pub shape: Vec<u64>,
    pub source: DataSource,
    pub storage_key: String,
    pub itemsize: u64,
    /// The view, in elements of `itemsize`.
    pub offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
    pub swap_unit: Option<u64>,
    pub transform: Transform,
}

impl TensorSpec {
    /// Build and bounds-check a view (formats.md §7.1). `size`/`stride`/`offset` come from the pickle.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        torch_dtype: TorchDtype,
        storage: &Storage,
        offset: i64,
        size: &[i64],
        stride: &[i64],
        transform: Transform,
        max_rank: usize,
    ) -> Result<TensorSpec> {
        let bad = |why: String| Error::malformed(format!("tensor `{name}`: {why}"));
        let dtype = torch_dtype.to_safetensors().ok_or_else(|| {
            Error::unsupported(format!(
                "tensor `{name}` has dtype torch.{}, which safetensors cannot store",
                torch_dtype.name()
            ))
        })?;
        if size.len() != stride.len() {
            return Err(bad(format!(
                "size has {} dims but stride has {}",
                size.len(),
                stride.len()
            )));
        }
        if size.len() > max_rank {
            return Err(Error::limit(
                "max_rank",
                format!("tensor `{name}` has {} dimensions", size.len()),
            ));
        }
        let to_u64 =
            |v: i64, what: &str| u64::try_from(v).map_err(|_| bad(format!("negative {what} {v}")));
        let size: Vec<u64> = size
            .iter()
            .map(|&s| to_u64(s, "size"))
            .collect::<Result<_>>()?;
        let stride: Vec<u64> = stride
            .iter()
            .map(|&s| to_u64(s, "stride"))
            .collect::<Result<_>>()?;
        let offset = to_u64(offset, "storage offset")?;
        let itemsize = torch_dtype.itemsize();
        let numel = size
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad("element count overflows".into()))?;
        if numel > 0 {
            let mut last = offset;
            for (&s, &st) in size.iter().zip(&stride) {
                last = (s - 1)
                    .checked_mul(st)
                    .and_then(|x| last.checked_add(x))
                    .ok_or_else(|| bad("view extent overflows".into()))?;
            }
            let end = last
                .checked_add(1)
                .and_then(|x| x.checked_mul(itemsize))
                .ok_or_else(|| bad("view extent overflows".into()))?;
            if end > storage.source.len() {
                return Err(bad(format!(
                    "view ends at byte {end} but its storage has {} bytes",
                    storage.source.len()
                )));
            }
        }
        numel
            .checked_mul(itemsize)
            .ok_or_else(|| bad("byte size overflows".into()))?;
        if (transform.neg || transform.conj) && !supports_transform(torch_dtype, transform) {
            return Err(Error::unsupported(format!(
                "tensor `{name}` carries a {} bit on dtype torch.{}, which we cannot apply exactly",
                if transform.conj { "conj" } else { "neg" },
                torch_dtype.name()
            )));
        }
        let mut shape = size.clone();
        if torch_dtype == TorchDtype::Float4_e2m1fn_x2 {
            // safetensors counts F4 values; torch packs two per element.
            match shape.last_mut() {
                Some(d) => {
                    *d = d
                        .checked_mul(2)
                        .ok_or_else(|| bad("shape overflows".into()))?
                }
                None => shape.push(2),
            }
        }
        let swap_unit =
            (storage.big_endian && torch_dtype.swap_unit() > 1).then(|| torch_dtype.swap_unit());
        Ok(TensorSpec {
            dtype,
            torch_dtype,
            shape,
            source: storage.source.clone(),
            storage_key: storage.key.clone(),
            itemsize,
            offset,
            size,
            stride,
            swap_unit,
            transform,
        })
    }

    pub fn numel(&self) -> u64 {
        self.size.iter().product()
    }

    pub fn nbytes(&self) -> u64 {
        self.numel() * self.itemsize
    }

    /// Row-major contiguous (dims of size 1 ignored): one copy of `nbytes` from `offset`.
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1u64;
        for (&s, &st) in self.size.iter().zip(&self.stride).rev() {
            if s != 1 && st != expected {
                return false;
            }
            expected = expected.saturating_mul(s);
        }
        true
    }

    /// The input file offset of this tensor's bytes when they can be copied verbatim: a
    /// contiguous view of a file-backed storage with nothing to swap or flip.
    pub fn direct_range(&self) -> Option<u64> {
        match self.source {
            DataSource::File { offset, .. }
                if self.is_contiguous()
                    && self.swap_unit.is_none()
                    && self.transform == Transform::default() =>
            {
                Some(offset + self.offset * self.itemsize)
            }
            _ => None,
        }
    }

    /// Equal for views of the same bytes (the tied-weights case `--dedup` may drop).
    pub fn view_key(&self) -> ViewKey<'_> {
        (
            &self.storage_key,
            self.torch_dtype,
            self.offset,
            &self.size,
            &self.stride,
            self.transform,
        )
    }
}

fn supports_transform(d: TorchDtype, t: Transform) -> bool {
    use TorchDtype::*;
    if t.conj && !matches!(d, Complex64) {
        return false;
    }
    matches!(
        d,
        Float64 | Float32 | Float16 | BFloat16 | Complex64 | Int64 | Int32 | Int16 | Int8
    )
}
