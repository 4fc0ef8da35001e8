//! Built-in containers and constructors protocols 0-2 use: `OrderedDict`, `Counter`,
//! `defaultdict`, `set`, `frozenset`, `bytes`, `bytearray`, `_codecs.encode`, `complex`, `slice`.

use super::{reject, Interp};
use crate::error::{Error, Result};
use crate::pickle::value::{Dict, DictKind, Graph, Node, NodeId};
use crate::policy::registry::Kind;

/// `OrderedDict([items])`, `Counter([mapping])`, `defaultdict(factory[, items])`: items are a
/// dict or a sequence of 2-sequences of plain keys (their hash is the built-in types' own).
pub fn mapping(g: &mut Graph, kind: Kind, args: &[NodeId]) -> Result<Interp> {
    let (dict_kind, name) = match kind {
        Kind::OrderedDict => (DictKind::OrderedDict, "OrderedDict"),
        Kind::Counter => (DictKind::Counter, "Counter"),
        _ => (DictKind::DefaultDict, "defaultdict"),
    };
    let (factory, items) = if kind == Kind::DefaultDict {
        (args.first().copied(), args.get(1).copied())
    } else {
        (None, args.first().copied())
    };
    if args.len() > if kind == Kind::DefaultDict { 2 } else { 1 } {
        return reject(g, args, name, "too many arguments");
    }
    // The factory is stored and only called on a missing key after loading; it must be a
    // built-in type or None, so that what it would call is known.
    if let Some(f) = factory {
        let ok = match g.get(f) {
            Node::None => true,
            // Registered container types: called without arguments they build an empty value.
            Node::Global(gl) => {
                crate::policy::registry::lookup(&gl.module, &gl.name).is_some_and(|e| {
                    matches!(
                        e.kind,
                        Kind::BuiltinType
                            | Kind::Set
                            | Kind::Frozenset
                            | Kind::OrderedDict
                            | Kind::Counter
                            | Kind::DefaultDict
                            | Kind::Bytes
                            | Kind::Bytearray
                            | Kind::Complex
                    )
                })
            }
            _ => false,
        };
        if !ok {
            return super::unmodelled(
                "a defaultdict factory that is not a registered container type",
            );
        }
    }
    let pairs: Vec<(NodeId, NodeId)> = match items.map(|i| g.get(i)) {
        None => Vec::new(),
        Some(Node::Dict(src)) if src.attrs.is_empty() => src.entries.clone(),
        // Counter(iterable) counts elements; Counter pickles its items as a dict.
        Some(Node::List(v) | Node::Tuple(v)) if kind != Kind::Counter => {
            let mut pairs = Vec::with_capacity(v.len());
            for &p in v.clone().iter() {
                match g.as_seq(p) {
                    Some([k, v]) => pairs.push((*k, *v)),
                    _ => return reject(g, args, name, "items are not (key, value) pairs"),
                }
            }
            pairs
        }
        Some(_) => {
            return reject(
                g,
                args,
                name,
                "items are neither a dict nor a list of pairs",
            )
        }
    };
    for &(k, _) in &pairs {
        if !super::is_plain(g, k) {
            return super::unmodelled(format!("{name} hashes a key that is not plain data"));
        }
    }
    let d = g.add(Node::Dict(Box::new(Dict::new(dict_kind))))?;
    for (k, v) in pairs {
        g.dict_set(d, k, v)?;
    }
    Ok(Interp::Value(d))
}

/// `set([items])`, `frozenset([items])`.
pub fn set(g: &mut Graph, kind: Kind, args: &[NodeId]) -> Result<Interp> {
    let name = if kind == Kind::Set {
        "set"
    } else {
        "frozenset"
    };
    let items = match args {
        [] => Vec::new(),
        [i] => match g.get(*i) {
            Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => v.clone(),
            _ => return reject(g, args, name, "argument is not a sequence"),
        },
        _ => return reject(g, args, name, "too many arguments"),
    };
    if !items.iter().all(|&i| super::is_plain(g, i)) {
        return super::unmodelled(format!("{name} hashes an element that is not plain data"));
    }
    let s = g.add(if kind == Kind::Set {
        Node::Set(Vec::new())
    } else {
        Node::FrozenSet(Vec::new())
    })?;
    g.set_add(s, &items)?;
    Ok(Interp::Value(s))
}

