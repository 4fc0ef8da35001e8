//! What TorchScript source can reach besides arithmetic on tensors: one table of operators,
//! operator namespaces and TorchBind classes, each with the effect it has outside the tensors it
//! computes on and the reason for that classification.
//!
//! Names are the ones the TorchScript importer resolves (`torch/csrc/jit/serialization/
//! import_source.cpp`): `torch.X` is `aten::X`, `ops.NS.X` is `NS::X`, and
//! `__torch__.torch.classes.NS.C` is the TorchBind class `NS::C`. An entry name is exact
//! (`aten::save`) or a whole namespace (`c10d::*`); an exact entry wins over its namespace.
//!
//! `tests/torchscript.rs` checks this table against the schemas of the installed torch
//! (`torch._C._jit_get_all_schemas()`, `torch._C._jit_get_custom_class_schemas()`): every
//! operator outside `aten`/`prims`, and every operator anywhere that takes or returns strings,
//! untyped values, storages, futures, RRefs or TorchBind objects, or whose name or argument
//! names suggest files, processes or the network, must be classified here, so a torch upgrade
//! that adds such an operator fails the test until someone decides what it does.

use std::collections::HashMap;
use std::sync::OnceLock;

/// What an operator can do to the world outside the values it computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Effect {
    /// Reviewed: computes on its arguments (or only prints, warns, raises or queries the
    /// runtime). Nothing to grade.
    None,
    /// Reads a file named by its caller.
    FileRead,
    /// Creates, truncates or writes a file named by its caller.
    FileWrite,
    /// Loads and runs another serialized model.
    ModelLoad,
    /// Exchanges data with other processes or hosts (RPC, collectives).
    Network,
    /// Makes a tensor view past the end of its storage without a bounds check: out-of-bounds
    /// reads and writes of the loader's memory, the usual first step to running native code.
    Memory,
}

impl Effect {
    /// Whether code reaching this operator is graded (high at load, medium when called).
    pub fn is_capability(self) -> bool {
        self != Effect::None
    }

    pub fn describe(self) -> &'static str {
        match self {
            Effect::None => "no effect outside its values",
            Effect::FileRead => "reads a file",
            Effect::FileWrite => "creates or writes a file",
            Effect::ModelLoad => "loads another model",
            Effect::Network => "reaches other processes over the network",
            Effect::Memory => "reads and writes memory outside tensor storage",
        }
    }
}

/// Where the name comes from: only `Torch` entries are checked against the installed torch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Registered by torch itself (the version the fixtures pin, 2.15).
    Torch,
    /// A library many TorchScript models load alongside (torchvision, torchaudio); its
    /// operators resolve only when that library is imported.
    ThirdParty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An operator: `NS::name` or `NS::*`.
    Op,
    /// A TorchBind class (`__torch__.torch.classes.NS.Name`): `NS::Name` or `NS::*`.
    Class,
    /// A special form of the TorchScript compiler that is not an operator (`fork`).
    Builtin,
}

#[derive(Debug)]
pub struct Entry {
    pub kind: Kind,
    pub names: &'static [&'static str],
    pub effect: Effect,
    pub origin: Origin,
    pub reason: &'static str,
}

const fn op(names: &'static [&'static str], effect: Effect, reason: &'static str) -> Entry {
    Entry {
        kind: Kind::Op,
        names,
        effect,
        origin: Origin::Torch,
        reason,
    }
}

const fn class(names: &'static [&'static str], effect: Effect, reason: &'static str) -> Entry {
    Entry {
        kind: Kind::Class,
        names,
        effect,
        origin: Origin::Torch,
        reason,
    }
}

const fn third_party(
    kind: Kind,
    names: &'static [&'static str],
    effect: Effect,
    reason: &'static str,
) -> Entry {
    Entry {
        kind,
        names,
        effect,
        origin: Origin::ThirdParty,
        reason,
    }
}

use Effect::{FileRead, FileWrite, Memory, ModelLoad, Network};

