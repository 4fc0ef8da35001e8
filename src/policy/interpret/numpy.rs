//! numpy's pickle support (`numpy/_core/multiarray`, `numeric`): `_reconstruct` +
//! `ndarray.__setstate__`, `dtype` + `dtype.__setstate__`, `scalar`, `_frombuffer`.

use super::{bad, reject, unmodelled, Interp};
use crate::error::Result;
use crate::pickle::value::{
    ArrayData, ArrayNode, CallKind, ClassKnowledge, Graph, Node, NodeId, NumpyDtype, Object,
    Placeholder,
};
use crate::policy::registry::{self, Kind};

/// `_reconstruct(numpy.ndarray, shape, typecode)`: an empty array that BUILD fills. Any other
/// subtype would run that class's `__array_finalize__` (and its own `__setstate__`).
pub fn reconstruct(g: &mut Graph, callable: NodeId, args: &[NodeId]) -> Result<Interp> {
    let [subtype, _, _] = args else {
        return Err(bad("numpy _reconstruct", "expected 3 arguments"));
    };
    let is_ndarray = match g.get(*subtype) {
        Node::Global(gl) => {
            registry::lookup(&gl.module, &gl.name).is_some_and(|e| e.kind == Kind::NumpyArrayClass)
        }
        _ => false,
    };
    if !is_ndarray {
        return unmodelled("_reconstruct of an array subtype other than numpy.ndarray");
    }
    if !args.iter().skip(1).all(|&a| super::is_plain(g, a)) {
        return unmodelled("_reconstruct with arguments that are not plain data");
    }
    let mut o = Object::new(
        callable,
        Vec::new(),
        None,
        CallKind::Reduce,
        ClassKnowledge::Registered(Kind::NumpyReconstruct),
    );
    o.placeholder = Some(Placeholder::NumpyArray);
    Ok(Interp::Value(g.add(Node::Object(Box::new(o)))?))
}

/// `numpy.dtype(descr[, align, copy])` with a str descr.
pub fn dtype(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    let descr = match args {
        [d, rest @ ..] if rest.len() <= 2 => g.as_str(*d).map(str::to_string),
        _ => None,
    };
    let flags_plain = args
        .iter()
        .skip(1)
        .all(|&a| matches!(g.get(a), Node::Bool(_) | Node::Int(_)));
    let Some(descr) = descr.filter(|_| flags_plain) else {
        return reject(g, args, "numpy.dtype", "not (str[, bool, bool])");
    };
    let (byteorder, descr) = split_byteorder(&descr);
    let copy = args.get(2).is_some_and(|&c| g.as_bool(c) == Some(true));
    let builtin = matches!(byteorder, '=' | '<' | '|')
        && descr
            .chars()
            .next()
            .is_some_and(|k| matches!(k, 'b' | 'i' | 'u' | 'f' | 'c' | '?' | 'O'));
    Ok(Interp::Value(g.add(Node::NumpyDtype(NumpyDtype {
        hasobject: descr.starts_with('O'),
        shared: builtin && !copy,
        descr: descr.into(),
        byteorder,
    }))?))
}

fn split_byteorder(descr: &str) -> (char, &str) {
    match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    }
}

/// `dtype.__setstate__(state)`: the byte order, and whether the dtype is structured.
pub fn dtype_setstate(g: &mut Graph, target: NodeId, state: NodeId) -> Result<Interp> {
    if !super::is_plain(g, state) {
        return unmodelled("dtype state that is not plain data");
    }
    if matches!(g.get(target), Node::NumpyDtype(d) if d.shared) {
        // numpy's shared singleton ignores the state.
        return Ok(Interp::Value(target));
    }
    let Some(items) = g.as_seq(state).map(<[NodeId]>::to_vec) else {
        return Err(bad("numpy dtype BUILD", "state is not a tuple"));
    };
    let byteorder = items
        .get(1)
        .and_then(|&b| g.as_str(b))
        .and_then(|s| s.chars().next());
    let structured = items
        .iter()
        .skip(2)
        .take(3)
        .any(|&i| !matches!(g.get(i), Node::None));
    // The 8th item is the dtype's flags; NPY_ITEM_HASOBJECT (0x01) marks object fields.
    let hasobject = items
        .get(7)
        .and_then(|&f| g.as_int(f))
        .is_some_and(|f| f & 1 != 0);
    if let Node::NumpyDtype(dt) = g.get_mut(target) {
        dt.hasobject |= hasobject;
        if let Some(b) = byteorder {
            dt.byteorder = b;
        }
        if structured && !dt.descr.starts_with("structured:") {
            dt.descr = format!("structured:{}", dt.descr).into();
        }
    }
    Ok(Interp::Value(target))
}