/// `bytes()`, `bytes(b)`, `bytes(str, encoding)`, and the same for `bytearray`.
pub fn bytes(g: &mut Graph, kind: Kind, args: &[NodeId]) -> Result<Interp> {
    let name = if kind == Kind::Bytes {
        "bytes"
    } else {
        "bytearray"
    };
    let data: Vec<u8> = match args {
        [] => Vec::new(),
        [b] => match g.get(*b) {
            Node::Bytes(v) | Node::ByteArray(v) => v.to_vec(),
            _ => return reject(g, args, name, "argument is not bytes"),
        },
        [s, enc] => match encode(g, *s, *enc)? {
            Some(b) => b,
            None => return reject(g, args, name, "not (str, latin-1/utf-8/ascii)"),
        },
        _ => return reject(g, args, name, "too many arguments"),
    };
    let node = if kind == Kind::Bytes {
        Node::Bytes(data.into())
    } else {
        Node::ByteArray(data.into())
    };
    Ok(Interp::Value(g.add(node)?))
}

/// `_codecs.encode(str, encoding)`: how protocols 0-2 write bytes.
pub fn codecs_encode(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    match args {
        [s, enc] => match encode(g, *s, *enc)? {
            Some(b) => Ok(Interp::Value(g.add(Node::Bytes(b.into()))?)),
            None => reject(g, args, "_codecs.encode", "not (str, latin-1/utf-8/ascii)"),
        },
        _ => reject(g, args, "_codecs.encode", "expected (str, encoding)"),
    }
}

fn encode(g: &Graph, s: NodeId, enc: NodeId) -> Result<Option<Vec<u8>>> {
    let (Some(s), Some(enc)) = (g.as_str(s), g.as_str(enc)) else {
        return Ok(None);
    };
    Ok(match enc.to_ascii_lowercase().replace('_', "-").as_str() {
        "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" | "l1" => {
            let mut out = Vec::with_capacity(s.len());
            for c in s.chars() {
                let v = c as u32;
                if v > 255 {
                    return Err(Error::malformed(
                        "_codecs.encode: character outside latin-1",
                    ));
                }
                out.push(v as u8);
            }
            Some(out)
        }
        "utf-8" | "utf8" => Some(s.as_bytes().to_vec()),
        "ascii" if s.is_ascii() => Some(s.as_bytes().to_vec()),
        _ => None,
    })
}

/// `complex([real[, imag]])` of numbers.
pub fn complex(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    let num = |i: Option<&NodeId>| -> Option<f64> {
        match i.map(|&i| g.get(i)) {
            None => Some(0.0),
            Some(Node::Float(f)) => Some(*f),
            Some(Node::Int(i)) => Some(*i as f64),
            Some(Node::Bool(b)) => Some(*b as u8 as f64),
            _ => None,
        }
    };
    match (num(args.first()), num(args.get(1))) {
        (Some(r), Some(i)) if args.len() <= 2 => Ok(Interp::Value(g.add(Node::Complex(r, i))?)),
        _ => reject(g, args, "complex", "not (number[, number])"),
    }
}

/// `slice(...)` of plain values, kept as the tuple of its arguments.
pub fn slice(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    if args.is_empty() || args.len() > 3 {
        return Err(Error::malformed("slice: expected 1 to 3 arguments"));
    }
    if !args.iter().all(|&a| super::is_plain(g, a)) {
        return super::unmodelled("slice of values that are not plain data");
    }
    Ok(Interp::Value(g.add(Node::Tuple(args.to_vec()))?))
}
