//! torch's rebuilders (`torch/_utils.py`), `torch.Size`, `torch.device`, `Parameter`, the legacy
//! tensor classes and `torch.storage._load_from_bytes`, and how torch applies Python state to a
//! rebuilt tensor (`_set_obj_state`).

use super::{bad, reject, unmodelled, Interp};
use crate::error::{Error, Result};
use crate::pickle::value::{
    AttrKey, CallKind, Graph, Node, NodeId, Object, Placeholder, TensorLayout, TensorNode,
};
use crate::policy::registry::{self, Entry, Kind};
use crate::tensors::torch_dtype::TorchDtype;

/// The registry name of a rebuilder, for messages.
fn name_of(kind: Kind) -> &'static str {
    match kind {
        Kind::RebuildTensor => "_rebuild_tensor",
        Kind::RebuildTensorV2 => "_rebuild_tensor_v2",
        Kind::RebuildTensorV3 => "_rebuild_tensor_v3",
        Kind::RebuildParameter => "_rebuild_parameter",
        Kind::RebuildParameterWithState => "_rebuild_parameter_with_state",
        Kind::RebuildQtensor => "_rebuild_qtensor",
        Kind::RebuildSparse => "_rebuild_sparse_tensor",
        Kind::RebuildMetaNoStorage => "_rebuild_meta_tensor_no_storage",
        Kind::RebuildNested => "_rebuild_nested_tensor",
        Kind::RebuildWrapperSubclass => "_rebuild_wrapper_subclass",
        _ => "a torch rebuilder",
    }
}

fn is_storage(g: &Graph, id: NodeId) -> bool {
    matches!(g.get(id), Node::PersistentId(_) | Node::LoadFromBytes(_))
}

/// `requires_grad` is assigned through the tensor property, which accepts only a bool.
fn requires_grad(g: &Graph, id: NodeId, what: &str) -> Result<bool> {
    match g.get(id) {
        Node::Bool(b) => Ok(*b),
        _ => Err(bad(what, "requires_grad is not a bool")),
    }
}

/// `tensor._backward_hooks = hooks`: torch calls them during backward(), after loading. Only an
/// empty table (what torch has written since it stopped serialising hooks) is inert.
fn hooks_are_empty(g: &Graph, id: NodeId) -> bool {
    match g.get(id) {
        Node::None => true,
        Node::Dict(d) => d.entries.is_empty() && d.attrs.is_empty(),
        _ => false,
    }
}

/// `_rebuild_tensor`, `_rebuild_tensor_v2`, `_rebuild_tensor_v3`.
pub fn rebuild_tensor(g: &mut Graph, kind: Kind, args: &[NodeId]) -> Result<Interp> {
    let name = name_of(kind);
    let (min, max) = match kind {
        Kind::RebuildTensorV3 => (7, 8),
        Kind::RebuildTensorV2 => (6, 7),
        _ => (4, 4),
    };
    if args.len() < min || args.len() > max {
        return Err(bad(
            name,
            &format!("expected {min}..={max} arguments, got {}", args.len()),
        ));
    }
    let Some(node) = tensor_over_storage(g, args[..4].try_into().expect("4 arguments"))? else {
        return reject(g, args, name, "not (storage, offset, size, stride)");
    };
    let Node::Tensor(mut t) = node else {
        unreachable!("tensor_over_storage builds tensors")
    };
    if kind != Kind::RebuildTensor {
        t.requires_grad = requires_grad(g, args[4], name)?;
        if !hooks_are_empty(g, args[5]) {
            return unmodelled(format!(
                "{name} installs backward hooks, which torch calls during backward()"
            ));
        }
    }
    if kind == Kind::RebuildTensorV3 {
        match g.get(args[6]) {
            Node::TorchDtype(d) => t.dtype = Some(*d),
            _ => return reject(g, args, name, "dtype argument is not a torch dtype"),
        }
    }
    let meta_idx = match kind {
        Kind::RebuildTensorV3 => 7,
        Kind::RebuildTensorV2 => 6,
        _ => usize::MAX,
    };
    if let Some(&m) = args.get(meta_idx) {
        match g.get(m) {
            // `if metadata:` - an empty dict sets nothing.
            Node::Dict(d) if d.attrs.is_empty() => {
                for &(k, v) in &d.entries {
                    let on = match g.get(v) {
                        Node::Bool(b) => *b,
                        _ => return reject(g, args, name, "metadata value is not a bool"),
                    };
                    match g.as_str(k) {
                        Some("conj") => t.conj = on,
                        Some("neg") => t.neg = on,
                        other => {
                            return Err(Error::unsupported(format!(
                                "tensor metadata key {other:?} is not understood; refusing to ignore it"
                            )))
                        }
                    }
                }
            }
            Node::None => {}
            _ => return reject(g, args, name, "metadata is not a dict"),
        }
    }
    Ok(Interp::Value(g.add(Node::Tensor(t))?))
}

