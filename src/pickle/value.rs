//! The inert value graph a pickle builds. Nodes live in an arena and refer to each other by
//! index, so a memoised object referenced twice is one node (tied weights keep their identity),
//! cycles cost nothing, and dropping a 1,000,000-deep nesting cannot overflow the stack.
//!
//! Nothing here is ever callable: a GLOBAL is a name, and a call that is not on the allowlist is
//! an [`Object`] that records what *would* have been called with which arguments.

use crate::error::{Error, Result};
use crate::tensors::torch_dtype::TorchDtype;
use std::collections::HashMap;

pub type NodeId = u32;

#[derive(Debug, Clone)]
pub enum Node {
    None,
    Bool(bool),
    Int(i64),
    /// An integer outside i64, kept as little-endian two's-complement bytes (only compared, never computed with).
    BigInt(Box<[u8]>),
    Float(f64),
    Complex(f64, f64),
    Str(Box<str>),
    Bytes(Box<[u8]>),
    ByteArray(Box<[u8]>),
    Tuple(Vec<NodeId>),
    List(Vec<NodeId>),
    Dict(Box<Dict>),
    Set(Vec<NodeId>),
    FrozenSet(Vec<NodeId>),
    /// A symbolic reference `module.name`; resolving it would import code, so we never do.
    Global(Box<Global>),
    /// The argument of PERSID/BINPERSID: the container format resolves it (torch storages).
    PersistentId(NodeId),
    /// A call or instantiation that was not interpreted. Tensors inside stay reachable.
    Object(Box<Object>),
    /// A torch tensor produced by an allowlisted rebuild function.
    Tensor(Box<TensorNode>),
    /// A numpy array (from `_reconstruct`+BUILD, `_frombuffer`, or a joblib wrapper).
    Array(Box<ArrayNode>),
    /// A numpy dtype object.
    NumpyDtype(NumpyDtype),
    /// A torch dtype (`torch.float32`), a value rather than a call.
    TorchDtype(TorchDtype),
    /// A torch storage class (`torch.FloatStorage`), only meaningful inside a persistent id.
    StorageType(StorageType),
    /// `torch.storage._load_from_bytes(b)`: a nested legacy torch stream, parsed by the formats layer.
    LoadFromBytes(NodeId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    pub module: Box<str>,
    pub name: Box<str>,
}

impl Global {
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// What kind of storage class a persistent id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageType {
    /// `torch.XStorage` / `torch.cuda.XStorage`: elements of this dtype.
    Typed(TorchDtype),
    /// `torch.storage.UntypedStorage`: bytes; the tensor's dtype comes from `_rebuild_tensor_v3`.
    Untyped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Reduce,
    NewObj,
    NewObjEx,
    Inst,
    Obj,
}

#[derive(Debug, Clone)]
pub struct Object {
    /// The callable or class (usually a Global node).
    pub callable: NodeId,
    pub args: Vec<NodeId>,
    pub kwargs: Option<NodeId>,
    pub how: CallKind,
    /// What the machine knows about the instance's class: a registered class it models
    /// exactly, or nothing (an unregistered class instantiated without arguments, or the
    /// result of a call it did not model).
    pub class: ClassKnowledge,
    /// BUILD states applied to it, in order.
    pub state: Vec<NodeId>,
    /// Items appended or added to it (APPENDS, ADDITEMS on a non-container).
    pub items: Vec<NodeId>,
    /// Key/value pairs set on it (SETITEMS on a non-container, e.g. a dict subclass).
    pub dict_items: Vec<(NodeId, NodeId)>,
    /// The instance `__dict__` as BUILD wrote it (dict state keys and slot state setattr):
    /// what a later instance lookup (`__setstate__`, `extend`, `add`, joblib's `read`) finds
    /// before the class.
    pub attrs: Attrs,
    /// Set when this object is an allowlisted placeholder awaiting BUILD (numpy `_reconstruct`,
    /// legacy `torch.FloatTensor()`, joblib wrapper).
    pub placeholder: Option<Placeholder>,
}

impl Object {
    /// An object made by `how` from `callable` and `args`, with nothing written into it yet.
    pub fn new(
        callable: NodeId,
        args: Vec<NodeId>,
        kwargs: Option<NodeId>,
        how: CallKind,
        class: ClassKnowledge,
    ) -> Self {
        Object {
            callable,
            args,
            kwargs,
            how,
            class,
            state: Vec::new(),
            items: Vec::new(),
            dict_items: Vec::new(),
            attrs: Attrs::default(),
            placeholder: None,
        }
    }
}

/// What the machine knows about an object's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassKnowledge {
    /// An instance of a registered class (`argparse.Namespace`, joblib's wrapper): its
    /// reachable methods are known (and checked against the installed library by tests).
    Registered(crate::policy::registry::Kind),
    /// A `__torch__.*` class of a TorchScript archive: its code is the archive's own, graded by
    /// the TorchScript analysis.
    TorchScript,
    /// Anything else: its class's own methods, a `__getattr__`, or a planted value may answer
    /// any lookup.
    Unknown,
}