/// `scalar(dtype, bytes)`: numpy scalars become plain Python numbers (hyper-parameters, never
/// tensors); an object-dtype scalar is its object.
pub fn scalar(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    let [dtype, data] = args else {
        return Err(bad("numpy scalar", "expected 2 arguments"));
    };
    let Node::NumpyDtype(dt) = g.get(*dtype).clone() else {
        return reject(g, args, "numpy scalar", "dtype is not a numpy dtype");
    };
    if dt.descr.starts_with('O') {
        return Ok(Interp::Value(*data));
    }
    let bytes: Vec<u8> = match g.get(*data) {
        Node::Bytes(b) => b.to_vec(),
        Node::Str(s) => s.chars().map(|c| c as u32 as u8).collect(),
        _ => return reject(g, args, "numpy scalar", "data is not bytes"),
    };
    let swap = dt.byteorder == '>';
    let le = |n: usize| -> Option<Vec<u8>> {
        (bytes.len() == n).then(|| {
            let mut v = bytes.clone();
            if swap {
                v.reverse();
            }
            v
        })
    };
    let node = match &*dt.descr {
        "f8" => le(8).map(|b| Node::Float(f64::from_le_bytes(b.try_into().unwrap_or_default()))),
        "f4" => {
            le(4).map(|b| Node::Float(f32::from_le_bytes(b.try_into().unwrap_or_default()) as f64))
        }
        "i8" => le(8).map(|b| Node::Int(i64::from_le_bytes(b.try_into().unwrap_or_default()))),
        "i4" => {
            le(4).map(|b| Node::Int(i32::from_le_bytes(b.try_into().unwrap_or_default()) as i64))
        }
        "b1" => le(1).map(|b| Node::Bool(b[0] != 0)),
        _ => None,
    };
    Ok(Interp::Value(
        g.add(node.unwrap_or(Node::Bytes(bytes.into())))?,
    ))
}

/// `_frombuffer(buffer, dtype, shape, order)` (protocol 5 arrays).
pub fn frombuffer(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    let [buf, dtype, shape, order] = args else {
        return Err(bad("numpy _frombuffer", "expected 4 arguments"));
    };
    let Node::NumpyDtype(dt) = g.get(*dtype).clone() else {
        return reject(g, args, "numpy _frombuffer", "dtype is not a numpy dtype");
    };
    let Some(shape) = nonneg_shape(g, *shape) else {
        return reject(g, args, "numpy _frombuffer", "shape is not a tuple of ints");
    };
    let fortran = g.as_str(*order) == Some("F");
    if !matches!(g.get(*buf), Node::Bytes(_) | Node::ByteArray(_)) {
        return reject(g, args, "numpy _frombuffer", "buffer is not bytes");
    }
    Ok(Interp::Value(g.add(Node::Array(Box::new(ArrayNode {
        dtype: dt,
        shape,
        fortran,
        data: ArrayData::Inline(*buf),
    })))?))
}

pub fn nonneg_shape(g: &Graph, id: NodeId) -> Option<Vec<u64>> {
    g.as_int_seq(id)?
        .into_iter()
        .map(|d| u64::try_from(d).ok())
        .collect()
}

/// `ndarray.__setstate__((version, shape, dtype, is_fortran, rawdata))` (version optional):
/// the array it describes, or why the machine cannot model it.
pub fn array_setstate(
    g: &mut Graph,
    state: NodeId,
) -> Result<std::result::Result<ArrayNode, String>> {
    let what = "numpy array BUILD";
    let Some(items) = g.as_seq(state).map(<[NodeId]>::to_vec) else {
        return if super::is_plain(g, state) {
            Err(bad(what, "state is not a tuple"))
        } else {
            Ok(Err("ndarray state that is not plain data".into()))
        };
    };
    let items = match items.len() {
        5 => &items[1..],
        4 => &items[..],
        _ => {
            return Err(bad(
                what,
                "state is not (version, shape, dtype, fortran, data)",
            ))
        }
    };
    let Some(shape) = nonneg_shape(g, items[0]) else {
        return Err(bad(what, "shape is not a tuple of ints"));
    };
    let Node::NumpyDtype(dtype) = g.get(items[1]).clone() else {
        return Err(bad(what, "dtype is not a numpy dtype"));
    };
    let fortran = match g.get(items[2]) {
        Node::Bool(b) => *b,
        Node::Int(i) => *i != 0,
        _ => {
            return Ok(Err(
                "is_fortran that is not a bool (its truth value would run code)".into(),
            ))
        }
    };
    let data = match g.get(items[3]) {
        Node::Bytes(_) | Node::ByteArray(_) => ArrayData::Inline(items[3]),
        Node::Str(s) => {
            // Python 2 pickles carry the raw data as a latin-1 str.
            let bytes: Vec<u8> = s.chars().map(|c| c as u32 as u8).collect();
            ArrayData::Inline(g.add(Node::Bytes(bytes.into()))?)
        }
        Node::List(_) => ArrayData::Objects(items[3]),
        _ => return Err(bad(what, "data is neither bytes nor a list")),
    };
    Ok(Ok(ArrayNode {
        dtype,
        shape,
        fortran,
        data,
    }))
}
