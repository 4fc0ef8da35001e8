//! What each global means. The allowlist is exact (module, name) pairs after Python-2 renames;
//! the dangerous list only grades severity — anything not allowlisted is already refused at the
//! default `--fail-on high` when it is called.

use super::findings::{Rule, Severity};
use crate::pickle::value::{CallKind, Global, StorageType};
use crate::tensors::torch_dtype::TorchDtype as TDtype;

/// An allowlisted global and how the interpreter treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    RebuildTensor,
    RebuildTensorV2,
    RebuildTensorV3,
    RebuildParameter,
    RebuildParameterWithState,
    RebuildFromType,
    RebuildQTensor,
    RebuildSparse,
    RebuildMetaNoStorage,
    RebuildWrapperSubclass,
    RebuildNested,
    RebuildDeviceFromCpu,
    RebuildDeviceFromNumpy,
    LoadFromBytes,
    Storage(StorageType),
    TorchDtype(TDtype),
    /// `torch.FloatTensor` / `torch.Tensor`: legacy tensor classes filled by BUILD.
    LegacyTensorClass(Option<TDtype>),
    Parameter,
    TorchSize,
    TorchDevice,
    TorchLayout,
    /// `torch.per_tensor_affine` and the other qschemes, and `torch.<layout>` constants: plain names.
    TorchConstant,
    OrderedDict,
    Counter,
    DefaultDict,
    Set,
    FrozenSet,
    ByteArray,
    Complex,
    Slice,
    /// `builtins.int`/`float`/... referenced as values (defaultdict factories), never called.
    BuiltinType,
    /// `builtins.bytes`: protocols 0–2 write `b''` as `bytes()`.
    BytesType,
    CodecsEncode,
    NumpyReconstruct,
    NumpyArrayClass,
    NumpyDtype,
    NumpyScalar,
    NumpyFromBuffer,
    JoblibArrayWrapper,
    JitIdentityList,
    JitRestoreTypeTag,
    /// `__torch__.*`: TorchScript module classes, objects whose state holds the weights.
    TorchScriptClass,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalClass {
    Allowed(Allowed),
    /// Inert data classes that real checkpoints carry (hyper-parameters, paths).
    DataClass,
    /// `torch.nn.modules.*` / `torch.optim.*` classes of whole-module pickles.
    ModuleClass,
    /// Known code-execution, file, network, import or nested-loader callables (reason).
    Dangerous(&'static str),
    Unknown,
}

const TORCH_UTILS: &[&str] = &["torch._utils"];

pub fn classify(g: &Global) -> GlobalClass {
    let (m, n) = (&*g.module, &*g.name);
    if let Some(a) = allowed(m, n) {
        return GlobalClass::Allowed(a);
    }
    if let Some(why) = dangerous(m, n) {
        return GlobalClass::Dangerous(why);
    }
    if is_data_class(m, n) {
        return GlobalClass::DataClass;
    }
    if is_module_class(m) {
        return GlobalClass::ModuleClass;
    }
    GlobalClass::Unknown
}

fn allowed(m: &str, n: &str) -> Option<Allowed> {
    use Allowed::*;
    if TORCH_UTILS.contains(&m) {
        return Some(match n {
            "_rebuild_tensor" => RebuildTensor,
            "_rebuild_tensor_v2" => RebuildTensorV2,
            "_rebuild_tensor_v3" => RebuildTensorV3,
            "_rebuild_parameter" => RebuildParameter,
            "_rebuild_parameter_with_state" => RebuildParameterWithState,
            "_rebuild_qtensor" => RebuildQTensor,
            "_rebuild_sparse_tensor" | "_rebuild_sparse_csr_tensor" => RebuildSparse,
            "_rebuild_meta_tensor_no_storage" => RebuildMetaNoStorage,
            "_rebuild_wrapper_subclass" => RebuildWrapperSubclass,
            "_rebuild_nested_tensor" => RebuildNested,
            "_rebuild_device_tensor_from_cpu_tensor" => RebuildDeviceFromCpu,
            "_rebuild_device_tensor_from_numpy" | "_rebuild_xla_tensor" | "_rebuild_mlc_tensor" => {
                RebuildDeviceFromNumpy
            }
            _ => return None,
        });
    }
    Some(match (m, n) {
        // torch.load maps the pre-rename module `torch.tensor` to `torch._tensor`.
        ("torch._tensor" | "torch.tensor", "_rebuild_from_type_v2" | "_rebuild_from_type") => {
            RebuildFromType
        }
        ("torch.storage", "_load_from_bytes") => LoadFromBytes,
        ("torch.storage", "UntypedStorage") => Storage(StorageType::Untyped),
        ("torch.storage", "TypedStorage") => Storage(StorageType::Untyped),
        ("torch" | "torch.cuda", s) if s.ends_with("Storage") => {
            Storage(StorageType::Typed(TDtype::from_storage_name(s)?))
        }
        ("torch", "Tensor") => LegacyTensorClass(None),
        ("torch" | "torch.cuda", s) if s.ends_with("Tensor") && s != "Tensor" => {
            LegacyTensorClass(Some(legacy_tensor_dtype(s)?))
        }
        ("torch", "Size") => TorchSize,
        ("torch", "device") => TorchDevice,
        ("torch.serialization", "_get_layout") => TorchLayout,
        (
            "torch",
            "per_tensor_affine"
            | "per_tensor_symmetric"
            | "per_channel_affine"
            | "per_channel_symmetric"
            | "per_channel_affine_float_qparams",
        ) => TorchConstant,
        (
            "torch",
            "strided" | "sparse_coo" | "sparse_csr" | "sparse_csc" | "sparse_bsr" | "sparse_bsc"
            | "_mkldnn" | "jagged",
        ) => TorchConstant,
        ("torch", d) => TorchDtype(TDtype::from_torch_name(d)?),
        ("torch.nn.parameter", "Parameter") => Parameter,
        ("collections", "OrderedDict") => OrderedDict,
        ("collections", "Counter") => Counter,
        ("collections", "defaultdict") => DefaultDict,
        ("builtins", "set") => Set,
        ("builtins", "frozenset") => FrozenSet,
        ("builtins", "bytearray") => ByteArray,
        ("builtins", "complex") => Complex,
        ("builtins", "slice") => Slice,
        ("builtins", "bytes") => BytesType,
        ("builtins", "int" | "float" | "str" | "bool" | "list" | "dict" | "tuple" | "object") => {
            BuiltinType
        }
        ("_codecs", "encode") => CodecsEncode,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => NumpyReconstruct,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar") => NumpyScalar,
        ("numpy.core.numeric" | "numpy._core.numeric", "_frombuffer") => NumpyFromBuffer,
        ("numpy", "ndarray" | "matrix" | "memmap") => NumpyArrayClass,
        ("numpy", "dtype") => NumpyDtype,
        ("joblib.numpy_pickle", "NumpyArrayWrapper") => JoblibArrayWrapper,
        (
            "torch.jit._pickle",
            "build_intlist" | "build_doublelist" | "build_boollist" | "build_tensorlist"
            | "build_complexlist",
        ) => JitIdentityList,
        ("torch.jit._pickle", "restore_type_tag") => JitRestoreTypeTag,
        (m, _) if m == "__torch__" || m.starts_with("__torch__.") => TorchScriptClass,
        _ => return None,
    })
}

fn legacy_tensor_dtype(class: &str) -> Option<TDtype> {
    let base = class.strip_suffix("Tensor")?;
    TDtype::from_storage_name(&format!("{base}Storage"))
}

fn is_data_class(m: &str, n: &str) -> bool {
    matches!(
        (m, n),
        ("argparse", "Namespace")
            | (
                "pathlib",
                "PosixPath" | "WindowsPath" | "PurePosixPath" | "PureWindowsPath" | "Path"
            )
            | (
                "datetime",
                "datetime" | "date" | "timedelta" | "time" | "timezone"
            )
            | ("decimal", "Decimal")
            | ("fractions", "Fraction")
            | ("uuid", "UUID")
            | ("enum", "Enum")
            | ("collections", "deque" | "namedtuple")
    ) || m == "omegaconf"
        || m.starts_with("omegaconf.")
}

fn is_module_class(m: &str) -> bool {
    [
        "torch.nn.modules.",
        "torch.optim.",
        "torch.ao.nn.",
        "torch.nn.utils.",
    ]
    .iter()
    .any(|p| m.starts_with(p))
        || m == "torch.nn.modules"
}

/// Modules whose every attribute is a code-execution, file, process, network or import gadget.
const DANGEROUS_MODULES: &[(&str, &str)] = &[
    ("os", "process/file control"),
    ("posix", "process/file control"),
    ("nt", "process/file control"),
    ("sys", "interpreter internals"),
    ("subprocess", "process execution"),
    ("_posixsubprocess", "process execution"),
    ("pty", "process execution"),
    ("commands", "process execution"),
    ("popen2", "process execution"),
    ("multiprocessing", "process execution"),
    ("_interpreters", "code execution"),
    ("concurrent", "process execution"),
    ("asyncio", "process and network execution"),
    ("runpy", "code execution"),
    ("code", "code execution"),
    ("codeop", "code compilation"),
    ("importlib", "imports code"),
    ("imp", "imports code"),
    ("pkgutil", "imports code"),
    ("zipimport", "imports code"),
    ("site", "imports code"),
    ("pickle", "nested pickle loader"),
    ("_pickle", "nested pickle loader"),
    ("cPickle", "nested pickle loader"),
    ("dill", "nested pickle loader"),
    ("cloudpickle", "nested pickle loader"),
    ("joblib", "nested pickle loader"),
    ("shelve", "nested pickle loader"),
    ("marshal", "code objects"),
    ("types", "code/function construction"),
    ("ctypes", "native code"),
    ("_ctypes", "native code"),
    ("cffi", "native code"),
    ("socket", "network"),
    ("_socket", "network"),
    ("ssl", "network"),
    ("http", "network"),
    ("httplib", "network"),
    ("urllib", "network"),
    ("urllib2", "network"),
    ("urllib3", "network"),
    ("requests", "network"),
    ("aiohttp", "network"),
    ("ftplib", "network"),
    ("smtplib", "network"),
    ("telnetlib", "network"),
    ("imaplib", "network / process execution"),
    ("poplib", "network"),
    ("nntplib", "network"),
    ("socketserver", "network"),
    ("xmlrpc", "network"),
    ("webbrowser", "process execution"),
    ("shutil", "file operations"),
    ("tempfile", "file operations"),
    ("io", "file operations"),
    ("_io", "file operations"),
    ("fileinput", "file operations"),
    ("glob", "file operations"),
    ("pathlib", "file operations"),
    ("mmap", "memory mapping"),
    ("fcntl", "file control"),
    ("signal", "process control"),
    ("resource", "process control"),
    ("gc", "interpreter internals"),
    ("atexit", "deferred execution"),
    ("threading", "deferred execution"),
    ("_thread", "deferred execution"),
    ("timeit", "code execution"),
    ("cProfile", "code execution"),
    ("profile", "code execution"),
    ("trace", "code execution"),
    ("bdb", "code execution"),
    ("pdb", "code execution"),
    ("doctest", "code execution"),
    ("idlelib", "code execution"),
    ("lib2to3", "code execution"),
    ("ensurepip", "process execution"),
    ("pip", "process execution"),
    ("venv", "process execution"),
    ("distutils", "file / process execution"),
    ("setuptools", "file / process execution"),
    ("_osx_support", "process execution"),
    ("_aix_support", "process execution"),
    ("_pyrepl", "process execution"),
    ("test", "code execution"),
    ("platform", "process execution"),
    ("logging", "file operations"),
    ("pydoc", "imports code / process execution"),
    ("operator", "attribute access gadget"),
    ("_operator", "attribute access gadget"),
    ("functools", "call gadget"),
    ("numpy.testing", "code execution"),
    ("numpy.f2py", "code execution"),
    ("numpy.distutils", "process execution"),
    ("torch.hub", "downloads and runs code"),
    ("torch.jit", "TorchScript loader"),
    ("torch._dynamo", "code execution"),
    ("torch._inductor", "code execution"),
    ("torch.fx", "code execution"),
    ("torch.utils.collect_env", "process execution"),
    ("torch.utils.bottleneck", "code execution"),
    ("torch.utils._config_module", "nested pickle loader"),
    ("torch.utils.data", "nested loaders"),
    ("torch.package", "code import"),
    ("torch.serialization", "nested torch loader"),
    ("torch._C", "native internals"),
    ("torch.cuda", "native internals"),
    ("mlflow", "code execution"),
    ("pandas", "file / network readers"),
    ("keras", "code execution"),
    ("tensorflow", "file / code execution"),
    ("uuid", "process execution"),
];

/// Names dangerous wherever they appear (re-exports such as `torch.load`, `numpy.load`).
const DANGEROUS_NAMES: &[(&str, &str)] = &[
    ("eval", "code execution"),
    ("exec", "code execution"),
    ("execfile", "code execution"),
    ("compile", "code compilation"),
    ("__import__", "imports code"),
    ("import_module", "imports code"),
    ("system", "process execution"),
    ("popen", "process execution"),
    ("Popen", "process execution"),
    ("spawn", "process execution"),
    ("load", "nested loader"),
    ("loads", "nested loader"),
    ("runstring", "code execution"),
    ("getattr", "attribute access gadget"),
    ("setattr", "attribute write gadget"),
    ("open", "file operations"),
    ("locate", "imports code"),
    ("resolve_name", "imports code"),
    ("apply", "call gadget"),
    ("breakpoint", "debugger"),
    ("delattr", "attribute write gadget"),
    ("vars", "namespace access gadget"),
    ("globals", "namespace access gadget"),
    ("locals", "namespace access gadget"),
    ("input", "reads the terminal"),
    ("help", "starts a pager"),
    ("exit", "ends the process"),
    ("quit", "ends the process"),
    ("memoryview", "raw memory access"),
    ("reload", "imports code"),
    ("file", "file operations"),
];

fn dangerous(m: &str, n: &str) -> Option<&'static str> {
    // `prefix` or `prefix.sub`, without allocating: this runs for every GLOBAL of a pickle.
    let top = |module: &str, prefix: &str| {
        module
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    };
    // Builtins that are inert types stay out of the list above via `allowed`.
    if let Some((_, why)) = DANGEROUS_MODULES.iter().find(|(p, _)| top(m, p)) {
        return Some(why);
    }
    // Dotted names walk attributes: judge every component (`pathlib` + `os.system`).
    for part in n.split('.') {
        if let Some((_, why)) = DANGEROUS_NAMES.iter().find(|(p, _)| *p == part) {
            return Some(why);
        }
        if let Some((_, why)) = DANGEROUS_MODULES.iter().find(|(p, _)| *p == part) {
            return Some(why);
        }
    }
    None
}

