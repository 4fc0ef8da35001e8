//! The allowlisted calls, interpreted as pure functions on already-built values. Each checks
//! its argument layout (formats.md §1.6, §6.2) and refuses anything it does not recognise, so a
//! malformed rebuild call is an error, not a guess.

use super::globals::{classify, Allowed, GlobalClass};
use crate::error::{Error, Result};
use crate::pickle::value::{
    ArrayData, ArrayNode, CallKind, Dict, DictKind, Global, Graph, Node, NodeId, NumpyDtype,
    Object, Placeholder, TensorLayout, TensorNode,
};

/// What BUILD did.
pub enum BuildOutcome {
    Done,
    /// BUILD on a module/function/class: a finding, state kept nowhere.
    OnGlobal(Global),
    /// A joblib wrapper: the array bytes follow in the stream.
    Joblib(JoblibRequest),
}

pub struct JoblibRequest {
    pub dtype: NumpyDtype,
    pub shape: Vec<u64>,
    pub fortran: bool,
    pub alignment: Option<u64>,
    pub nbytes: u64,
    pub object_dtype: bool,
}

/// The node a GLOBAL pushes.
pub fn global_value(g: &mut Graph, global: Global, class: &GlobalClass) -> Result<NodeId> {
    let node = match class {
        GlobalClass::Allowed(Allowed::TorchDtype(d)) => Node::TorchDtype(*d),
        GlobalClass::Allowed(Allowed::Storage(s)) => Node::StorageType(*s),
        _ => Node::Global(Box::new(global)),
    };
    g.add(node)
}

fn allowed_of(g: &Graph, callable: NodeId) -> Option<Allowed> {
    match g.get(callable) {
        Node::Global(gl) => match classify(gl) {
            GlobalClass::Allowed(a) => Some(a),
            _ => None,
        },
        Node::TorchDtype(_) | Node::StorageType(_) => None,
        _ => None,
    }
}

fn bad(what: &str, why: &str) -> Error {
    Error::malformed(format!("{what}: {why}"))
}

