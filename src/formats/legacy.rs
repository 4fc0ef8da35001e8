//! The legacy torch "1001" stream (formats.md §2.1): five pickles, then raw storages in the
//! order of the key list. Also the same layout nested in `torch.storage._load_from_bytes(...)`.

use super::Options;
use crate::error::{Error, Result};
use crate::pickle::value::{Graph, Node, NodeId, StorageType};
use crate::pickle::{Context, Input, Machine};
use crate::policy::findings::Findings;
use crate::tensors::gather::ReadAt;
use crate::tensors::resolve::StorageResolver;
use crate::tensors::spec::{DataSource, Storage};
use crate::tensors::torch_dtype::TorchDtype;
use std::collections::HashMap;
use std::sync::Arc;

/// 0x1950a86a20f9469cfc6c, little-endian, as LONG1 writes it.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PROTOCOL_VERSION: i64 = 1001;

pub fn is_magic(g: &Graph, root: NodeId) -> bool {
    matches!(g.get(root), Node::BigInt(b) if b[..] == MAGIC)
}

/// What a storage persistent id says: ('storage', type, key, location, numel[, view_metadata]).
#[derive(Debug, Clone)]
pub struct StoragePid {
    pub dtype: Option<TorchDtype>,
    pub key: String,
    pub numel: u64,
    /// Pre-1.0 views: (root key, offset in elements, size in elements).
    pub view: Option<(String, u64, u64)>,
}

pub fn parse_pid(g: &Graph, pid: NodeId) -> Result<StoragePid> {
    let bad = |why: &str| Error::malformed(format!("storage persistent id: {why}"));
    let items = g.as_seq(pid).ok_or_else(|| bad("not a tuple"))?;
    if items.len() < 5 {
        return Err(bad("expected ('storage', type, key, location, numel)"));
    }
    let tag = match g.get(items[0]) {
        Node::Str(s) => s.to_string(),
        Node::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        _ => return Err(bad("first element is not 'storage'")),
    };
    if tag != "storage" {
        return Err(bad(&format!("first element is {tag:?}, not 'storage'")));
    }
    let dtype = match g.get(items[1]) {
        Node::StorageType(StorageType::Typed(d)) => Some(*d),
        Node::StorageType(StorageType::Untyped) => None,
        _ => return Err(bad("storage type is not an allowlisted storage class")),
    };
    let key = match g.get(items[2]) {
        Node::Str(s) => s.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        _ => return Err(bad("key is not a string")),
    };
    let numel = g
        .as_int(items[4])
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| bad("numel is not a non-negative int"))?;
    let view = match items.get(5).map(|&v| g.get(v)) {
        None | Some(Node::None) => None,
        Some(Node::Tuple(v)) if v.len() == 3 => {
            let vk = match g.get(v[0]) {
                Node::Str(s) => s.to_string(),
                _ => return Err(bad("view key is not a string")),
            };
            let off = g
                .as_int(v[1])
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| bad("bad view offset"))?;
            let size = g
                .as_int(v[2])
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| bad("bad view size"))?;
            Some((vk, off, size))
        }
        Some(_) => return Err(bad("view metadata is not (key, offset, size)")),
    };
    Ok(StoragePid {
        dtype,
        key,
        numel,
        view,
    })
}

/// All storage persistent ids in the graph, by key.
fn storage_pids(g: &Graph) -> Result<HashMap<String, StoragePid>> {
    let mut out: HashMap<String, StoragePid> = HashMap::new();
    for id in 0..g.len() as NodeId {
        if let Node::PersistentId(pid) = g.get(id) {
            if is_module_pid(g, *pid) {
                continue;
            }
            let p = parse_pid(g, *pid)?;
            if let Some(prev) = out.get(&p.key) {
                if prev.numel != p.numel || prev.dtype != p.dtype {
                    return Err(Error::malformed(format!(
                        "storage {} is declared twice with different types or sizes",
                        p.key
                    )));
                }
            }
            out.insert(p.key.clone(), p);
        }
    }
    Ok(out)
}