/// The rule and severity for a call (REDUCE/INST/OBJ) or instantiation (NEWOBJ) that the
/// interpreter did not handle. None means it needs no finding.
pub fn call_severity(g: &Global, class: &GlobalClass, how: CallKind) -> Option<(Rule, Severity)> {
    let instantiate = matches!(how, CallKind::NewObj | CallKind::NewObjEx);
    Some(match class {
        GlobalClass::Dangerous(_) if instantiate => (Rule::DangerousCall, Severity::High),
        GlobalClass::Dangerous(_) => (Rule::DangerousCall, Severity::Critical),
        GlobalClass::DataClass => (Rule::UnknownClass, Severity::Info),
        GlobalClass::ModuleClass => (Rule::ModulePickle, Severity::Low),
        GlobalClass::Allowed(Allowed::TorchScriptClass) => return None,
        // An allowlisted global used in a way the interpreter does not model (wrong arity...).
        GlobalClass::Allowed(_) if instantiate => (Rule::UnknownClass, Severity::Medium),
        GlobalClass::Allowed(_) => (Rule::UnknownCall, Severity::High),
        GlobalClass::Unknown if instantiate => {
            let _ = g;
            (Rule::UnknownClass, Severity::Medium)
        }
        GlobalClass::Unknown => (Rule::UnknownCall, Severity::High),
    })
}