/// `(storage, storage_offset, size, stride)` as `_rebuild_tensor` and the legacy `set_` read
/// them, or None when they are not that.
fn tensor_over_storage(g: &Graph, args: [NodeId; 4]) -> Result<Option<Node>> {
    let [storage, offset, size, stride] = args;
    if !is_storage(g, storage) {
        return Ok(None);
    }
    let (Some(offset), Some(size), Some(stride)) =
        (g.as_int(offset), g.as_int_seq(size), g.as_int_seq(stride))
    else {
        return Ok(None);
    };
    let mut t = TensorNode::new(Some(storage), TensorLayout::Dense);
    t.offset = offset;
    t.size = size;
    t.stride = stride;
    Ok(Some(Node::Tensor(Box::new(t))))
}

/// `_rebuild_parameter(data, requires_grad, hooks)` and `..._with_state(..., state)`:
/// `Parameter(data, requires_grad)` and hooks; the machine then applies the state
/// (`_set_obj_state`, [`apply_obj_state`]) so that a refusal is graded as a tensor change.
pub fn rebuild_parameter(g: &mut Graph, kind: Kind, args: &[NodeId]) -> Result<Interp> {
    let name = name_of(kind);
    let n = if kind == Kind::RebuildParameterWithState {
        4
    } else {
        3
    };
    if args.len() != n {
        return Err(bad(name, &format!("expected {n} arguments")));
    }
    if !matches!(g.get(args[0]), Node::Tensor(_)) {
        return reject(g, args, name, "data is not a tensor");
    }
    let rg = requires_grad(g, args[1], name)?;
    if !hooks_are_empty(g, args[2]) {
        return unmodelled(format!(
            "{name} installs backward hooks, which torch calls during backward()"
        ));
    }
    mark_parameter(g, args[0], rg);
    Ok(Interp::Value(args[0]))
}

/// `Parameter(data[, requires_grad])` over a modelled tensor.
pub fn parameter(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    let (data, rg) = match args {
        [d] => (*d, true),
        [d, r] => (*d, requires_grad(g, *r, "Parameter")?),
        _ => return reject(g, args, "Parameter", "expected (data[, requires_grad])"),
    };
    if !matches!(g.get(data), Node::Tensor(_)) {
        return reject(g, args, "Parameter", "data is not a tensor");
    }
    mark_parameter(g, data, rg);
    Ok(Interp::Value(data))
}

/// Remember that `data` was pickled as an `nn.Parameter` with this `requires_grad`.
fn mark_parameter(g: &mut Graph, data: NodeId, requires_grad: bool) {
    if let Node::Tensor(t) = g.get_mut(data) {
        t.parameter = Some(requires_grad);
    }
}