/// The table. Capabilities first, then the reviewed namespaces and operators.
pub const REGISTRY: &[Entry] = &[
    // ---- files -------------------------------------------------------------------------
    op(
        &["aten::from_file"],
        FileWrite,
        "torch.from_file(filename, shared, size) maps the named file into a tensor; with \
         shared=True it opens it read-write and creates it when missing (measured: a scripted \
         __setstate__ calling it creates the file during torch.jit.load)",
    ),
    op(
        &["aten::save"],
        FileWrite,
        "torch.save(value, filename) in TorchScript pickles the value into the named file, \
         creating or truncating it",
    ),
    op(
        &["debugprims::load_tensor"],
        FileRead,
        "reads tensor data by name from the content-store directory torch's debugging tools \
         configure (torch/_prims/debug_prims.py)",
    ),
    // ---- network -----------------------------------------------------------------------
    op(
        &[
            "prim::rpc_async",
            "prim::rpc_sync",
            "prim::rpc_remote",
            "aten::to_here",
        ],
        Network,
        "torch.distributed.rpc: runs a function on another worker, or fetches an RRef's value \
         from its owner, over the RPC agent's network connections",
    ),
    op(
        &["c10d::*"],
        Network,
        "c10d collectives and point-to-point ops (send, recv, all-reduce, barrier...) exchange \
         tensors with the other ranks of a process group",
    ),
    op(
        &[
            "_c10d_functional::*",
            "_c10d_functional_autograd::*",
            "_dtensor::*",
        ],
        Network,
        "functional collectives: exchange tensors with the ranks of a process group found by \
         name in the running process",
    ),
    op(
        &["symm_mem::*"],
        Network,
        "symmetric-memory rendezvous, puts, gets and collectives with peer processes (NVSHMEM, \
         NCCL)",
    ),
    class(
        &["c10d::*"],
        Network,
        "process-group, work and symmetric-memory handles of the c10d collectives",
    ),
    // ---- other models ------------------------------------------------------------------
    class(
        &["_nnapi::Compilation"],
        ModelLoad,
        "Android NNAPI: init() hands a serialized NNAPI model to the system's neural-network \
         library and run() executes it",
    ),
    // ---- memory ------------------------------------------------------------------------
    op(
        &[
            "aten::_reshape_alias",
            "prims::as_strided",
            "inductor::_reinterpret_tensor",
            "inductor::_alloc_from_pool",
        ],
        Memory,
        "build a view with any size, stride and offset without checking it against the storage \
         (measured: a 2-element tensor viewed as 64 elements reads past its end, also from \
         scripted code); as_strided and set_ check or grow the storage instead",
    ),
    // ---- third-party libraries ---------------------------------------------------------
    third_party(
        Kind::Op,
        &[
            "image::read_file",
            "torchaudio::sox_io_get_info",
            "torchaudio::sox_io_load_audio_file",
        ],
        FileRead,
        "torchvision.io.read_file (torchvision/csrc/io/image/image.cpp) and torchaudio's sox_io \
         loaders (TORCH_LIBRARY_FRAGMENT(torchaudio)) open the file at a path argument",
    ),
    third_party(
        Kind::Op,
        &["image::write_file", "torchaudio::sox_io_save_audio_file"],
        FileWrite,
        "torchvision.io.write_file and torchaudio's sox_io saver write the file at a path \
         argument",
    ),
    third_party(
        Kind::Class,
        &["torchvision::Video"],
        FileRead,
        "torchvision's video reader: its constructor opens the media file at a path argument",
    ),
    third_party(
        Kind::Op,
        &["torchvision::*"],
        Effect::None,
        "torchvision's detection operators (nms, roi_align, roi_pool, deform_conv2d...) compute \
         on tensors",
    ),
    // ---- compiler special forms --------------------------------------------------------
    Entry {
        kind: Kind::Builtin,
        names: &[
            "fork",
            "awaitable",
            "annotate",
            "unchecked_cast",
            "uninitialized",
        ],
        effect: Effect::None,
        origin: Origin::Torch,
        reason: "special forms of the importer's environment (import_source.cpp): fork and \
                 awaitable run a function of the archive later (its name is followed like any \
                 call), the others only change static types",
    },
    // ---- reviewed torch namespaces -----------------------------------------------------
    op(
        &["aten::*", "prims::*"],
        Effect::None,
        "ATen and primitive tensor, scalar, list and string operators; the ones with string, \
         untyped, storage or future arguments are listed one by one below",
    ),
    op(
        &[
            "quantized::*",
            "_quantized::*",
            "sparse::*",
            "quantization::*",
            "mkldnn::*",
            "mkldnn_prepacked::*",
            "onednn::*",
            "mkl::*",
            "prepacked::*",
            "xnnpack::*",
            "_native::*",
            "_native_aot::*",
            "flex_gemm::*",
            "fsdp::*",
            "static_runtime::*",
            "onnx::*",
            "rngprims::*",
            "inductor_prims::*",
        ],
        Effect::None,
        "kernel libraries (quantized, sparse, oneDNN/MKL, XNNPACK, generated kernels, static \
         runtime fusions): compute on tensors and packed weights",
    ),
    op(
        &["inductor::*"],
        Effect::None,
        "Inductor runtime helpers (accumulate_grad_, _mm_plus_mm, resize_storage_bytes_ grows \
         the storage it resizes); the two that build unchecked views are listed under memory",
    ),
    op(
        &["prim::*"],
        Effect::None,
        "interpreter primitives (attribute and type queries, RaiseException, Print, list and \
         tuple helpers, fusion-group markers)",
    ),
    op(
        &["prim::PythonOp", "prim::IgnoredPythonOp"],
        Effect::None,
        "graph nodes for Python functions: the importer has no Python resolver, so serialized \
         source cannot create a PythonOp, and IgnoredPythonOp only raises when run",
    ),
    op(
        &["prim::profile", "prim::profile_ivalue"],
        Effect::None,
        "profiling-executor markers that record the types flowing through the graph",
    ),
    op(
        &["cuda::*", "coor::*"],
        Effect::None,
        "device and stream management (current device, synchronize, set_stream)",
    ),
    op(
        &["profiler::*", "debug_mode_ops::*"],
        Effect::None,
        "profiler ranges and debug-mode annotations, recorded in memory",
    ),
    op(
        &["export::*", "_test::*"],
        Effect::None,
        "torch.export subclass access and torch's own test operators",
    ),
    op(
        &["mkldnn::_get_mkldnn_serialized_md"],
        Effect::None,
        "returns the serialized oneDNN memory descriptor of a tensor as bytes in a tensor",
    ),
    class(
        &[
            "quantized::*",
            "sparse::*",
            "rnn::*",
            "mkldnn::*",
            "xnnpack::*",
        ],
        Effect::None,
        "packed weights of quantized, sparse, RNN and oneDNN/XNNPACK layers: __setstate__ \
         re-packs tensors",
    ),
    class(
        &["cuda::*", "profiler::*", "profiling::*", "backendutils::*"],
        Effect::None,
        "streams, events, profiler records and backend debug info, all in memory",
    ),
    class(
        &["profiling::_ScriptProfile"],
        Effect::None,
        "TorchScript's line profiler: _dump_stats returns the collected statistics as values \
         (nothing is written anywhere)",
    ),
    class(
        &["dist_rpc::*"],
        Effect::None,
        "WorkerInfo names an RPC worker (data only; the RPC calls are graded)",
    ),
    class(
        &["aten::*"],
        Effect::None,
        "OpaqueObject: a handle on an object of the running process (torch.library opaque \
         types); its schema has no __init__, so source cannot make one",
    ),
    // ---- reviewed aten operators with string, untyped or future arguments ---------------
    op(
        &[
            "aten::capitalize",
            "aten::center",
            "aten::count",
            "aten::endswith",
            "aten::expandtabs",
            "aten::find",
            "aten::format",
            "aten::index",
            "aten::isalnum",
            "aten::isalpha",
            "aten::isdecimal",
            "aten::isdigit",
            "aten::isidentifier",
            "aten::islower",
            "aten::isnumeric",
            "aten::isprintable",
            "aten::isspace",
            "aten::istitle",
            "aten::isupper",
            "aten::join",
            "aten::ljust",
            "aten::lower",
            "aten::lstrip",
            "aten::partition",
            "aten::percentFormat",
            "aten::replace",
            "aten::rfind",
            "aten::rindex",
            "aten::rjust",
            "aten::rpartition",
            "aten::rsplit",
            "aten::rstrip",
            "aten::slice",
            "aten::split",
            "aten::splitlines",
            "aten::startswith",
            "aten::strip",
            "aten::swapcase",
            "aten::title",
            "aten::upper",
            "aten::zfill",
            "aten::ord",
            "aten::chr",
            "aten::bin",
            "aten::oct",
            "aten::hex",
            "aten::str",
            "aten::Float",
            "aten::Int",
            "aten::add",
        ],
        Effect::None,
        "Python str methods and conversions on in-memory strings (TorchScript's str type)",
    ),
    op(
        &[
            "aten::__contains__",
            "aten::__getitem__",
            "aten::_set_item",
            "aten::Delete",
            "aten::any",
            "aten::clear",
            "aten::copy",
            "aten::dict",
            "aten::get",
            "aten::items",
            "aten::keys",
            "aten::len",
            "aten::list",
            "aten::pop",
            "aten::popitem",
            "aten::remove",
            "aten::setdefault",
            "aten::sort",
            "aten::sorted",
            "aten::update",
            "aten::values",
            "aten::eq",
            "aten::ne",
            "aten::lt",
            "aten::le",
            "aten::gt",
            "aten::ge",
            "aten::dequantize",
        ],
        Effect::None,
        "list, dict and comparison builtins on generic values (their schemas use str, Any or \
         type variables)",
    ),
    op(
        &[
            "aten::__interpolate",
            "aten::__upsample",
            "aten::_convolution_mode",
            "aten::conv1d",
            "aten::conv2d",
            "aten::conv3d",
            "aten::div",
            "aten::div_",
            "aten::divide",
            "aten::divide_",
            "aten::einsum",
            "aten::fft_fft",
            "aten::fft_fft2",
            "aten::fft_fftn",
            "aten::fft_hfft",
            "aten::fft_hfft2",
            "aten::fft_hfftn",
            "aten::fft_ifft",
            "aten::fft_ifft2",
            "aten::fft_ifftn",
            "aten::fft_ihfft",
            "aten::fft_ihfft2",
            "aten::fft_ihfftn",
            "aten::fft_irfft",
            "aten::fft_irfft2",
            "aten::fft_irfftn",
            "aten::fft_rfft",
            "aten::fft_rfft2",
            "aten::fft_rfftn",
            "aten::gelu",
            "aten::gelu_",
            "aten::gelu_backward",
            "aten::index_reduce",
            "aten::index_reduce_",
            "aten::linalg_cond",
            "aten::linalg_eigh",
            "aten::linalg_eigvalsh",
            "aten::linalg_lstsq",
            "aten::linalg_matrix_norm",
            "aten::linalg_norm",
            "aten::linalg_qr",
            "aten::linalg_svd",
            "aten::linalg_svdvals",
            "aten::_linalg_check_errors",
            "aten::_linalg_eigh",
            "aten::_linalg_svd",
            "aten::meshgrid",
            "aten::nanquantile",
            "aten::quantile",
            "aten::pad",
            "aten::pad_sequence",
            "aten::scatter",
            "aten::scatter_",
            "aten::scatter_reduce",
            "aten::scatter_reduce_",
            "aten::searchsorted",
            "aten::segment_reduce",
            "aten::_segment_reduce_backward",
            "aten::_sparse_mm",
            "aten::_sparse_mm_reduce_impl",
            "aten::_sparse_mm_reduce_impl_backward",
            "aten::_mixed_dtypes_linear",
            "aten::_sparse_semi_structured_linear",
            "aten::_sparse_semi_structured_tile",
            "aten::stft",
            "aten::quantized_gru",
            "aten::quantized_lstm",
            "aten::set",
            "aten::set_",
        ],
        Effect::None,
        "tensor kernels whose string argument picks a mode (padding, rounding, norm, reduction, \
         driver, interpolation), or that take packed RNN weights; set_ points a tensor at a \
         storage and grows the storage to fit (measured)",
    ),
    op(
        &[
            "aten::_print",
            "aten::warn",
            "aten::_assert_async",
            "aten::_assert_scalar",
            "aten::_functional_assert_async",
            "aten::_functional_assert_scalar",
        ],
        Effect::None,
        "print to stdout, warn through Python's warnings, or raise with a message",
    ),
    op(
        &[
            "aten::_get_cpu_capability",
            "aten::get_autocast_dtype",
            "aten::device",
            "aten::has_torch_function",
            "aten::wait",
        ],
        Effect::None,
        "runtime queries (CPU capability, autocast dtype, device parsing, __torch_function__ \
         check) and waiting on a future of this process (fork)",
    ),
    op(
        &[
            "aten::local_value",
            "aten::owner",
            "aten::owner_name",
            "aten::is_owner",
            "aten::confirmed_by_owner",
        ],
        Effect::None,
        "RRef queries answered by the local RRef record (fetching a remote value is to_here, \
         graded as network)",
    ),
    op(
        &[
            "aten::miopen_batch_norm",
            "aten::miopen_batch_norm_backward",
            "aten::miopen_convolution",
            "aten::miopen_convolution_add_relu",
            "aten::miopen_convolution_relu",
            "aten::miopen_convolution_transpose",
            "aten::miopen_ctc_loss",
            "aten::miopen_depthwise_convolution",
            "aten::miopen_rnn",
            "aten::miopen_rnn_backward",
            "aten::_use_miopen_ctc_loss",
            "aten::_remove_batch_dim",
            "aten::_test_serialization_subcmul",
            "aten::_test_ambiguous_defaults",
            "aten::_test_string_default",
        ],
        Effect::None,
        "AMD MIOpen kernels, a vmap helper and torch's own test operators: names that only look \
         like open/remove/serialize",
    ),
];