/// Whether `module.name` is a known dangerous callable (the config cannot allow those).
pub fn is_dangerous(module: &str, name: &str) -> bool {
    dangerous(module, name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(m: &str, n: &str) -> Global {
        Global {
            module: m.into(),
            name: n.into(),
        }
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify(&g("torch._utils", "_rebuild_tensor_v2")),
            GlobalClass::Allowed(Allowed::RebuildTensorV2)
        );
        assert_eq!(
            classify(&g("torch", "FloatStorage")),
            GlobalClass::Allowed(Allowed::Storage(StorageType::Typed(TDtype::Float32)))
        );
        assert_eq!(
            classify(&g("torch.cuda", "HalfStorage")),
            GlobalClass::Allowed(Allowed::Storage(StorageType::Typed(TDtype::Float16)))
        );
        assert_eq!(
            classify(&g("torch", "bfloat16")),
            GlobalClass::Allowed(Allowed::TorchDtype(TDtype::BFloat16))
        );
        assert!(matches!(
            classify(&g("posix", "system")),
            GlobalClass::Dangerous(_)
        ));
        assert!(matches!(
            classify(&g("pathlib", "os.system")),
            GlobalClass::Dangerous(_)
        ));
        assert!(matches!(
            classify(&g("torch", "load")),
            GlobalClass::Dangerous(_)
        ));
        assert!(matches!(
            classify(&g("numpy.testing._private.utils", "runstring")),
            GlobalClass::Dangerous(_)
        ));
        assert!(matches!(
            classify(&g("builtins", "eval")),
            GlobalClass::Dangerous(_)
        ));
        assert_eq!(
            classify(&g("builtins", "set")),
            GlobalClass::Allowed(Allowed::Set)
        );
        assert_eq!(
            classify(&g("argparse", "Namespace")),
            GlobalClass::DataClass
        );
        assert_eq!(
            classify(&g("torch.nn.modules.linear", "Linear")),
            GlobalClass::ModuleClass
        );
        assert_eq!(classify(&g("mypkg.models", "Net")), GlobalClass::Unknown);
        assert!(matches!(
            classify(&g("torch", "UnknownStorage")),
            GlobalClass::Dangerous(_) | GlobalClass::Unknown
        ));
    }
}