/// `torch._utils._set_obj_state(tensor, state)`: `state` or `(dict_state, slots_state)`, each
/// applied with `setattr` per key. A key that is a tensor attribute (`data`, `grad`, `real`...)
/// or a dunder changes the tensor: refused as a tensor state change (`Some(refusal)`). Other
/// keys become instance attributes, which later lookups on the tensor find.
pub fn apply_obj_state(g: &mut Graph, tensor: NodeId, state: NodeId) -> Result<Option<Interp>> {
    let parts: Vec<NodeId> = match g.get(state) {
        Node::Tuple(t) if t.len() == 2 => t.clone(),
        Node::Tuple(_) => return Err(bad("_set_obj_state", "invalid serialized state")),
        _ => vec![state],
    };
    let mut writes = Vec::new();
    for part in parts {
        match g.get(part) {
            Node::None => {}
            Node::Dict(d) if d.attrs.is_empty() => {
                for &(k, v) in &d.entries {
                    let Some(key) = g.as_str(k) else {
                        return Err(bad("_set_obj_state", "attribute name is not a str"));
                    };
                    if registry::is_tensor_attribute(key) {
                        return Ok(Some(Interp::Unmodelled(format!(
                            "tensor state sets `{key}`, which changes the tensor itself"
                        ))));
                    }
                    writes.push((AttrKey::Name(key.into()), v));
                }
            }
            // `if dict_state:` is false for empty containers and zero.
            n if is_falsy(n) => {}
            _ => {
                return Ok(Some(Interp::Unmodelled(
                    "tensor state is not a dict (its items() would run)".into(),
                )))
            }
        }
    }
    if let Node::Tensor(t) = g.get_mut(tensor) {
        for (k, v) in writes {
            t.attrs.set(k, v);
        }
    }
    Ok(None)
}

/// Python truthiness of plain values the machine can decide.
pub fn is_falsy(n: &Node) -> bool {
    match n {
        Node::None => true,
        Node::Bool(b) => !b,
        Node::Int(i) => *i == 0,
        Node::Float(f) => *f == 0.0,
        Node::Str(s) => s.is_empty(),
        Node::Bytes(b) | Node::ByteArray(b) => b.is_empty(),
        Node::Tuple(v) | Node::List(v) | Node::Set(v) | Node::FrozenSet(v) => v.is_empty(),
        Node::Dict(d) => d.entries.is_empty(),
        _ => false,
    }
}

/// `_rebuild_device_tensor_from_cpu_tensor(data, dtype, device, requires_grad)`:
/// `data.to(dtype=dtype, device=...)`, the same tensor when the dtype is its own.
pub fn device_from_cpu(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    let what = "_rebuild_device_tensor_from_cpu_tensor";
    let [data, dtype, device, rg] = args else {
        return Err(bad(what, "expected 4 arguments"));
    };
    let (Node::Tensor(_), Node::TorchDtype(d)) = (g.get(*data), g.get(*dtype)) else {
        return reject(g, args, what, "not (tensor, dtype, device, requires_grad)");
    };
    let d = *d;
    let Some(device) = device_kind(g, *device) else {
        return reject(g, args, what, "device is not a device torch knows");
    };
    requires_grad(g, *rg, what)?;
    if device == Device::Meta {
        // `.to(device="meta")`: a tensor without data.
        return Ok(Interp::Value(g.add(Node::Tensor(Box::new(
            TensorNode::new(None, TensorLayout::Meta),
        )))?));
    }
    if let Node::Tensor(t) = g.get_mut(*data) {
        t.cast = Some(d);
    }
    Ok(Interp::Value(*data))
}

/// `_rebuild_device_tensor_from_numpy(data, dtype, device, requires_grad)`:
/// `torch.from_numpy(data).to(dtype=dtype, ...)`.
pub fn device_from_numpy(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    let what = "_rebuild_device_tensor_from_numpy";
    let [data, dtype, device, rg] = args else {
        return Err(bad(what, "expected 4 arguments"));
    };
    let (Node::Array(array), Node::TorchDtype(d)) = (g.get(*data), g.get(*dtype)) else {
        return reject(g, args, what, "not (ndarray, dtype, device, requires_grad)");
    };
    let (array, d) = ((**array).clone(), *d);
    let Some(device) = device_kind(g, *device) else {
        return reject(g, args, what, "device is not a device torch knows");
    };
    requires_grad(g, *rg, what)?;
    if device == Device::Meta {
        return Ok(Interp::Value(g.add(Node::Tensor(Box::new(
            TensorNode::new(None, TensorLayout::Meta),
        )))?));
    }
    // torch.from_numpy shares the array's buffer as it is now: the tensor keeps a snapshot, and
    // the array is marked so that a later BUILD on it (which frees that buffer under the
    // tensor) is refused.
    if let Node::Array(a) = g.get_mut(*data) {
        a.lent = true;
    }
    let snapshot = g.add(Node::Array(Box::new(array)))?;
    let mut t = TensorNode::new(Some(snapshot), TensorLayout::FromArray);
    t.cast = Some(d);
    Ok(Interp::Value(g.add(Node::Tensor(Box::new(t)))?))
}