/// One namespace of operators or classes: its exact entries and its namespace entry.
#[derive(Default)]
struct Namespace {
    exact: HashMap<&'static str, &'static Entry>,
    any: Option<&'static Entry>,
}

struct Index {
    ops: HashMap<&'static str, Namespace>,
    classes: HashMap<&'static str, Namespace>,
    builtins: HashMap<&'static str, &'static Entry>,
    /// Capabilities by the attribute name that can reach them (see `triggered_by`).
    triggers: HashMap<&'static str, Vec<Trigger>>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut ix = Index {
            ops: HashMap::new(),
            classes: HashMap::new(),
            builtins: HashMap::new(),
            triggers: HashMap::new(),
        };
        for e in REGISTRY {
            for n in e.names {
                let map = match e.kind {
                    Kind::Op => &mut ix.ops,
                    Kind::Class => &mut ix.classes,
                    Kind::Builtin => {
                        ix.builtins.insert(n, e);
                        continue;
                    }
                };
                let (ns, name) = n.split_once("::").unwrap_or(("", n));
                let slot = map.entry(ns).or_default();
                if name == "*" {
                    slot.any = Some(e);
                } else {
                    slot.exact.insert(name, e);
                }
            }
        }
        for c in capabilities() {
            let (key, namespace_needed) = match c.name {
                None => (c.namespace, false),
                Some(n) if c.kind == Kind::Op && c.namespace == "aten" => (n, false),
                Some(n) => (n, true),
            };
            ix.triggers.entry(key).or_default().push(Trigger {
                capability: c,
                namespace_needed,
            });
        }
        ix
    })
}