/// Interpret an allowlisted call. `Ok(None)` means "not interpreted": the machine records an
/// inert object and a finding.
pub fn call(
    g: &mut Graph,
    callable: NodeId,
    args: &[NodeId],
    kwargs: Option<NodeId>,
    how: CallKind,
) -> Result<Option<NodeId>> {
    let Some(a) = allowed_of(g, callable) else {
        return Ok(None);
    };
    if kwargs.is_some_and(|k| matches!(g.get(k), Node::Dict(d) if !d.entries.is_empty())) {
        return Ok(None);
    }
    use Allowed::*;
    let node = match a {
        RebuildTensorV2 | RebuildTensorV3 | RebuildTensor => rebuild_tensor(g, a, args)?,
        RebuildParameter | RebuildParameterWithState | RebuildDeviceFromCpu => {
            let min = if a == RebuildParameterWithState { 4 } else { 3 };
            if args.len() < min {
                return Err(bad("torch parameter rebuild", "too few arguments"));
            }
            if a != RebuildDeviceFromCpu {
                mark_parameter(g, args[0], args.get(1).copied());
            }
            return Ok(Some(args[0]));
        }
        Parameter => {
            if args.is_empty() {
                return Ok(None);
            }
            mark_parameter(g, args[0], args.get(1).copied());
            return Ok(Some(args[0]));
        }
        RebuildFromType => {
            // (func, new_type, args, state): result = func(*args); the subclass and its python
            // attributes carry no tensor data.
            if args.len() != 4 {
                return Err(bad("_rebuild_from_type_v2", "expected 4 arguments"));
            }
            let inner: Vec<NodeId> = g
                .as_seq(args[2])
                .ok_or_else(|| bad("_rebuild_from_type_v2", "args is not a tuple"))?
                .to_vec();
            // The inner function must be a tensor rebuilder itself, never another wrapper:
            // that bounds the recursion whatever the pickle nests.
            if allowed_of(g, args[0]) == Some(RebuildFromType) {
                return Err(bad("_rebuild_from_type_v2", "nested _rebuild_from_type_v2"));
            }
            return call(g, args[0], &inner, None, CallKind::Reduce);
        }
        RebuildQTensor
        | RebuildSparse
        | RebuildMetaNoStorage
        | RebuildWrapperSubclass
        | RebuildNested => {
            let layout = match a {
                RebuildQTensor => TensorLayout::Quantized,
                RebuildSparse => TensorLayout::Sparse,
                RebuildMetaNoStorage => TensorLayout::Meta,
                RebuildWrapperSubclass => TensorLayout::WrapperSubclass,
                _ => TensorLayout::Nested,
            };
            Node::Tensor(Box::new(TensorNode {
                storage: None,
                dtype: None,
                offset: 0,
                size: Vec::new(),
                stride: Vec::new(),
                conj: false,
                neg: false,
                layout,
                parameter: None,
            }))
        }
        RebuildDeviceFromNumpy => {
            if args.len() < 2 {
                return Err(bad(
                    "_rebuild_device_tensor_from_numpy",
                    "too few arguments",
                ));
            }
            Node::Tensor(Box::new(TensorNode {
                storage: Some(args[0]),
                dtype: None,
                offset: 0,
                size: Vec::new(),
                stride: Vec::new(),
                conj: false,
                neg: false,
                layout: TensorLayout::FromArray,
                parameter: None,
            }))
        }
        LoadFromBytes => {
            let [b] = args else {
                return Err(bad(
                    "torch.storage._load_from_bytes",
                    "expected one argument",
                ));
            };
            if !matches!(g.get(*b), Node::Bytes(_) | Node::ByteArray(_)) {
                return Err(bad(
                    "torch.storage._load_from_bytes",
                    "argument is not bytes",
                ));
            }
            Node::LoadFromBytes(*b)
        }
        LegacyTensorClass(dtype) => {
            if !args.is_empty() {
                return Ok(None);
            }
            return Ok(Some(placeholder(
                g,
                callable,
                how,
                Placeholder::LegacyTensor(dtype),
            )?));
        }
        TorchSize => {
            let dims = args
                .first()
                .and_then(|&d| g.as_int_seq(d))
                .ok_or_else(|| bad("torch.Size", "argument is not a tuple of ints"))?;
            let items = dims
                .into_iter()
                .map(|d| g.add(Node::Int(d)))
                .collect::<Result<Vec<_>>>()?;
            Node::Tuple(items)
        }
        TorchDevice | TorchLayout => {
            let s = args
                .first()
                .and_then(|&d| g.as_str(d))
                .ok_or_else(|| bad("torch.device", "argument is not a string"))?;
            Node::Str(s.into())
        }
        OrderedDict | Counter | DefaultDict => {
            let kind = match a {
                OrderedDict => DictKind::OrderedDict,
                Counter => DictKind::Counter,
                _ => DictKind::DefaultDict,
            };
            // defaultdict(factory[, items]); the others (items?).
            let items = if a == DefaultDict {
                args.get(1)
            } else {
                args.first()
            };
            let d = g.add(Node::Dict(Box::new(Dict::new(kind))))?;
            if let Some(&items) = items {
                let pairs: Vec<NodeId> = match g.get(items) {
                    Node::List(v) | Node::Tuple(v) => v.clone(),
                    Node::Dict(src) => {
                        let entries = src.entries.clone();
                        for (k, v) in entries {
                            g.dict_set(d, k, v)?;
                        }
                        Vec::new()
                    }
                    _ => return Ok(None),
                };
                for p in pairs {
                    let Some([k, v]) = g.as_seq(p).and_then(|s| <[NodeId; 2]>::try_from(s).ok())
                    else {
                        return Err(bad("OrderedDict", "items are not (key, value) pairs"));
                    };
                    g.dict_set(d, k, v)?;
                }
            }
            return Ok(Some(d));
        }
        Set | FrozenSet => {
            let items = match args.first().map(|&i| g.get(i)) {
                None => Vec::new(),
                Some(Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v)) => {
                    v.clone()
                }
                Some(_) => return Ok(None),
            };
            let s = g.add(if a == Set {
                Node::Set(Vec::new())
            } else {
                Node::FrozenSet(Vec::new())
            })?;
            g.set_add(s, &items)?;
            return Ok(Some(s));
        }
        ByteArray => match args {
            [] => Node::ByteArray(Box::new([])),
            [b] => match g.get(*b) {
                Node::Bytes(b) | Node::ByteArray(b) => Node::ByteArray(b.clone()),
                _ => return Ok(None),
            },
            [s, enc] => match encode(g, *s, *enc)? {
                Some(b) => Node::ByteArray(b.into()),
                None => return Ok(None),
            },
            _ => return Ok(None),
        },
        BytesType => match args {
            [] => Node::Bytes(Box::new([])),
            [b] if matches!(g.get(*b), Node::Bytes(_) | Node::ByteArray(_)) => match g.get(*b) {
                Node::Bytes(v) | Node::ByteArray(v) => Node::Bytes(v.clone()),
                _ => unreachable!("matched above"),
            },
            [s, enc] => match encode(g, *s, *enc)? {
                Some(b) => Node::Bytes(b.into()),
                None => return Ok(None),
            },
            _ => return Ok(None),
        },
        CodecsEncode => match args {
            [s, enc] => match encode(g, *s, *enc)? {
                Some(b) => Node::Bytes(b.into()),
                None => return Ok(None),
            },
            _ => return Ok(None),
        },
        Complex => {
            let num = |i: Option<&NodeId>| -> Option<f64> {
                match i.map(|&i| g.get(i)) {
                    None => Some(0.0),
                    Some(Node::Float(f)) => Some(*f),
                    Some(Node::Int(i)) => Some(*i as f64),
                    _ => None,
                }
            };
            match (num(args.first()), num(args.get(1))) {
                (Some(r), Some(i)) if args.len() <= 2 => Node::Complex(r, i),
                _ => return Ok(None),
            }
        }
        Slice => Node::Tuple(args.to_vec()),
        NumpyReconstruct => {
            if args.len() != 3 {
                return Err(bad("numpy _reconstruct", "expected 3 arguments"));
            }
            return Ok(Some(placeholder(
                g,
                callable,
                how,
                Placeholder::NumpyArray,
            )?));
        }
        NumpyDtype => {
            let descr = args
                .first()
                .and_then(|&d| g.as_str(d))
                .ok_or_else(|| bad("numpy.dtype", "descr is not a string"))?;
            let (byteorder, descr) = split_byteorder(descr);
            Node::NumpyDtype(crate::pickle::value::NumpyDtype {
                descr: descr.into(),
                byteorder,
            })
        }
        NumpyScalar => return numpy_scalar(g, args).map(Some),
        NumpyFromBuffer => {
            let [buf, dtype, shape, order] = args else {
                return Err(bad("numpy _frombuffer", "expected 4 arguments"));
            };
            let Node::NumpyDtype(dt) = g.get(*dtype).clone() else {
                return Err(bad("numpy _frombuffer", "dtype is not a numpy dtype"));
            };
            let shape = nonneg_shape(g, *shape, "numpy _frombuffer")?;
            let fortran = g.as_str(*order) == Some("F");
            if !matches!(g.get(*buf), Node::Bytes(_) | Node::ByteArray(_)) {
                return Err(bad("numpy _frombuffer", "buffer is not bytes"));
            }
            Node::Array(Box::new(ArrayNode {
                dtype: dt,
                shape,
                fortran,
                data: ArrayData::Inline(*buf),
            }))
        }
        JoblibArrayWrapper => {
            if !args.is_empty() {
                return Ok(None);
            }
            return Ok(Some(placeholder(
                g,
                callable,
                how,
                Placeholder::JoblibArray,
            )?));
        }
        JitIdentityList | JitRestoreTypeTag => {
            let Some(&v) = args.first() else {
                return Err(bad("torch.jit._pickle", "missing argument"));
            };
            return Ok(Some(v));
        }
        TorchScriptClass => {
            return Ok(Some(g.add(Node::Object(Box::new(Object {
                callable,
                args: args.to_vec(),
                kwargs,
                how,
                state: Vec::new(),
                items: Vec::new(),
                dict_items: Vec::new(),
                placeholder: None,
            })))?))
        }
        Storage(_) | TorchDtype(_) | TorchConstant | NumpyArrayClass | BuiltinType => {
            return Ok(None)
        }
    };
    Ok(Some(g.add(node)?))
}