/// Where a rebuilder puts the tensor: a real device keeps the data; `meta` drops it.
#[derive(PartialEq)]
enum Device {
    Real,
    Meta,
}

/// A device as rebuilders receive it: `torch.device(...)` (modelled as its string) or a string
/// naming a device type torch knows (`cpu`, `cuda:0`, ...). Anything else is not modelled.
fn device_kind(g: &Graph, id: NodeId) -> Option<Device> {
    let s = g.as_str(id)?;
    let (kind, index) = s.split_once(':').unwrap_or((s, "0"));
    if !index.bytes().all(|b| b.is_ascii_digit()) || index.is_empty() {
        return None;
    }
    match kind {
        "meta" => Some(Device::Meta),
        "cpu" | "cuda" | "mps" | "xpu" | "xla" | "hpu" | "mtia" | "privateuseone" | "ipu"
        | "ve" | "lazy" | "vulkan" | "metal" | "maia" => Some(Device::Real),
        _ => None,
    }
}

/// Quantized, sparse, meta, nested and wrapper-subclass tensors: the file is graded, the tensor
/// is never converted (safetensors cannot hold it). Their arguments must be plain data (tensors,
/// ints, dtypes, layout names) so nothing of the file's runs inside torch.
pub fn rebuild_other_layout(g: &mut Graph, kind: Kind, args: &[NodeId]) -> Result<Interp> {
    let name = name_of(kind);
    let arity = match kind {
        Kind::RebuildQtensor => 7,
        Kind::RebuildSparse => 2,
        Kind::RebuildMetaNoStorage => 4,
        Kind::RebuildNested => 4,
        _ => 8,
    };
    if args.len() != arity {
        return Err(bad(name, &format!("expected {arity} arguments")));
    }
    // The wrapper subclass's class is the file's choice: the machine grades it (ops/calls.rs)
    // before it gets here, and only its remaining arguments must be plain.
    let checked = if kind == Kind::RebuildWrapperSubclass {
        &args[1..]
    } else {
        args
    };
    for &a in checked {
        if !super::is_plain(g, a) && !is_torch_constant(g, a) {
            return unmodelled(format!("{name} with an argument that is not plain data"));
        }
    }
    if kind == Kind::RebuildQtensor && !hooks_are_empty(g, args[6]) {
        return unmodelled(format!(
            "{name} installs backward hooks, which torch calls during backward()"
        ));
    }
    let layout = match kind {
        Kind::RebuildQtensor => TensorLayout::Quantized,
        Kind::RebuildSparse => TensorLayout::Sparse,
        Kind::RebuildMetaNoStorage => TensorLayout::Meta,
        Kind::RebuildWrapperSubclass => TensorLayout::WrapperSubclass,
        _ => TensorLayout::Nested,
    };
    Ok(Interp::Value(g.add(Node::Tensor(Box::new(
        TensorNode::new(None, layout),
    )))?))
}

/// A registered torch constant (a qscheme or layout singleton): inert as an argument.
fn is_torch_constant(g: &Graph, id: NodeId) -> bool {
    match g.get(id) {
        Node::Global(gl) => {
            registry::lookup(&gl.module, &gl.name).is_some_and(|e| e.kind == Kind::TorchConstant)
        }
        Node::Tuple(v) => v
            .iter()
            .all(|&i| super::is_plain(g, i) || is_torch_constant(g, i)),
        _ => false,
    }
}