fn lookup(map: &HashMap<&'static str, Namespace>, ns: &str, name: &str) -> Option<Lookup> {
    let n = map.get(ns)?;
    if let Some(e) = n.exact.get(name) {
        return Some(Lookup {
            entry: e,
            exact: true,
        });
    }
    n.any.map(|e| Lookup {
        entry: e,
        exact: false,
    })
}

/// A registry match: the entry and whether it names the operator itself or its namespace.
#[derive(Debug, Clone, Copy)]
pub struct Lookup {
    pub entry: &'static Entry,
    pub exact: bool,
}

/// The entry for operator `ns::name`, exact or by namespace.
pub fn lookup_op(ns: &str, name: &str) -> Option<Lookup> {
    lookup(&index().ops, ns, name)
}

/// The entry for TorchBind class `ns::name`, exact or by namespace.
pub fn lookup_class(ns: &str, name: &str) -> Option<Lookup> {
    lookup(&index().classes, ns, name)
}

/// Whether the table knows operator namespace `ns` at all (an unknown one is a custom library).
pub fn known_op_namespace(ns: &str) -> bool {
    index().ops.contains_key(ns)
}

/// Whether the table knows TorchBind class namespace `ns`.
pub fn known_class_namespace(ns: &str) -> bool {
    index().classes.contains_key(ns)
}

