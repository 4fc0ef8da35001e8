//! The registered callables, interpreted as pure functions on already-built values.
//!
//! Each interpreter accepts exactly the argument shapes whose effect it models and answers:
//! - `Interp::Value`: the value the real function returns;
//! - `Interp::Unmodelled`: the real function would run on arguments whose behaviour the machine
//!   does not model (an object of an unregistered class, a non-empty hook table, a dtype
//!   conversion...): the machine grades it as an unmodelled call (high);
//! - `Err(..)`: the real function raises before doing anything observable (wrong arity, plain
//!   data of the wrong type), so the load fails there.
//!
//! docs/unpickling-model.md cites the upstream functions each interpreter follows.

mod containers;
mod joblib;
pub(crate) mod numpy;
pub(crate) mod torch;
pub(crate) mod values;

pub use joblib::{wrapper_read, JoblibRequest, WrapperRead, WRAPPER_METHODS};

use super::registry::{Entry, Kind};
use crate::error::{Error, Result};
use crate::pickle::value::{Global, Graph, Node, NodeId};

/// What interpreting a registered call gave.
pub enum Interp {
    Value(NodeId),
    Unmodelled(String),
}

pub(crate) fn unmodelled(why: impl Into<String>) -> Result<Interp> {
    Ok(Interp::Unmodelled(why.into()))
}

pub(crate) fn bad(what: &str, why: &str) -> Error {
    Error::malformed(format!("{what}: {why}"))
}

/// The node a GLOBAL pushes for a registered name: dtypes and storage classes become values the
/// rebuilders read; everything else stays a symbolic reference.
pub fn global_value(g: &mut Graph, global: Global, entry: Option<&Entry>) -> Result<NodeId> {
    use crate::pickle::value::StorageType;
    use crate::tensors::torch_dtype::TorchDtype;
    let node = match entry.map(|e| e.kind) {
        Some(Kind::TorchDtype) => match TorchDtype::from_torch_name(&global.name) {
            Some(d) => Node::TorchDtype(d),
            None => Node::Global(Box::new(global)),
        },
        Some(Kind::TypedStorage) => match TorchDtype::from_storage_name(&global.name) {
            Some(d) => Node::StorageType(StorageType::Typed(d)),
            None => Node::Global(Box::new(global)),
        },
        Some(Kind::UntypedStorage) => Node::StorageType(StorageType::Untyped),
        _ => Node::Global(Box::new(global)),
    };
    g.add(node)
}

/// Interpret a call of a registered callable whose `use` is `call`. The machine handles the
/// kinds that are themselves calls of other callables (copyreg's, `_rebuild_from_type*`).
pub fn call(
    g: &mut Graph,
    entry: &Entry,
    callable: NodeId,
    args: &[NodeId],
    kwargs: Option<NodeId>,
) -> Result<Interp> {
    if let Some(k) = kwargs {
        if !matches!(g.get(k), Node::Dict(d) if d.entries.is_empty()) {
            return unmodelled("keyword arguments");
        }
    }
    use Kind::*;
    match entry.kind {
        RebuildTensor | RebuildTensorV2 | RebuildTensorV3 => {
            torch::rebuild_tensor(g, entry.kind, args)
        }
        RebuildParameter | RebuildParameterWithState => {
            torch::rebuild_parameter(g, entry.kind, args)
        }
        Parameter => torch::parameter(g, args),
        RebuildDeviceFromCpu => torch::device_from_cpu(g, args),
        RebuildDeviceFromNumpy => torch::device_from_numpy(g, args),
        RebuildQtensor
        | RebuildSparse
        | RebuildMetaNoStorage
        | RebuildNested
        | RebuildWrapperSubclass => torch::rebuild_other_layout(g, entry.kind, args),
        LoadFromBytes => torch::load_from_bytes(g, args),
        LegacyTensorClass => torch::legacy_tensor_class(g, entry, callable, args),
        TorchSize => torch::size(g, args),
        TorchDevice => torch::device(g, args),
        TorchLayoutLookup => torch::layout_lookup(g, args),
        // `build_intlist(data)` and `restore_type_tag(value, type_str)` return their argument.
        JitIdentityList => match args {
            [v] => Ok(Interp::Value(*v)),
            _ => Err(bad(entry.name, "expected one argument")),
        },
        JitRestoreTypeTag => match args {
            [v, _] => Ok(Interp::Value(*v)),
            _ => Err(bad(entry.name, "expected two arguments")),
        },
        OrderedDict | Counter | DefaultDict => containers::mapping(g, entry.kind, args),
        Set | Frozenset => containers::set(g, entry.kind, args),
        Bytearray | Bytes => containers::bytes(g, entry.kind, args),
        CodecsEncode => containers::codecs_encode(g, args),
        Complex => containers::complex(g, args),
        Slice => containers::slice(g, args),
        NumpyReconstruct => numpy::reconstruct(g, callable, args),
        NumpyScalar => numpy::scalar(g, args),
        NumpyDtype => numpy::dtype(g, args),
        NumpyFrombuffer => numpy::frombuffer(g, args),
        NumpyRandomState => values::random_state(g, callable, args),
        FunctoolsPartial => values::partial(g, callable, args),
        PlainValue => values::plain_value(g, callable, args),
        // Calls of other callables: the machine's own (ops/calls.rs).
        CopyregReconstructor | CopyregNewobj | CopyregNewobjEx | RebuildFromTypeV2
        | RebuildFromType => unmodelled("handled by the machine"),
        UntypedStorage | TypedStorage | TorchConstant | TorchDtype | BuiltinType | PlainClass
        | NumpyArrayClass | JoblibArrayWrapper | StrSubclass => unmodelled(format!(
            "`{}.{}` is registered as a {} only",
            entry.module,
            entry.name,
            entry.usage.as_str()
        )),
    }
}

