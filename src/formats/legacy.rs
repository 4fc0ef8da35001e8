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
    /// The key was a str (torch writes str keys). The zip format formats any key into a record
    /// name (`f"data/{key}"`), where an int and its digits are the same; the legacy stream keys a
    /// dict with it, where they are not.
    pub key_is_str: bool,
    /// The key was bytes: `f"data/{key}"` is then `data/b'...'`, never the decoded name.
    pub key_is_bytes: bool,
    /// The device tag `restore_location` receives (`cpu`, `cuda:0`, ...).
    pub location: String,
}

impl StoragePid {
    /// Whether torch's default `restore_location` keeps this storage's bytes
    /// (`default_restore_location` and the `_package_registry` deserializers in
    /// `torch/serialization.py`): `cpu` exactly, `cuda`/`mps`/`xpu` devices (the bytes are
    /// copied to the device). `meta` drops the bytes (the loaded tensor has no data), and any
    /// other tag needs a backend modelguard does not model: both are refused.
    pub fn check_location(&self) -> Result<()> {
        check_location(&self.key, &self.location)
    }
}

/// [`StoragePid::check_location`] for a storage `key` restored to `location` (the TAR format's
/// storage headers carry the same tag).
pub fn check_location(key: &str, location: &str) -> Result<()> {
    let l = location;
    let (kind, index) = l.split_once(':').unwrap_or((l, "0"));
    let index_ok = !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit());
    match kind {
        "cpu" if l == "cpu" => Ok(()),
        "cuda" | "mps" | "xpu" if index_ok => Ok(()),
        "meta" if l == "meta" => Err(Error::unsupported(format!(
            "storage {key} is on the meta device: torch.load returns tensors without data"
        ))),
        _ => Err(Error::unsupported(format!(
            "storage {key} has location {l:?}, which torch restores only with a backend \
             modelguard does not model"
        ))),
    }
}

/// Which loader unpacks a storage persistent id, and so how many items it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidShape {
    /// `_load`'s `persistent_load` (torch/serialization.py): `storage_type, key, location,
    /// numel = saved_id[1:]`, exactly 5 items.
    Zip,
    /// `_legacy_load`'s `persistent_load`: `storage_type, root_key, location, numel,
    /// view_metadata = data`, exactly 6 items.
    Legacy,
    /// The C++ unpickler of `torch.jit.load` (`Unpickler` BINPERSID, unpickler.cpp) reads
    /// `args.at(0)` to `args.at(4)` and ignores the rest.
    Script,
}

impl PidShape {
    /// The item counts the loader unpacks, and how to say them.
    fn arity(self) -> (std::ops::RangeInclusive<usize>, &'static str) {
        match self {
            PidShape::Zip => (5..=5, "exactly 5: ('storage', type, key, location, numel)"),
            PidShape::Legacy => (
                6..=6,
                "exactly 6: ('storage', type, key, location, numel, view_metadata)",
            ),
            PidShape::Script => (
                5..=usize::MAX,
                "at least 5: ('storage', type, key, location, numel)",
            ),
        }
    }
}