/// A capability an attribute name can reach through an alias of `torch`, `ops` or a namespace.
#[derive(Debug)]
pub struct Trigger {
    pub capability: &'static Capability,
    /// The capability's namespace must be named in the same file too.
    pub namespace_needed: bool,
}

/// What an attribute name (or `getattr` literal) may reach when the receiver is unknown:
/// a namespace entry by the namespace's name, an `aten` operator by its name (every alias of
/// `torch` reaches `aten`), any other exact entry by its name provided its namespace is named.
pub fn triggered_by(name: &str) -> &'static [Trigger] {
    index()
        .triggers
        .get(name)
        .map(|v| v.as_slice())
        .unwrap_or(&[])
}

/// Whether `name` is one of the compiler's special forms.
pub fn is_builtin(name: &str) -> bool {
    index().builtins.contains_key(name)
}

/// How a capability entry shows up in source, for the scanner: operators in `aten` are reached
/// through any alias of `torch` (`t = torch; t.save(...)`, `getattr(torch, "save")`), so their
/// bare name is enough; elsewhere the namespace must be named too (`ops.image.read_file`).
#[derive(Debug, Clone)]
pub struct Capability {
    pub kind: Kind,
    /// `None` for a whole namespace.
    pub name: Option<&'static str>,
    pub namespace: &'static str,
    pub qualified: &'static str,
    pub entry: &'static Entry,
}