/// Plain data: values whose methods are the built-in types' own (and the machine's modelled
/// values). A registered function given only plain data runs only its own, registered code;
/// anything else (an object of an unregistered class, a global) may run code of the file's
/// choosing inside it (`__index__`, `__eq__`, `__len__`, an attribute lookup).
pub fn is_plain(g: &Graph, id: NodeId) -> bool {
    let mut stack = vec![(id, 0usize)];
    let mut budget = 10_000usize;
    while let Some((id, depth)) = stack.pop() {
        if depth > 32 || budget == 0 {
            return false;
        }
        budget -= 1;
        match g.get(id) {
            Node::None
            | Node::Bool(_)
            | Node::Int(_)
            | Node::BigInt(_)
            | Node::Float(_)
            | Node::Complex(..)
            | Node::Str(_)
            | Node::Bytes(_)
            | Node::ByteArray(_)
            | Node::TorchDtype(_)
            | Node::StorageType(_)
            | Node::NumpyDtype(_)
            | Node::Tensor(_)
            | Node::Array(_) => {}
            // What a nested torch.load returns is whatever its payload builds: opaque.
            Node::LoadFromBytes(_) => return false,
            Node::PersistentId(p) => stack.push((*p, depth + 1)),
            Node::Tuple(v) | Node::List(v) | Node::Set(v) | Node::FrozenSet(v) => {
                stack.extend(v.iter().map(|&c| (c, depth + 1)))
            }
            Node::Dict(d) => {
                if !d.attrs.is_empty() {
                    return false;
                }
                for &(k, v) in &d.entries {
                    stack.push((k, depth + 1));
                    stack.push((v, depth + 1));
                }
            }
            Node::Global(_) | Node::Object(_) => return false,
        }
    }
    true
}

/// The answer for arguments an interpreter does not recognise: with plain data the real
/// function raises (a loader error); with anything else it may run the file's code.
pub(crate) fn reject(g: &Graph, args: &[NodeId], what: &str, why: &str) -> Result<Interp> {
    if args.iter().all(|&a| is_plain(g, a)) {
        Err(bad(what, why))
    } else {
        unmodelled(format!(
            "{what} with an argument that is not plain data ({why})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    #[test]
    fn plain_data() {
        let mut g = Graph::new(&Limits::default());
        let i = g.add(Node::Int(1)).unwrap();
        let s = g.add(Node::Str("a".into())).unwrap();
        let t = g.add(Node::Tuple(vec![i, s])).unwrap();
        assert!(is_plain(&g, t));
        let gl = g
            .add(Node::Global(Box::new(Global {
                module: "m".into(),
                name: "n".into(),
            })))
            .unwrap();
        let t2 = g.add(Node::Tuple(vec![t, gl])).unwrap();
        assert!(!is_plain(&g, t2));
    }
}