/// `torch.storage._load_from_bytes(b)`: the formats layer parses the bytes as torch.load would.
pub fn load_from_bytes(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    let [b] = args else {
        return Err(bad(
            "torch.storage._load_from_bytes",
            "expected one argument",
        ));
    };
    if !matches!(g.get(*b), Node::Bytes(_) | Node::ByteArray(_)) {
        return reject(
            g,
            args,
            "torch.storage._load_from_bytes",
            "argument is not bytes",
        );
    }
    Ok(Interp::Value(g.add(Node::LoadFromBytes(*b))?))
}

/// `torch.FloatTensor()`: an empty tensor that a BUILD `(storage, offset, size, stride)` fills.
pub fn legacy_tensor_class(
    g: &mut Graph,
    entry: &Entry,
    callable: NodeId,
    args: &[NodeId],
) -> Result<Interp> {
    if !args.is_empty() {
        return reject(
            g,
            args,
            entry.name,
            "legacy tensor classes are called without arguments",
        );
    }
    let dtype = entry
        .name
        .strip_suffix("Tensor")
        .filter(|b| !b.is_empty())
        .and_then(|b| TorchDtype::from_storage_name(&format!("{b}Storage")));
    Ok(Interp::Value(legacy_tensor_placeholder(
        g, callable, dtype,
    )?))
}

pub fn legacy_tensor_placeholder(
    g: &mut Graph,
    callable: NodeId,
    dtype: Option<TorchDtype>,
) -> Result<NodeId> {
    let mut o = Object::new(
        callable,
        Vec::new(),
        None,
        CallKind::Reduce,
        crate::pickle::value::ClassKnowledge::Registered(Kind::LegacyTensorClass),
    );
    o.placeholder = Some(Placeholder::LegacyTensor(dtype));
    g.add(Node::Object(Box::new(o)))
}

/// `Tensor.__setstate__((storage, offset, size, stride))` on a fresh legacy tensor: `set_`.
pub fn legacy_tensor_setstate(
    g: &mut Graph,
    state: NodeId,
    dtype: Option<TorchDtype>,
) -> Result<Option<Node>> {
    let Some(items) = g.as_seq(state).map(<[NodeId]>::to_vec) else {
        return Ok(None);
    };
    let Ok(four) = <[NodeId; 4]>::try_from(items.as_slice()) else {
        return Ok(None);
    };
    // `set_` onto a typed storage of another dtype raises in torch; `torch.Tensor()` is the
    // default dtype, float32. The cast check refuses a mismatch instead of reinterpreting.
    Ok(tensor_over_storage(g, four)?.map(|n| match n {
        Node::Tensor(mut t) => {
            t.dtype = dtype;
            t.cast = Some(dtype.unwrap_or(TorchDtype::Float32));
            Node::Tensor(t)
        }
        other => other,
    }))
}

/// `torch.Size(sequence of ints)`: a tuple.
pub fn size(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    let dims = match args {
        [d] => g.as_int_seq(*d),
        [] => Some(Vec::new()),
        _ => None,
    };
    let Some(dims) = dims else {
        return reject(g, args, "torch.Size", "argument is not a sequence of ints");
    };
    let items = dims
        .into_iter()
        .map(|d| g.add(Node::Int(d)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Interp::Value(g.add(Node::Tuple(items))?))
}

/// `torch.device(str[, index])`, kept as its string.
pub fn device(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    let s = match args {
        [s] | [s, _] => g.as_str(*s).map(str::to_string),
        _ => None,
    };
    let index_ok = args.get(1).is_none_or(|&i| g.as_int(i).is_some());
    match s {
        Some(s) if index_ok => Ok(Interp::Value(g.add(Node::Str(s.into()))?)),
        _ => reject(g, args, "torch.device", "not (str[, int])"),
    }
}

/// `torch.serialization._get_layout(name)`: a lookup in torch's layout table.
pub fn layout_lookup(g: &mut Graph, args: &[NodeId]) -> Result<Interp> {
    match args {
        [s] if g.as_str(*s).is_some() => {
            let s = g.as_str(*s).expect("checked").to_string();
            Ok(Interp::Value(g.add(Node::Str(s.into()))?))
        }
        _ => reject(
            g,
            args,
            "torch.serialization._get_layout",
            "argument is not a str",
        ),
    }
}