/// Every capability entry, split into namespace and name.
pub fn capabilities() -> &'static [Capability] {
    static CAPS: OnceLock<Vec<Capability>> = OnceLock::new();
    CAPS.get_or_init(|| {
        let mut out = Vec::new();
        for e in REGISTRY.iter().filter(|e| e.effect.is_capability()) {
            for q in e.names {
                let (namespace, name) = q.split_once("::").unwrap_or(("", q));
                out.push(Capability {
                    kind: e.kind,
                    name: (name != "*").then_some(name),
                    namespace,
                    qualified: q,
                    entry: e,
                });
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_has_a_reason_and_well_formed_names() {
        let mut seen = std::collections::HashSet::new();
        for e in REGISTRY {
            assert!(e.reason.len() > 20, "{:?}", e.names);
            assert!(!e.names.is_empty());
            for n in e.names {
                assert!(seen.insert((e.kind, *n)), "{n} listed twice");
                match e.kind {
                    Kind::Builtin => assert!(!n.contains("::"), "{n}"),
                    _ => {
                        let (ns, name) = n.split_once("::").expect(n);
                        assert!(!ns.is_empty() && !name.is_empty(), "{n}");
                        assert!(!name.contains("::"), "{n}");
                    }
                }
            }
        }
    }

    #[test]
    fn exact_entries_win_over_their_namespace() {
        assert_eq!(lookup_op("aten", "save").unwrap().entry.effect, FileWrite);
        assert!(lookup_op("aten", "save").unwrap().exact);
        assert_eq!(lookup_op("aten", "mul").unwrap().entry.effect, Effect::None);
        assert!(!lookup_op("aten", "mul").unwrap().exact);
        assert_eq!(
            lookup_op("prim", "rpc_async").unwrap().entry.effect,
            Network
        );
        assert_eq!(
            lookup_op("symm_mem", "anything").unwrap().entry.effect,
            Network
        );
        assert!(lookup_op("mylib", "x").is_none());
        assert!(!known_op_namespace("mylib"));
        assert!(known_op_namespace("quantized"));
        assert_eq!(
            lookup_class("_nnapi", "Compilation").unwrap().entry.effect,
            ModelLoad
        );
        assert_eq!(
            lookup_class("torchvision", "Video").unwrap().entry.effect,
            FileRead
        );
        assert!(lookup_class("mylib", "Thing").is_none());
        assert!(is_builtin("fork"));
        assert!(capabilities()
            .iter()
            .any(|c| c.qualified == "aten::from_file"));
        assert!(capabilities()
            .iter()
            .all(|c| c.entry.effect.is_capability()));
    }
}