pub fn parse_pid(g: &Graph, pid: NodeId, shape: PidShape) -> Result<StoragePid> {
    let bad = |why: &str| Error::malformed(format!("storage persistent id: {why}"));
    // Every loader requires a tuple (`isinstance(saved_id, tuple)`, `toTuple()`).
    let Node::Tuple(items) = g.get(pid) else {
        return Err(bad("not a tuple"));
    };
    let (counts, expected) = shape.arity();
    if !counts.contains(&items.len()) {
        return Err(bad(&format!(
            "{} items, but the loader unpacks {expected}",
            items.len()
        )));
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
    let key_is_str = matches!(g.get(items[2]), Node::Str(_));
    let key_is_bytes = matches!(g.get(items[2]), Node::Bytes(_));
    let key = match g.get(items[2]) {
        Node::Str(s) => s.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        _ => return Err(bad("key is not a string")),
    };
    let location = match g.get(items[3]) {
        Node::Str(s) => s.to_string(),
        Node::Bytes(b) if b.is_ascii() => String::from_utf8_lossy(b).into_owned(),
        _ => return Err(bad("location is not a string")),
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
        location,
        key_is_str,
        key_is_bytes,
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
            let p = parse_pid(g, *pid, PidShape::Legacy)?;
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
            Node::Int(i) => Err(not_str_key(&i.to_string())),
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

/// Legacy streams key `deserialized_objects` by the key object itself: an int key and the str
/// of its digits are two keys there, which the string keys used here cannot tell apart.
fn not_str_key(key: &str) -> Error {
    Error::unsupported(format!(
        "legacy storage key {key} is not a str: torch writes str keys, and compares keys by \
         type as well as value"
    ))
}

/// Where the storage one persistent-id call returns lives: `len` bytes at byte `offset` of the
/// storage whose data the stream files under `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StorageRef {
    base: String,
    offset: u64,
    len: u64,
    /// The dtype of the TypedStorage object torch made for it.
    dtype: Option<TorchDtype>,
}

/// What torch's legacy `persistent_load` returns for each storage persistent id, in the order
/// the pickle calls it (`_legacy_load` in `torch/serialization.py`). `deserialized_objects` is
/// keyed by the FIRST reference: a root key seen before is the object made then (which may be a
/// view), and a view key already known returns that object, not a new slice of this root. The
/// data section later writes each listed key's bytes into whatever object that key names.
fn first_references(
    g: &Graph,
) -> Result<(HashMap<NodeId, StorageRef>, HashMap<String, StorageRef>)> {
    let mut objects: HashMap<String, StorageRef> = HashMap::new();
    let mut calls = HashMap::new();
    for id in 0..g.len() as NodeId {
        let Node::PersistentId(pid) = g.get(id) else {
            continue;
        };
        if is_module_pid(g, *pid) {
            continue;
        }
        let p = parse_pid(g, *pid, PidShape::Legacy)?;
        p.check_location()?;
        if !p.key_is_str {
            return Err(not_str_key(&p.key));
        }
        let item = p.dtype.map_or(1, TorchDtype::itemsize);
        let nbytes = p
            .numel
            .checked_mul(item)
            .ok_or_else(|| Error::malformed("storage size overflows"))?;
        let typed = objects
            .entry(p.key.clone())
            .or_insert_with(|| StorageRef {
                base: p.key.clone(),
                offset: 0,
                len: nbytes,
                dtype: p.dtype,
            })
            .clone();
        if typed.dtype != p.dtype {
            // torch returns the earlier object with its own dtype (or re-wraps its bytes).
            return Err(Error::unsupported(format!(
                "storage {} is referenced with two dtypes",
                p.key
            )));
        }
        let result = match p.view {
            None => typed,
            Some((view_key, off, size)) => match objects.get(&view_key) {
                Some(existing) if existing.dtype != p.dtype => {
                    return Err(Error::unsupported(format!(
                        "storage view {view_key} is referenced with two dtypes"
                    )))
                }
                Some(existing) => existing.clone(),
                None => {
                    // `typed._untyped_storage[a:b]` clamps; a slice that needs clamping is
                    // refused rather than modelled.
                    let (start, len) = off
                        .checked_mul(item)
                        .zip(size.checked_mul(item))
                        .filter(|(s, l)| s.checked_add(*l).is_some_and(|e| e <= typed.len))
                        .ok_or_else(|| {
                            Error::malformed(format!("storage view {view_key} is out of bounds"))
                        })?;
                    let view = StorageRef {
                        base: typed.base.clone(),
                        offset: typed.offset + start,
                        len,
                        dtype: p.dtype,
                    };
                    objects.insert(view_key, view.clone());
                    view
                }
            },
        };
        calls.insert(id, result);
    }
    Ok((calls, objects))
}

/// Storage lookups for a parsed legacy stream (including pre-1.0 views into root storages).
pub struct LegacyStorages<'a> {
    storages: &'a HashMap<String, Storage>,
    calls: HashMap<NodeId, StorageRef>,
}

impl<'a> LegacyStorages<'a> {
    /// The storages of a legacy stream whose data section was located as `storages`. Refuses a
    /// stream whose data section writes a key's bytes into part of another storage (a key that
    /// names a view): torch then changes the other storage's weights after the fact.
    pub fn new(g: &Graph, storages: &'a HashMap<String, Storage>) -> Result<Self> {
        let (calls, objects) = first_references(g)?;
        for (key, s) in storages {
            let own = objects
                .get(key)
                .is_some_and(|o| o.base == *key && o.offset == 0 && o.len == s.source.len());
            if !own {
                return Err(Error::unsupported(format!(
                    "legacy storage {key} names a view of another storage: torch writes its data \
                     into that storage when it loads, so the weights would differ from the file's"
                )));
            }
        }
        Ok(LegacyStorages { storages, calls })
    }
}

impl StorageResolver for LegacyStorages<'_> {
    fn storage(&mut self, _g: &Graph, node: NodeId) -> Result<Storage> {
        let r = self
            .calls
            .get(&node)
            .ok_or_else(|| Error::malformed("tensor storage is not a storage persistent id"))?;
        let root = self
            .storages
            .get(&r.base)
            .ok_or_else(|| Error::malformed(format!("storage {} has no data", r.base)))?;
        let dtype = root.dtype;
        if r.offset == 0 && r.len == root.source.len() {
            return Ok(root.clone());
        }
        let source = match &root.source {
            DataSource::File { offset, .. } => DataSource::File {
                offset: offset + r.offset,
                len: r.len,
            },
            DataSource::Inline(b) => DataSource::Inline(Arc::from(
                &b[r.offset as usize..(r.offset + r.len) as usize],
            )),
        };
        Ok(Storage {
            key: format!("{}@{}", r.base, r.offset),
            dtype,
            source,
            big_endian: false,
        })
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
    LegacyStorages::new(&inner, &storages)?.storage(&inner, root)
}
