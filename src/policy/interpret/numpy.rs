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

/// `dtype.__setstate__(state)` for the states numpy writes: version 3
/// `(3, byteorder, subarray, names, fields, elsize, alignment, flags)` and version 4 (the same
/// plus metadata). numpy takes the byte order, the element size of flexible types and the
/// object flag from the state (descriptor.c arraydescr_setstate), so they are applied here;
/// other versions, subarray dtypes and states that contradict the dtype are refused.
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
    let version = items.first().and_then(|&v| g.as_int(v));
    match (version, items.len()) {
        (Some(3), 8) | (Some(4), 9) => {}
        _ => {
            return Err(crate::error::Error::unsupported(format!(
                "a numpy dtype state of version {version:?} with {} items (numpy writes version 3 or 4)",
                items.len()
            )))
        }
    }
    let byteorder = g.as_str(items[1]).and_then(|s| s.chars().next());
    if !matches!(g.get(items[2]), Node::None) {
        return Err(crate::error::Error::unsupported(
            "a numpy subarray dtype (its shape is part of the dtype)",
        ));
    }
    let structured =
        !matches!(g.get(items[3]), Node::None) || !matches!(g.get(items[4]), Node::None);
    let elsize = g.as_int(items[5]).unwrap_or(-1);
    let flags = g.as_int(items[7]).unwrap_or(0);
    let state_hasobject = flags & 1 != 0;
    let Node::NumpyDtype(dt) = g.get(target).clone() else {
        return Err(bad("numpy dtype BUILD", "not a dtype"));
    };
    let kind = dt
        .descr
        .trim_start_matches("structured:")
        .chars()
        .next()
        .unwrap_or('?');
    let object_kind = kind == 'O';
    if !structured && object_kind != state_hasobject {
        // An object dtype whose state clears the object flag makes numpy read raw bytes as
        // object pointers (and the reverse reads pointers as numbers): never inert.
        return unmodelled("a dtype state whose object flag contradicts the dtype (numpy would treat bytes as object pointers)");
    }
    let flexible = matches!(kind, 'V' | 'S' | 'U');
    let descr: Box<str> = if flexible && elsize > 0 {
        let n = if kind == 'U' { elsize / 4 } else { elsize };
        let code = format!("{kind}{n}");
        if structured {
            format!("structured:{code}").into()
        } else {
            code.into()
        }
    } else if structured && !dt.descr.starts_with("structured:") {
        format!("structured:{}", dt.descr).into()
    } else {
        dt.descr.clone()
    };
    if let Node::NumpyDtype(d) = g.get_mut(target) {
        d.descr = descr;
        d.hasobject = if structured {
            state_hasobject
        } else {
            object_kind
        };
        if let Some(b) = byteorder {
            d.byteorder = b;
        }
    }
    Ok(Interp::Value(target))
}

/// `scalar(dtype, bytes)`: numpy scalars are numbers, bools, `str_` and `bytes_`, which hash and
/// compare like the Python values they equal (a `numpy.str_` dict key is a str key); they are
/// kept as those values (hyper-parameters, never tensors). An object-dtype scalar is its object.
pub fn scalar(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    let [dtype, data] = args else {
        return Err(bad("numpy scalar", "expected 2 arguments"));
    };
    let Node::NumpyDtype(dt) = g.get(*dtype).clone() else {
        return reject(g, args, "numpy scalar", "dtype is not a numpy dtype");
    };
    if dt.hasobject {
        return Ok(Interp::Value(*data));
    }
    let bytes: Vec<u8> = match g.get(*data) {
        Node::Bytes(b) => b.to_vec(),
        // Python 2 pickles carry the raw data as a str, which numpy encodes back to latin-1.
        // The machine decodes such strs as UTF-8 (torch.load's encoding); a char beyond
        // latin-1 means only a loader decoding with latin-1 (or bytes) can read this scalar, and
        // to that loader the data are the raw bytes.
        Node::Str(s) if s.chars().all(|c| (c as u32) < 256) => {
            s.chars().map(|c| c as u32 as u8).collect()
        }
        Node::Str(s) => s.as_bytes().to_vec(),
        _ => return reject(g, args, "numpy scalar", "data is not bytes"),
    };
    let node = scalar_value(&dt, &bytes)
        .ok_or_else(|| bad("numpy scalar", "data shorter than the dtype's item"))?;
    Ok(Interp::Value(g.add(node)?))
}

/// The Python value a numpy scalar of `dt` over `bytes` equals (numpy reads the first
/// itemsize bytes and ignores the rest).
fn scalar_value(dt: &NumpyDtype, bytes: &[u8]) -> Option<Node> {
    let code = &*dt.descr;
    let kind = code.chars().next()?;
    let size = crate::tensors::numpy::itemsize(code).unwrap_or(0) as usize;
    let raw = bytes.get(..size)?;
    let le: Vec<u8> = if dt.byteorder == '>' && !matches!(kind, 'S' | 'V') {
        match kind {
            // complex: each half swapped on its own
            'c' => raw
                .chunks(size / 2)
                .flat_map(|h| h.iter().rev().copied())
                .collect(),
            'U' => raw
                .chunks(4)
                .flat_map(|c| c.iter().rev().copied())
                .collect(),
            _ => raw.iter().rev().copied().collect(),
        }
    } else {
        raw.to_vec()
    };
    let int = |signed: bool| -> Option<Node> {
        let mut buf = [0u8; 8];
        buf[..le.len()].copy_from_slice(&le);
        if signed && le.last().is_some_and(|b| b & 0x80 != 0) {
            for b in &mut buf[le.len()..] {
                *b = 0xff;
            }
        }
        let v = i64::from_le_bytes(buf);
        if !signed && le.len() == 8 && v < 0 {
            return Some(crate::pickle::text::long_from_le(&[&le[..], &[0]].concat()));
        }
        Some(Node::Int(v))
    };
    Some(match (kind, size) {
        ('b', 1) if code.starts_with("b1") => Node::Bool(le[0] != 0),
        ('?', 1) => Node::Bool(le[0] != 0),
        ('i', 1 | 2 | 4 | 8) => int(true)?,
        ('u', 1 | 2 | 4 | 8) => int(false)?,
        ('f', 2) => Node::Float(half_to_f64(u16::from_le_bytes([le[0], le[1]]))),
        ('f', 4) => Node::Float(f32::from_le_bytes(le[..4].try_into().ok()?) as f64),
        ('f', 8) => Node::Float(f64::from_le_bytes(le[..8].try_into().ok()?)),
        ('c', 8) => Node::Complex(
            f32::from_le_bytes(le[..4].try_into().ok()?) as f64,
            f32::from_le_bytes(le[4..8].try_into().ok()?) as f64,
        ),
        ('c', 16) => Node::Complex(
            f64::from_le_bytes(le[..8].try_into().ok()?),
            f64::from_le_bytes(le[8..16].try_into().ok()?),
        ),
        ('U', _) => {
            // UCS4, trailing NULs stripped (numpy's str_ of a fixed-width item).
            let mut s = String::new();
            for c in le.chunks(4) {
                let cp = u32::from_le_bytes(c.try_into().ok()?);
                s.push(char::from_u32(cp)?);
            }
            Node::Str(s.trim_end_matches('\0').into())
        }
        ('S', _) => {
            let end = le.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            Node::Bytes(le[..end].into())
        }
        // datetimes, raw voids, long doubles: an opaque value
        _ => Node::Bytes(le.into()),
    })
}

/// IEEE 754 binary16 to f64.
fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
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
        lent: false,
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
        lent: false,
    }))
}