/// `('module', cls, source_file, source)`: whole-module pickles persist classes this way.
pub fn is_module_pid(g: &Graph, pid: NodeId) -> bool {
    g.as_seq(pid)
        .and_then(|s| s.first())
        .and_then(|&t| g.as_str(t))
        .is_some_and(|t| t == "module")
}

/// Parsed legacy stream: the main object and where each storage's bytes are.
pub struct Legacy {
    pub root: NodeId,
    pub storages: HashMap<String, Storage>,
}

/// Parse pickles #2–#5 (pickle #1, the magic, has been read) and locate the storages.
/// `data` supplies the raw region: the input file, or the nested bytes.
pub fn parse_rest(
    graph: &mut Graph,
    findings: &mut Findings,
    opts: &Options,
    input: &mut Input<'_>,
    ctx: &Context,
) -> Result<(NodeId, Vec<String>, u64)> {
    let mut next = |label: &str| -> Result<NodeId> {
        let c = Context {
            member: Some(match &ctx.member {
                Some(m) => format!("{m} {label}"),
                None => label.to_string(),
            }),
            ..ctx.clone()
        };
        Ok(Machine::new(graph, findings, &opts.limits, c)
            .load(input)?
            .root)
    };
    let version = next("pickle #2 (protocol version)")?;
    let sys_info = next("pickle #3 (sys_info)")?;
    let root = next("pickle #4 (object)")?;
    let keys = next("pickle #5 (storage keys)")?;
    if graph.as_int(version) != Some(PROTOCOL_VERSION) {
        return Err(Error::malformed(
            "legacy torch stream: protocol version is not 1001",
        ));
    }
    if !matches!(graph.get(sys_info), Node::Dict(_)) {
        return Err(Error::malformed(
            "legacy torch stream: sys_info is not a dict",
        ));
    }
    let keys: Vec<String> = graph
        .as_seq(keys)
        .ok_or_else(|| Error::malformed("legacy torch stream: storage key list is not a list"))?
        .iter()
        .map(|&k| match graph.get(k) {
            Node::Str(s) => Ok(s.to_string()),
            Node::Int(i) => Ok(i.to_string()),
            _ => Err(Error::malformed(
                "legacy torch stream: storage key is not a string",
            )),
        })
        .collect::<Result<_>>()?;
    Ok((root, keys, input.pos()))
}

/// Walk the raw storage region: `int64 numel` then `numel * itemsize` bytes, per key.
pub fn locate_storages(
    graph: &Graph,
    keys: &[String],
    mut pos: u64,
    end: u64,
    data: &mut dyn ReadAt,
    inline: Option<&Arc<[u8]>>,
) -> Result<HashMap<String, Storage>> {
    let pids = storage_pids(graph)?;
    let mut out = HashMap::new();
    for key in keys {
        let pid = pids.get(key).ok_or_else(|| {
            Error::malformed(format!(
                "legacy torch stream: storage {key} is listed but never used"
            ))
        })?;
        let itemsize = pid.dtype.map_or(1, TorchDtype::itemsize);
        let mut count = [0u8; 8];
        if pos.checked_add(8).is_none_or(|e| e > end) {
            return Err(Error::malformed(format!(
                "legacy torch stream: truncated before storage {key}"
            )));
        }
        data.read_at(pos, &mut count)?;
        let numel = u64::from_le_bytes(count);
        if numel != pid.numel {
            return Err(Error::malformed(format!(
                "legacy torch stream: storage {key} has {numel} elements on disk but {} in the pickle",
                pid.numel
            )));
        }
        let nbytes = numel
            .checked_mul(itemsize)
            .ok_or_else(|| Error::malformed("legacy torch stream: storage size overflows"))?;
        let start = pos + 8;
        let stop = start
            .checked_add(nbytes)
            .filter(|&s| s <= end)
            .ok_or_else(|| {
                Error::malformed(format!(
                    "legacy torch stream: storage {key} runs past the end"
                ))
            })?;
        let source = match inline {
            Some(bytes) => DataSource::Inline(Arc::from(&bytes[start as usize..stop as usize])),
            None => DataSource::File {
                offset: start,
                len: nbytes,
            },
        };
        out.insert(
            key.clone(),
            Storage {
                key: key.clone(),
                dtype: pid.dtype,
                source,
                big_endian: false,
            },
        );
        pos = stop;
    }
    Ok(out)
}

