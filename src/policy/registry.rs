//! The registry of modelled globals: exact `(module, name)` pairs, each with the behaviour the
//! machine models for it. The data lives in `registry.toml` (one reason per group); build.rs
//! compiles it into the sorted table included here, so a typo in a kind fails the build.
//!
//! Nothing here matches by prefix. The dangerous lists only raise severities: a name that is
//! not allowed already gets a finding whatever these lists say.

/// How the machine models a registered global (the `kind` of its registry.toml group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    RebuildTensor,
    RebuildTensorV2,
    RebuildTensorV3,
    RebuildParameter,
    RebuildParameterWithState,
    RebuildQtensor,
    RebuildSparse,
    RebuildMetaNoStorage,
    RebuildNested,
    RebuildDeviceFromCpu,
    RebuildDeviceFromNumpy,
    RebuildWrapperSubclass,
    RebuildFromTypeV2,
    RebuildFromType,
    LoadFromBytes,
    UntypedStorage,
    TypedStorage,
    TorchSize,
    TorchDevice,
    TorchLayoutLookup,
    TorchConstant,
    TorchDtype,
    Parameter,
    LegacyTensorClass,
    JitIdentityList,
    JitRestoreTypeTag,
    OrderedDict,
    Counter,
    DefaultDict,
    Set,
    Frozenset,
    Bytearray,
    Bytes,
    Complex,
    Slice,
    BuiltinType,
    CodecsEncode,
    CopyregReconstructor,
    CopyregNewobj,
    CopyregNewobjEx,
    PlainClass,
    NumpyReconstruct,
    NumpyScalar,
    NumpyFrombuffer,
    NumpyArrayClass,
    NumpyDtype,
    JoblibArrayWrapper,
    NumpyRandomState,
    FunctoolsPartial,
    PlainValue,
    StrSubclass,
}

/// What a pickle may do with a registered name without a finding (registry.toml `use`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Calls are modelled for the argument shapes the interpreter accepts.
    Call,
    /// Instantiated without arguments and restored with plain data.
    New,
    /// Only referenced.
    Value,
}

impl Usage {
    pub fn as_str(self) -> &'static str {
        match self {
            Usage::Call => "call",
            Usage::New => "new",
            Usage::Value => "value",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub module: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    pub usage: Usage,
    /// A type (matters for INST/OBJ, which call non-types even without arguments).
    pub class: bool,
    /// Only TorchScript's C++ unpickler resolves it: modelled inside TorchScript archives only.
    pub torchscript_only: bool,
    pub reason: &'static str,
}

/// Why constructing an unregistered class from plain data runs only the class's own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstructKind {
    Namedtuple,
    Enum,
    NewIgnoresArgs,
    Constructor,
}

/// A class (registry.toml `[[construct]]`) whose construction with plain arguments is graded
/// like an instantiation without arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Construct {
    pub module: &'static str,
    pub name: &'static str,
    pub kind: ConstructKind,
    pub reason: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/registry.rs"));

/// The `[[construct]]` entry for exactly `module.name`.
pub fn construct(module: &str, name: &str) -> Option<&'static Construct> {
    CONSTRUCT
        .binary_search_by(|e| (e.module, e.name).cmp(&(module, name)))
        .ok()
        .map(|i| &CONSTRUCT[i])
}

/// The registry entry for exactly `module.name` as Python loaders resolve it (entries only
/// TorchScript's unpickler knows are left out; see [`lookup_in`]).
pub fn lookup(module: &str, name: &str) -> Option<&'static Entry> {
    lookup_in(module, name, false)
}

/// The registry entry for exactly `module.name`, inside a TorchScript archive or not.
pub fn lookup_in(module: &str, name: &str, torchscript: bool) -> Option<&'static Entry> {
    ALLOW
        .binary_search_by(|e| (e.module, e.name).cmp(&(module, name)))
        .ok()
        .map(|i| &ALLOW[i])
        .filter(|e| torchscript || !e.torchscript_only)
}