fn placeholder(g: &mut Graph, callable: NodeId, how: CallKind, p: Placeholder) -> Result<NodeId> {
    g.add(Node::Object(Box::new(Object {
        callable,
        args: Vec::new(),
        kwargs: None,
        how,
        state: Vec::new(),
        items: Vec::new(),
        dict_items: Vec::new(),
        placeholder: Some(p),
    })))
}

fn split_byteorder(descr: &str) -> (char, &str) {
    match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
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

fn nonneg_shape(g: &Graph, id: NodeId, what: &str) -> Result<Vec<u64>> {
    let dims = g
        .as_int_seq(id)
        .ok_or_else(|| bad(what, "shape is not a tuple of ints"))?;
    dims.into_iter()
        .map(|d| u64::try_from(d).map_err(|_| bad(what, "negative dimension")))
        .collect()
}

fn rebuild_tensor(g: &mut Graph, a: Allowed, args: &[NodeId]) -> Result<Node> {
    let name = match a {
        Allowed::RebuildTensorV3 => "_rebuild_tensor_v3",
        Allowed::RebuildTensorV2 => "_rebuild_tensor_v2",
        _ => "_rebuild_tensor",
    };
    let (min, max) = match a {
        Allowed::RebuildTensorV3 => (7, 8),
        Allowed::RebuildTensorV2 => (6, 7),
        _ => (4, 4),
    };
    if args.len() < min || args.len() > max {
        return Err(bad(
            name,
            &format!("expected {min}..={max} arguments, got {}", args.len()),
        ));
    }
    let storage = args[0];
    if !matches!(
        g.get(storage),
        Node::PersistentId(_) | Node::LoadFromBytes(_)
    ) {
        return Err(bad(name, "storage argument is not a storage"));
    }
    let offset = g
        .as_int(args[1])
        .ok_or_else(|| bad(name, "storage offset is not an int"))?;
    let size = g
        .as_int_seq(args[2])
        .ok_or_else(|| bad(name, "size is not a tuple of ints"))?;
    let stride = g
        .as_int_seq(args[3])
        .ok_or_else(|| bad(name, "stride is not a tuple of ints"))?;
    let dtype = if a == Allowed::RebuildTensorV3 {
        match g.get(args[6]) {
            Node::TorchDtype(d) => Some(*d),
            _ => return Err(bad(name, "dtype argument is not a torch dtype")),
        }
    } else {
        None
    };
    let meta_idx = match a {
        Allowed::RebuildTensorV3 => 7,
        Allowed::RebuildTensorV2 => 6,
        _ => usize::MAX,
    };
    let (mut conj, mut neg) = (false, false);
    if let Some(&m) = args.get(meta_idx) {
        match g.get(m) {
            Node::Dict(d) => {
                for &(k, v) in &d.entries {
                    let on = g
                        .as_bool(v)
                        .ok_or_else(|| bad(name, "metadata value is not a bool"))?;
                    match g.as_str(k) {
                        Some("conj") => conj = on,
                        Some("neg") => neg = on,
                        other => {
                            return Err(Error::unsupported(format!(
                                "tensor metadata key {other:?} is not understood; refusing to ignore it"
                            )))
                        }
                    }
                }
            }
            Node::None => {}
            _ => return Err(bad(name, "metadata is not a dict")),
        }
    }
    Ok(Node::Tensor(Box::new(TensorNode {
        storage: Some(storage),
        dtype,
        offset,
        size,
        stride,
        conj,
        neg,
        layout: TensorLayout::Dense,
        parameter: None,
    })))
}

/// numpy scalars become plain Python numbers: they are hyper-parameters, never tensors.
fn numpy_scalar(g: &mut Graph, args: &[NodeId]) -> Result<NodeId> {
    let [dtype, data] = args else {
        return Err(bad("numpy scalar", "expected 2 arguments"));
    };
    let Node::NumpyDtype(dt) = g.get(*dtype).clone() else {
        return Err(bad("numpy scalar", "dtype is not a numpy dtype"));
    };
    if dt.descr.starts_with('O') {
        return Ok(*data);
    }
    let bytes: Vec<u8> = match g.get(*data) {
        Node::Bytes(b) => b.to_vec(),
        Node::Str(s) => s.chars().map(|c| c as u32 as u8).collect(),
        _ => return Err(bad("numpy scalar", "data is not bytes")),
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
    g.add(node.unwrap_or(Node::Bytes(bytes.into())))
}

pub fn build(g: &mut Graph, target: NodeId, state: NodeId) -> Result<BuildOutcome> {
    match g.get(target).clone() {
        Node::Global(gl) => Ok(BuildOutcome::OnGlobal(*gl)),
        Node::Object(o) => match &o.placeholder {
            Some(Placeholder::NumpyArray) => {
                let arr = numpy_setstate(g, state)?;
                *g.get_mut(target) = Node::Array(Box::new(arr));
                Ok(BuildOutcome::Done)
            }
            Some(Placeholder::LegacyTensor(dtype)) => {
                let items = g
                    .as_seq(state)
                    .ok_or_else(|| bad("legacy tensor BUILD", "state is not a tuple"))?
                    .to_vec();
                let node = rebuild_tensor(g, Allowed::RebuildTensor, &items)?;
                let node = match node {
                    Node::Tensor(mut t) => {
                        t.dtype = *dtype;
                        Node::Tensor(t)
                    }
                    other => other,
                };
                *g.get_mut(target) = node;
                Ok(BuildOutcome::Done)
            }
            Some(Placeholder::JoblibArray) => joblib_request(g, state).map(BuildOutcome::Joblib),
            None => {
                if let Node::Object(o) = g.get_mut(target) {
                    o.state.push(state);
                }
                Ok(BuildOutcome::Done)
            }
        },
        Node::Dict(d) if d.kind != DictKind::Dict => {
            if let Node::Dict(d) = g.get_mut(target) {
                d.attrs = Some(state);
            }
            Ok(BuildOutcome::Done)
        }
        Node::NumpyDtype(_) => {
            let byteorder = g
                .as_seq(state)
                .and_then(|s| s.get(1).copied())
                .and_then(|b| g.as_str(b))
                .and_then(|s| s.chars().next());
            let structured = g
                .as_seq(state)
                .map(|s| {
                    s.iter()
                        .skip(2)
                        .take(3)
                        .any(|&i| !matches!(g.get(i), Node::None))
                })
                .unwrap_or(false);
            if let Node::NumpyDtype(dt) = g.get_mut(target) {
                if let Some(b) = byteorder {
                    dt.byteorder = b;
                }
                if structured {
                    dt.descr = format!("structured:{}", dt.descr).into();
                }
            }
            Ok(BuildOutcome::Done)
        }
        // torch Parameters/Tensors accept python attributes; they carry no data.
        Node::Tensor(_) => Ok(BuildOutcome::Done),
        other => Err(Error::malformed(format!(
            "BUILD on a {} (a real loader fails here)",
            kind_name(&other)
        ))),
    }
}

fn kind_name(n: &Node) -> &'static str {
    match n {
        Node::Dict(_) => "plain dict",
        Node::List(_) => "list",
        Node::Tuple(_) => "tuple",
        Node::Str(_) => "str",
        Node::Int(_) | Node::Bool(_) => "int",
        _ => "value without attributes",
    }
}

/// `ndarray.__setstate__((version, shape, dtype, is_fortran, rawdata))` (version optional).
fn numpy_setstate(g: &mut Graph, state: NodeId) -> Result<ArrayNode> {
    let items = g
        .as_seq(state)
        .ok_or_else(|| bad("numpy array BUILD", "state is not a tuple"))?
        .to_vec();
    let items = match items.len() {
        5 => &items[1..],
        4 => &items[..],
        _ => {
            return Err(bad(
                "numpy array BUILD",
                "state is not (version, shape, dtype, fortran, data)",
            ))
        }
    };
    let shape = nonneg_shape(g, items[0], "numpy array BUILD")?;
    let Node::NumpyDtype(dtype) = g.get(items[1]).clone() else {
        return Err(bad("numpy array BUILD", "dtype is not a numpy dtype"));
    };
    let fortran = g.as_bool(items[2]).unwrap_or(false);
    let data = match g.get(items[3]) {
        Node::Bytes(_) | Node::ByteArray(_) => ArrayData::Inline(items[3]),
        Node::Str(s) => {
            // Python 2 pickles carry the raw data as a latin-1 str.
            let bytes: Vec<u8> = s.chars().map(|c| c as u32 as u8).collect();
            ArrayData::Inline(g.add(Node::Bytes(bytes.into()))?)
        }
        Node::List(_) => ArrayData::Objects(items[3]),
        _ => return Err(bad("numpy array BUILD", "data is neither bytes nor a list")),
    };
    Ok(ArrayNode {
        dtype,
        shape,
        fortran,
        data,
    })
}

fn joblib_request(g: &Graph, state: NodeId) -> Result<JoblibRequest> {
    let what = "joblib NumpyArrayWrapper";
    if !matches!(g.get(state), Node::Dict(_)) {
        return Err(bad(what, "state is not a dict"));
    }
    let field = |k: &str| {
        g.dict_get(state, k)
            .ok_or_else(|| bad(what, &format!("missing `{k}`")))
    };
    let shape = nonneg_shape(g, field("shape")?, what)?;
    let Node::NumpyDtype(dtype) = g.get(field("dtype")?).clone() else {
        return Err(bad(what, "dtype is not a numpy dtype"));
    };
    let fortran = g.as_str(field("order")?) == Some("F");
    let alignment = match g.dict_get(state, "numpy_array_alignment_bytes") {
        None => None,
        Some(a) => match g.get(a) {
            Node::None => None,
            Node::Int(v) if (1..=4096).contains(v) => Some(*v as u64),
            _ => return Err(bad(what, "bad numpy_array_alignment_bytes")),
        },
    };
    let object_dtype = dtype.descr.starts_with('O');
    let nbytes = if object_dtype {
        0
    } else {
        let item = crate::tensors::numpy::itemsize(&dtype.descr).ok_or_else(|| {
            Error::unsupported(format!("numpy dtype `{}` in a joblib array", dtype.descr))
        })?;
        shape
            .iter()
            .try_fold(item, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad(what, "array size overflows"))?
    };
    Ok(JoblibRequest {
        dtype,
        shape,
        fortran,
        alignment,
        nbytes,
        object_dtype,
    })
}

/// Remember that `data` was pickled as an `nn.Parameter` (`requires_grad` defaults to True, as
/// in `Parameter(data)`); anything but a literal bool counts as True.
fn mark_parameter(g: &mut Graph, data: NodeId, requires_grad: Option<NodeId>) {
    let requires_grad = match requires_grad.map(|r| g.get(r)) {
        Some(Node::Bool(b)) => *b,
        _ => true,
    };
    if let Node::Tensor(t) = g.get_mut(data) {
        t.parameter = Some(requires_grad);
    }
}