/// Storage lookups for a parsed legacy stream (including pre-1.0 views into root storages).
pub struct LegacyStorages<'a> {
    pub storages: &'a HashMap<String, Storage>,
}

impl StorageResolver for LegacyStorages<'_> {
    fn storage(&mut self, g: &Graph, node: NodeId) -> Result<Storage> {
        let Node::PersistentId(pid) = g.get(node) else {
            return Err(Error::malformed("tensor storage is not a persistent id"));
        };
        let p = parse_pid(g, *pid)?;
        match p.view {
            None => self
                .storages
                .get(&p.key)
                .cloned()
                .ok_or_else(|| Error::malformed(format!("storage {} has no data", p.key))),
            Some((root_key, off, size)) => {
                let root = self.storages.get(&root_key).ok_or_else(|| {
                    Error::malformed(format!("view of missing storage {root_key}"))
                })?;
                let item = p.dtype.map_or(1, TorchDtype::itemsize);
                let (start, len) = off
                    .checked_mul(item)
                    .zip(size.checked_mul(item))
                    .filter(|(s, l)| s.checked_add(*l).is_some_and(|e| e <= root.source.len()))
                    .ok_or_else(|| {
                        Error::malformed(format!("storage view {} is out of bounds", p.key))
                    })?;
                let source = match &root.source {
                    DataSource::File { offset, .. } => DataSource::File {
                        offset: offset + start,
                        len,
                    },
                    DataSource::Inline(b) => {
                        DataSource::Inline(Arc::from(&b[start as usize..(start + len) as usize]))
                    }
                };
                Ok(Storage {
                    key: format!("{root_key}@{start}"),
                    dtype: p.dtype,
                    source,
                    big_endian: false,
                })
            }
        }
    }
}

/// `torch.storage._load_from_bytes(b)`: `b` is a complete legacy stream whose object is one
/// storage. Parsed with the same machine (its findings count like the outer file's).
pub fn load_from_bytes(
    graph: &Graph,
    bytes_node: NodeId,
    findings: &mut Findings,
    opts: &Options,
    nesting: usize,
) -> Result<Storage> {
    if nesting + 1 > opts.limits.max_nested_pickles {
        return Err(Error::limit(
            "max_nested_pickles",
            "nested torch streams are nested too deeply",
        ));
    }
    let bytes: Arc<[u8]> = match graph.get(bytes_node) {
        Node::Bytes(b) | Node::ByteArray(b) => Arc::from(&b[..]),
        _ => return Err(Error::malformed("_load_from_bytes argument is not bytes")),
    };
    let mut inner = Graph::new(&opts.limits);
    let ctx = Context {
        member: Some(format!("nested torch stream (depth {})", nesting + 1)),
        nesting: nesting + 1,
        ..Default::default()
    };
    let len = bytes.len() as u64;
    let mut cursor = std::io::Cursor::new(&bytes[..]);
    let (root, keys, data_start) = {
        let mut input = Input::new(&mut cursor, 0, len);
        let first =
            Machine::new(&mut inner, findings, &opts.limits, ctx.clone()).load(&mut input)?;
        if !is_magic(&inner, first.root) {
            return Err(Error::malformed(
                "_load_from_bytes argument is not a torch stream",
            ));
        }
        parse_rest(&mut inner, findings, opts, &mut input, &ctx)?
    };
    let mut reader = crate::tensors::gather::SliceReader(&bytes);
    let storages = locate_storages(&inner, &keys, data_start, len, &mut reader, Some(&bytes))?;
    if !matches!(inner.get(root), Node::PersistentId(_)) {
        return Err(Error::malformed(
            "_load_from_bytes stream does not hold a storage",
        ));
    }
    LegacyStorages {
        storages: &storages,
    }
    .storage(&inner, root)
}
