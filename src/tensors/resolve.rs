//! From named graph nodes to tensor specs: ask the container for each storage, then build and
//! bounds-check the view. Unsupported tensors (quantized, sparse, meta, complex128...) are an
//! error naming the tensor, or skipped with a warning when the user asked for that.

use super::naming::Named;
use super::numpy;
use super::spec::{DataSource, Storage, TensorSpec, Transform};
use crate::error::{Error, Result};
use crate::pickle::value::{ArrayData, ArrayNode, Graph, Node, NodeId, TensorLayout, TensorNode};
use std::collections::HashMap;
use std::sync::Arc;

/// Resolves a storage node (a persistent id, a nested stream) to bytes.
pub trait StorageResolver {
    fn storage(&mut self, graph: &Graph, node: NodeId) -> Result<Storage>;
}

pub struct Resolved {
    pub tensors: Vec<(String, TensorSpec)>,
    pub warnings: Vec<String>,
}

pub fn resolve(
    graph: &Graph,
    named: Vec<Named>,
    storages: &mut dyn StorageResolver,
    skip_unsupported: bool,
    max_rank: usize,
) -> Result<Resolved> {
    let mut out = Resolved {
        tensors: Vec::new(),
        warnings: Vec::new(),
    };
    let mut inline_cache: HashMap<NodeId, Arc<[u8]>> = HashMap::new();
    for n in named {
        let spec = match graph.get(n.node) {
            Node::Tensor(t) => {
                tensor_spec(graph, &n.name, t, storages, &mut inline_cache, max_rank)
            }
            Node::Array(a) => {
                match array_spec(graph, &n.name, a, n.node, &mut inline_cache, max_rank) {
                    Ok(Some(s)) => Ok(s),
                    Ok(None) => {
                        out.warnings.push(format!(
                            "`{}` is a numpy array of dtype `{}`, which is not a tensor; left out",
                            n.name, a.dtype.descr
                        ));
                        continue;
                    }
                    Err(e) => Err(e),
                }
            }
            _ => continue,
        };
        match spec {
            Ok(s) => out.tensors.push((n.name, s)),
            Err(Error::Unsupported { msg }) if skip_unsupported => {
                out.warnings.push(format!("skipped: {msg}"))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn tensor_spec(
    graph: &Graph,
    name: &str,
    t: &TensorNode,
    storages: &mut dyn StorageResolver,
    inline_cache: &mut HashMap<NodeId, Arc<[u8]>>,
    max_rank: usize,
) -> Result<TensorSpec> {
    let what = match t.layout {
        TensorLayout::Dense | TensorLayout::FromArray => None,
        TensorLayout::Quantized => Some("quantized"),
        TensorLayout::Sparse => Some("sparse"),
        TensorLayout::Meta => Some("meta (it has no data)"),
        TensorLayout::WrapperSubclass => Some("a wrapper subclass without storage"),
        TensorLayout::Nested => Some("nested"),
    };
    if let Some(what) = what {
        return Err(Error::unsupported(format!(
            "tensor `{name}` is {what}; safetensors cannot store it"
        )));
    }
    let storage_node = t
        .storage
        .ok_or_else(|| Error::malformed(format!("tensor `{name}` has no storage")))?;
    if t.layout == TensorLayout::FromArray {
        let Node::Array(a) = graph.get(storage_node) else {
            return Err(Error::malformed(format!(
                "tensor `{name}`: device tensor data is not a numpy array"
            )));
        };
        let spec =
            array_spec(graph, name, a, storage_node, inline_cache, max_rank)?.ok_or_else(|| {
                Error::unsupported(format!("tensor `{name}`: numpy dtype `{}`", a.dtype.descr))
            })?;
        if let Some(dtype) = numpy::torch_dtype(&a.dtype.descr) {
            check_cast(name, t, dtype)?;
        }
        return Ok(spec);
    }
    let storage = storages.storage(graph, storage_node)?;
    let dtype = t.dtype.or(storage.dtype).ok_or_else(|| {
        Error::malformed(format!(
            "tensor `{name}`: untyped storage without a dtype argument"
        ))
    })?;
    check_cast(name, t, dtype)?;
    if storage.big_endian
        && t.dtype.is_some()
        && storage.dtype.is_some()
        && t.dtype != storage.dtype
    {
        return Err(Error::unsupported(format!(
            "tensor `{name}` re-types a big-endian storage; byte swapping would be ambiguous"
        )));
    }
    TensorSpec::new(
        name,
        dtype,
        &storage,
        t.offset,
        &t.size,
        &t.stride,
        Transform {
            neg: t.neg,
            conj: t.conj,
        },
        max_rank,
    )
}

/// A rebuilder that converts (`data.to(dtype)`) to another dtype than the data's own: torch
/// would return converted values; modelguard refuses rather than write different bytes.
fn check_cast(
    name: &str,
    t: &TensorNode,
    dtype: crate::tensors::torch_dtype::TorchDtype,
) -> Result<()> {
    match t.cast {
        Some(to) if to != dtype => Err(Error::unsupported(format!(
            "tensor `{name}` is rebuilt as {} from {} data: torch converts the values, modelguard does not",
            to.name(),
            dtype.name()
        ))),
        _ => Ok(()),
    }
}

/// A numpy array as a tensor; `Ok(None)` for arrays that hold no numbers (strings, objects).
pub fn array_spec(
    graph: &Graph,
    name: &str,
    a: &ArrayNode,
    node: NodeId,
    inline_cache: &mut HashMap<NodeId, Arc<[u8]>>,
    max_rank: usize,
) -> Result<Option<TensorSpec>> {
    if numpy::torch_dtype(&a.dtype.descr).is_none() {
        return Ok(None);
    }
    let source = match &a.data {
        ArrayData::Objects(_) => return Ok(None),
        ArrayData::Stream { offset, len } => DataSource::File {
            offset: *offset,
            len: *len,
        },
        ArrayData::Inline(b) => {
            let bytes = inline_cache
                .entry(*b)
                .or_insert_with(|| match graph.get(*b) {
                    Node::Bytes(v) | Node::ByteArray(v) => Arc::from(&v[..]),
                    _ => Arc::from(&[][..]),
                });
            DataSource::Inline(bytes.clone())
        }
    };
    dense_array_spec(
        name,
        &a.dtype.descr,
        a.dtype.byteorder,
        &a.shape,
        a.fortran,
        source,
        format!("array:{node}"),
        max_rank,
    )
}

/// A dense numpy-style array (C or Fortran order) over `source`; `Ok(None)` for non-numeric dtypes.
#[allow(clippy::too_many_arguments)]
pub fn dense_array_spec(
    name: &str,
    descr: &str,
    byteorder: char,
    shape: &[u64],
    fortran: bool,
    source: DataSource,
    key: String,
    max_rank: usize,
) -> Result<Option<TensorSpec>> {
    let Some(dtype) = numpy::torch_dtype(descr) else {
        return Ok(None);
    };
    let itemsize = dtype.itemsize();
    let numel = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::malformed(format!("array `{name}`: size overflows")))?;
    let nbytes = numel
        .checked_mul(itemsize)
        .ok_or_else(|| Error::malformed(format!("array `{name}`: size overflows")))?;
    if nbytes != source.len() {
        return Err(Error::malformed(format!(
            "array `{name}`: shape needs {nbytes} bytes but the data has {}",
            source.len()
        )));
    }
    let shape: Vec<i64> = shape
        .iter()
        .map(|&d| {
            i64::try_from(d)
                .map_err(|_| Error::malformed(format!("array `{name}`: dimension too large")))
        })
        .collect::<Result<_>>()?;
    let mut stride = vec![0i64; shape.len()];
    let mut acc = 1i64;
    let order: Vec<usize> = if fortran {
        (0..shape.len()).collect()
    } else {
        (0..shape.len()).rev().collect()
    };
    for i in order {
        stride[i] = acc;
        acc = acc.saturating_mul(shape[i].max(1));
    }
    let storage = Storage {
        key,
        dtype: Some(dtype),
        source,
        big_endian: byteorder == '>',
    };
    TensorSpec::new(
        name,
        dtype,
        &storage,
        0,
        &shape,
        &stride,
        Transform::default(),
        max_rank,
    )
    .map(Some)
}