/// Why `module.name` is a known gadget, if it is one: its module is (under) a dangerous module,
/// or a component of its name is a dangerous name (`torch.load`, `numpy.testing.runstring`,
/// `pathlib` + `os.system`).
pub fn dangerous(module: &str, name: &str) -> Option<&'static str> {
    // `prefix` or `prefix.sub`, without allocating: this runs for every GLOBAL of a pickle.
    let under = |module: &str, prefix: &str| {
        module
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    };
    if let Some((_, _, why)) = DANGEROUS_GLOBALS
        .iter()
        .find(|(m, n, _)| *m == module && *n == name)
    {
        return Some(why);
    }
    if let Some((_, why)) = DANGEROUS_MODULES.iter().find(|(p, _)| under(module, p)) {
        return Some(why);
    }
    for part in name.split('.') {
        if let Some((_, why)) = DANGEROUS_NAMES.iter().find(|(p, _)| *p == part) {
            return Some(why);
        }
        if let Some((_, why)) = DANGEROUS_MODULES.iter().find(|(p, _)| *p == part) {
            return Some(why);
        }
    }
    None
}

/// Whether `setattr(tensor, name, v)` changes the tensor itself (a torch.Tensor / Parameter
/// attribute, or any dunder) rather than adding a plain Python attribute.
pub fn is_tensor_attribute(name: &str) -> bool {
    (name.starts_with("__") && name.ends_with("__"))
        || TENSOR_ATTRIBUTES.binary_search(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::torch_dtype::TorchDtype;

    #[test]
    fn lookup_is_exact() {
        assert_eq!(
            lookup("torch._utils", "_rebuild_tensor_v2").map(|e| e.kind),
            Some(Kind::RebuildTensorV2)
        );
        assert!(lookup("torch._utils", "_rebuild_tensor_v2x").is_none());
        assert!(lookup("torch._utils.x", "_rebuild_tensor_v2").is_none());
        assert!(lookup("torch.nn.modules.linear", "Linear").is_none());
        assert!(lookup("torch", "load").is_none());
    }

    #[test]
    fn tensor_attributes() {
        assert!(is_tensor_attribute("data"));
        assert!(is_tensor_attribute("requires_grad"));
        assert!(is_tensor_attribute("_backward_hooks"));
        assert!(is_tensor_attribute("__setstate__"));
        assert!(is_tensor_attribute("__anything__"));
        assert!(!is_tensor_attribute("_is_hf_initialized"));
        assert!(!is_tensor_attribute("my_note"));
    }

    #[test]
    fn table_is_sorted_and_unique() {
        for w in ALLOW.windows(2) {
            assert!((w[0].module, w[0].name) < (w[1].module, w[1].name), "{w:?}");
        }
    }

    /// Kinds whose meaning comes from the name resolve for every registered name.
    #[test]
    fn named_kinds_resolve() {
        for e in ALLOW {
            match e.kind {
                Kind::TorchDtype => assert!(TorchDtype::from_torch_name(e.name).is_some(), "{e:?}"),
                Kind::TypedStorage => {
                    assert!(TorchDtype::from_storage_name(e.name).is_some(), "{e:?}")
                }
                Kind::LegacyTensorClass if e.name != "Tensor" => {
                    let base = e.name.strip_suffix("Tensor").expect("a tensor class");
                    assert!(
                        TorchDtype::from_storage_name(&format!("{base}Storage")).is_some(),
                        "{e:?}"
                    )
                }
                _ => {}
            }
        }
    }

    /// No allowed name is also a dangerous one: the allowlist wins, so an overlap would be a
    /// gadget waved through.
    #[test]
    fn allowed_names_are_not_dangerous_unless_reviewed() {
        // Reviewed overlaps: torch.cuda's storage and tensor classes (plain classes under a
        // dangerous prefix), torch.serialization._get_layout (a table lookup), TorchScript's
        // identity list builders, joblib's array wrapper (the format's own placeholder) and
        // functools.partial (it stores its arguments).
        let reviewed = |e: &Entry| {
            matches!(
                (e.module, e.kind),
                ("torch.cuda", Kind::TypedStorage | Kind::LegacyTensorClass)
                    | ("torch.serialization", Kind::TorchLayoutLookup)
                    | ("torch.jit._pickle", _)
                    | (_, Kind::JoblibArrayWrapper)
                    | ("functools", Kind::FunctoolsPartial)
            )
        };
        for e in ALLOW {
            if !reviewed(e) {
                assert!(dangerous(e.module, e.name).is_none(), "{e:?}");
            }
        }
    }
}