/// An instance `__dict__`: keys in first-set order, re-setting a key replaces its value.
#[derive(Debug, Clone, Default)]
pub struct Attrs {
    entries: Vec<(AttrKey, NodeId)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrKey {
    /// A str key: an attribute name a lookup can find.
    Name(Box<str>),
    /// Any other hashable key (dict state may hold them; no attribute lookup finds them).
    Other(NodeId),
}

impl Attrs {
    pub fn set(&mut self, key: AttrKey, value: NodeId) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// The value a lookup of `name` finds in this `__dict__`.
    pub fn get(&self, name: &str) -> Option<NodeId> {
        self.entries.iter().find_map(|(k, v)| match k {
            AttrKey::Name(n) if &**n == name => Some(*v),
            _ => None,
        })
    }

    pub fn entries(&self) -> &[(AttrKey, NodeId)] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`, filled by BUILD.
    NumpyArray,
    /// `torch.FloatTensor()` / `torch.Tensor()` etc., filled by BUILD `(storage, offset, size, stride)`.
    LegacyTensor(Option<TorchDtype>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DictKind {
    Dict,
    OrderedDict,
    Counter,
    DefaultDict,
}

#[derive(Debug, Clone)]
pub struct Dict {
    pub kind: DictKind,
    pub entries: Vec<(NodeId, NodeId)>,
    /// Position of each hashable key in `entries`, so that re-setting a key replaces its value
    /// in place like Python does.
    index: HashMap<Key, usize>,
    /// The instance `__dict__` BUILD wrote (state_dict `_metadata`); plain dicts have none.
    pub attrs: Attrs,
}

impl Dict {
    pub fn new(kind: DictKind) -> Self {
        Dict {
            kind,
            entries: Vec::new(),
            index: HashMap::new(),
            attrs: Attrs::default(),
        }
    }
}

/// A hashable view of a key: equal keys in Python (`1 == True == 1.0`) are equal here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    None,
    Int(i64),
    FloatBits(u64),
    Complex(u64, u64),
    Big(Box<[u8]>),
    Str(Box<str>),
    /// A str with lone surrogates, by its code points (its text shows U+FFFD for them).
    Wtf8(Box<[u8]>),
    Bytes(Box<[u8]>),
    Tuple(Vec<Key>),
    FrozenSet(Vec<Key>),
    /// Objects, globals, NaNs: equal only to themselves.
    Identity(NodeId),
}

#[derive(Debug, Clone)]
pub struct TensorNode {
    /// The storage (a PersistentId or LoadFromBytes node), or the array for device-from-numpy
    /// tensors; None for layouts that carry no storage (meta, wrapper subclasses).
    pub storage: Option<NodeId>,
    /// Set by `_rebuild_tensor_v3` and legacy typed tensor classes; otherwise the storage's dtype.
    pub dtype: Option<TorchDtype>,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
    pub conj: bool,
    pub neg: bool,
    pub layout: TensorLayout,
    /// The `requires_grad` the rebuilder set (a Parameter made from it keeps it).
    pub requires_grad: bool,
    /// Pickled as `nn.Parameter`: its `requires_grad` (what `torch.load(weights_only=True)`
    /// gives back), reported so that the Python guard can return the same type.
    pub parameter: Option<bool>,
    /// The dtype a rebuilder converts the data to (`.to(dtype)`): the storage's own dtype or a
    /// refusal, never a silent conversion.
    pub cast: Option<TorchDtype>,
    /// Python attributes set on the tensor (`_set_obj_state` keys that are not tensor
    /// attributes), which later instance lookups find.
    pub attrs: Attrs,
}

impl TensorNode {
    /// A tensor of `layout` over `storage`, with no view, flags or attributes yet.
    pub fn new(storage: Option<NodeId>, layout: TensorLayout) -> Self {
        TensorNode {
            storage,
            dtype: None,
            offset: 0,
            size: Vec::new(),
            stride: Vec::new(),
            conj: false,
            neg: false,
            layout,
            requires_grad: false,
            parameter: None,
            cast: None,
            attrs: Attrs::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorLayout {
    Dense,
    /// Backed by a numpy array node instead of a storage.
    FromArray,
    Quantized,
    Sparse,
    Meta,
    WrapperSubclass,
    Nested,
}

#[derive(Debug, Clone)]
pub struct ArrayNode {
    pub dtype: NumpyDtype,
    pub shape: Vec<u64>,
    pub fortran: bool,
    pub data: ArrayData,
    /// A tensor shares this array's buffer (`torch.from_numpy`). `ndarray.__setstate__` on it
    /// again frees that buffer under the tensor: what the tensor then holds is undefined.
    pub lent: bool,
}

#[derive(Debug, Clone)]
pub enum ArrayData {
    /// Raw bytes held by a Bytes/ByteArray node.
    Inline(NodeId),
    /// Raw bytes in the pickle's input stream (joblib), at this position of the stream.
    Stream { offset: u64, len: u64 },
    /// An object array: a list of Python objects, never a tensor.
    Objects(NodeId),
}

/// Python hashes an integral float like the int it equals; NaN is only equal to itself.
fn float_key(f: f64, id: NodeId) -> Key {
    if f.is_nan() {
        return Key::Identity(id);
    }
    if f.fract() == 0.0 && f.abs() < 1.7e38 {
        // Exact: an integral f64 below 2^127 converts to i128 without rounding.
        let v = f as i128;
        if let Ok(small) = i64::try_from(v) {
            return Key::Int(small);
        }
        if let Node::BigInt(b) = crate::pickle::text::long_from_le(&v.to_le_bytes()) {
            return Key::Big(b);
        }
    }
    Key::FloatBits(f.to_bits())
}

/// A numpy dtype as far as we interpret it: the descr string (`f4`, `<i8`, `O8`...) and byte order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumpyDtype {
    pub descr: Box<str>,
    pub byteorder: char,
    /// The dtype holds Python objects (an `O` descr, or a structured dtype whose state sets
    /// NPY_ITEM_HASOBJECT): joblib and numpy unpickle its data instead of reading bytes.
    pub hasobject: bool,
    /// `numpy.dtype(code, align, copy=False)` of a native built-in type is numpy's shared
    /// singleton, whose `__setstate__` changes nothing (docs/unpickling-model.md §14.3).
    pub shared: bool,
}

/// The arena, in fixed-size chunks so that growing it never copies (a reallocating Vec would
/// briefly need twice the memory). Accounting happens here, so every allocation the pickle can
/// cause is counted against `max_graph_bytes` before it is made.
#[derive(Debug, Default)]
pub struct Graph {
    chunks: Vec<Vec<Node>>,
    len: usize,
    bytes: u64,
    max_nodes: usize,
    max_bytes: u64,
    constants: [Option<NodeId>; 3],
    wtf8: HashMap<NodeId, Box<[u8]>>,
}

const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;
/// What one node costs besides its heap payload.
pub const NODE_BYTES: u64 = std::mem::size_of::<Node>() as u64;

impl Graph {
    pub fn new(limits: &crate::limits::Limits) -> Self {
        Graph {
            max_nodes: limits.max_nodes,
            max_bytes: limits.max_graph_bytes,
            ..Default::default()
        }
    }

    pub fn add(&mut self, node: Node) -> Result<NodeId> {
        // None/True/False are immutable: one node each, like CPython's singletons.
        let constant = match node {
            Node::None => Some(0),
            Node::Bool(false) => Some(1),
            Node::Bool(true) => Some(2),
            _ => None,
        };
        if let Some(c) = constant {
            if let Some(id) = self.constants[c] {
                return Ok(id);
            }
        }
        if self.len >= self.max_nodes {
            return Err(Error::limit(
                "max_nodes",
                format!("the pickle builds more than {} values", self.max_nodes),
            ));
        }
        let payload = match &node {
            Node::Str(s) => s.len() as u64,
            Node::Bytes(b) | Node::ByteArray(b) | Node::BigInt(b) => b.len() as u64,
            Node::Tuple(v) | Node::List(v) | Node::Set(v) | Node::FrozenSet(v) => {
                4 * v.len() as u64
            }
            Node::Dict(_) => std::mem::size_of::<Dict>() as u64,
            Node::Global(g) => 32 + (g.module.len() + g.name.len()) as u64,
            Node::Object(o) => 96 + 4 * o.args.len() as u64,
            Node::Tensor(t) => 96 + 16 * t.size.len() as u64,
            Node::Array(a) => 96 + 8 * a.shape.len() as u64,
            _ => 0,
        };
        self.charge_bytes(NODE_BYTES + payload)?;
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks
            .last_mut()
            .expect("a chunk was just ensured")
            .push(node);
        let id = self.len as NodeId;
        self.len += 1;
        if let Some(c) = constant {
            self.constants[c] = Some(id);
        }
        Ok(id)
    }

    /// Bytes charged so far (the budget nested pickles parsed meanwhile must share).
    pub fn bytes_charged(&self) -> u64 {
        self.bytes
    }

    /// Bytes the graph may still charge.
    pub fn remaining_bytes(&self) -> u64 {
        self.max_bytes.saturating_sub(self.bytes)
    }

    /// Count bytes about to be allocated for the graph, before allocating them.
    pub fn charge_bytes(&mut self, n: u64) -> Result<()> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.max_bytes {
            return Err(Error::limit(
                "max_graph_bytes",
                format!(
                    "the pickle's values need more than {} bytes",
                    self.max_bytes
                ),
            ));
        }
        Ok(())
    }

    pub fn get(&self, id: NodeId) -> &Node {
        let i = id as usize;
        &self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }

    pub fn get_mut(&mut self, id: NodeId) -> &mut Node {
        let i = id as usize;
        &mut self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_str(&self, id: NodeId) -> Option<&str> {
        match self.get(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self, id: NodeId) -> Option<i64> {
        match self.get(id) {
            Node::Int(i) => Some(*i),
            Node::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    pub fn as_bool(&self, id: NodeId) -> Option<bool> {
        match self.get(id) {
            Node::Bool(b) => Some(*b),
            Node::Int(i) => Some(*i != 0),
            Node::None => Some(false),
            _ => None,
        }
    }

    /// Items of a tuple or list.
    pub fn as_seq(&self, id: NodeId) -> Option<&[NodeId]> {
        match self.get(id) {
            Node::Tuple(v) | Node::List(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_global(&self, id: NodeId) -> Option<&Global> {
        match self.get(id) {
            Node::Global(g) => Some(g),
            _ => None,
        }
    }

    /// A tuple/list of ints (sizes, strides, shapes).
    pub fn as_int_seq(&self, id: NodeId) -> Option<Vec<i64>> {
        self.as_seq(id)?.iter().map(|&i| self.as_int(i)).collect()
    }

    /// The key Python would hash `id` by, or None when Python refuses it as a key (lists,
    /// dicts, sets: "unhashable type").
    fn key_of(&self, id: NodeId, depth: usize) -> Option<Key> {
        if depth > 32 {
            return Some(Key::Identity(id));
        }
        Some(match self.get(id) {
            Node::None => Key::None,
            Node::Bool(b) => Key::Int(*b as i64),
            Node::Int(i) => Key::Int(*i),
            Node::Float(f) => float_key(*f, id),
            Node::Complex(r, 0.0) => float_key(*r, id),
            Node::Complex(r, i) => Key::Complex(r.to_bits(), i.to_bits()),
            Node::BigInt(b) => Key::Big(b.clone()),
            Node::Str(s) => match self.wtf8.get(&id) {
                Some(raw) => Key::Wtf8(raw.clone()),
                None => Key::Str(s.clone()),
            },
            Node::Bytes(b) => Key::Bytes(b.clone()),
            Node::Tuple(items) => Key::Tuple(
                items
                    .iter()
                    .map(|&i| self.key_of(i, depth + 1))
                    .collect::<Option<_>>()?,
            ),
            Node::FrozenSet(items) => {
                let mut keys: Vec<Key> = items
                    .iter()
                    .map(|&i| self.key_of(i, depth + 1))
                    .collect::<Option<_>>()?;
                keys.sort_by_cached_key(|k| format!("{k:?}"));
                Key::FrozenSet(keys)
            }
            Node::List(_) | Node::Dict(_) | Node::Set(_) | Node::ByteArray(_) => return None,
            _ => Key::Identity(id),
        })
    }

    /// Remember the code points of a str that holds lone surrogates (see [`Key::Wtf8`]).
    pub fn mark_wtf8(&mut self, id: NodeId, raw: Vec<u8>) {
        self.wtf8.insert(id, raw.into_boxed_slice());
    }

    /// Add items to a set node with Python semantics: equal elements are kept once.
    pub fn set_add(&mut self, set: NodeId, items: &[NodeId]) -> Result<()> {
        let mut keys = Vec::with_capacity(items.len());
        for &i in items {
            keys.push(
                self.key_of(i, 0)
                    .ok_or_else(|| Error::malformed("unhashable type as a set element"))?,
            );
        }
        let mut present: std::collections::HashSet<Key> = match self.get(set) {
            Node::Set(v) | Node::FrozenSet(v) => {
                v.iter().filter_map(|&i| self.key_of(i, 0)).collect()
            }
            _ => return Err(Error::malformed("ADDITEMS on something that is not a set")),
        };
        let mut fresh = Vec::new();
        for (k, &i) in keys.into_iter().zip(items) {
            if present.insert(k) {
                fresh.push(i);
            }
        }
        if let Node::Set(v) | Node::FrozenSet(v) = self.get_mut(set) {
            v.extend(fresh);
        }
        Ok(())
    }

    /// `d[key] = value` with Python semantics: an existing equal key keeps its position.
    pub fn dict_set(&mut self, dict: NodeId, key: NodeId, value: NodeId) -> Result<()> {
        let k = self
            .key_of(key, 0)
            .ok_or_else(|| Error::malformed("unhashable type as a dict key"))?;
        if let Node::Dict(d) = self.get_mut(dict) {
            match d.index.get(&k) {
                Some(&pos) => d.entries[pos].1 = value,
                None => {
                    d.index.insert(k, d.entries.len());
                    d.entries.push((key, value));
                }
            }
        }
        Ok(())
    }

    /// Find a value by string key in a dict node.
    pub fn dict_get(&self, dict: NodeId, key: &str) -> Option<NodeId> {
        match self.get(dict) {
            Node::Dict(d) => d.index.get(&Key::Str(key.into())).map(|&p| d.entries[p].1),
            _ => None,
        }
    }

    /// A short, bounded description of a value for findings ("what would have been called with").
    pub fn describe(&self, id: NodeId, budget: usize) -> String {
        let mut out = String::new();
        self.describe_into(id, &mut out, budget, 0);
        out
    }

    /// Like [`Graph::describe`] for an argument list, without building a tuple node.
    pub fn describe_items(&self, items: &[NodeId], budget: usize) -> String {
        let mut out = String::from("(");
        for (i, &it) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if out.len() >= budget {
                out.push('…');
                break;
            }
            self.describe_into(it, &mut out, budget, 1);
        }
        out.push(')');
        out
    }

    fn describe_into(&self, id: NodeId, out: &mut String, budget: usize, depth: usize) {
        if out.len() >= budget || depth > 6 {
            out.push('…');
            return;
        }
        let seq = |out: &mut String, items: &[NodeId], open: &str, close: &str| {
            out.push_str(open);
            for (i, &it) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if out.len() >= budget {
                    out.push('…');
                    break;
                }
                self.describe_into(it, out, budget, depth + 1);
            }
            out.push_str(close);
        };
        match self.get(id) {
            Node::None => out.push_str("None"),
            Node::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            Node::Int(i) => out.push_str(&i.to_string()),
            Node::BigInt(_) => out.push_str("<big int>"),
            Node::Float(f) => out.push_str(&f.to_string()),
            Node::Complex(r, i) => out.push_str(&format!("({r}+{i}j)")),
            Node::Str(s) => {
                let cut: String = s
                    .chars()
                    .take(budget.saturating_sub(out.len()).max(8))
                    .collect();
                out.push_str(&format!("{cut:?}"));
            }
            Node::Bytes(b) | Node::ByteArray(b) => out.push_str(&format!("<{} bytes>", b.len())),
            Node::Tuple(v) => seq(out, v, "(", ")"),
            Node::List(v) => seq(out, v, "[", "]"),
            Node::Set(v) | Node::FrozenSet(v) => seq(out, v, "{", "}"),
            Node::Dict(d) => out.push_str(&format!("{{<dict of {}>}}", d.entries.len())),
            Node::Global(g) => out.push_str(&g.dotted()),
            Node::PersistentId(_) => out.push_str("<persistent id>"),
            Node::Object(o) => {
                self.describe_into(o.callable, out, budget, depth + 1);
                seq(out, &o.args, "(", ")");
            }
            Node::Tensor(_) => out.push_str("<tensor>"),
            Node::Array(_) => out.push_str("<ndarray>"),
            Node::NumpyDtype(d) => out.push_str(&format!("dtype({})", d.descr)),
            Node::TorchDtype(d) => out.push_str(&format!("torch.{}", d.name())),
            Node::StorageType(_) => out.push_str("<storage type>"),
            Node::LoadFromBytes(_) => out.push_str("<nested torch stream>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_stay_small() {
        // The node budget assumes this; boxing the large variants keeps it so.
        const { assert!(NODE_BYTES <= 32) };
    }

    #[test]
    fn constants_are_shared_and_limits_hold() {
        let limits = crate::limits::Limits {
            max_nodes: 3,
            ..Default::default()
        };
        let mut g = Graph::new(&limits);
        let a = g.add(Node::None).unwrap();
        assert_eq!(g.add(Node::None).unwrap(), a);
        g.add(Node::Int(1)).unwrap();
        g.add(Node::Int(2)).unwrap();
        assert!(matches!(
            g.add(Node::Int(3)),
            Err(Error::Limit {
                limit: "max_nodes",
                ..
            })
        ));
    }

    #[test]
    fn dict_keys_follow_python_equality() {
        let mut g = Graph::new(&crate::limits::Limits::default());
        let d = g
            .add(Node::Dict(Box::new(Dict::new(DictKind::Dict))))
            .unwrap();
        let k1 = g.add(Node::Int(1)).unwrap();
        let k2 = g.add(Node::Bool(true)).unwrap();
        let v1 = g.add(Node::Str("a".into())).unwrap();
        let v2 = g.add(Node::Str("b".into())).unwrap();
        g.dict_set(d, k1, v1).unwrap();
        g.dict_set(d, k2, v2).unwrap();
        let Node::Dict(dd) = g.get(d) else { panic!() };
        assert_eq!(
            dd.entries,
            vec![(k1, v2)],
            "True == 1 replaces the value in place"
        );
    }
}
