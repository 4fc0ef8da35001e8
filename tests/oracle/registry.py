"""The modelled set: which globals the machine claims to model, and how (call / new / value).

Read from src/policy/registry.toml (`[[allow]]` groups with `module`, `names`, `use`, or
`[[global]]` entries with `module`, `name`, `use`). When that file does not exist (older
checkouts) the allowlist of src/policy/globals.rs `allowed()` is used, transcribed below.
The oracle never asks modelguard what it models: this is the claim being checked.
"""

from __future__ import annotations

import os
import tomllib
import _compat_pickle

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
REGISTRY_TOML = os.path.join(REPO, "src", "policy", "registry.toml")

_TORCH_DTYPES = ["float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32",
                 "int", "int16", "short", "int8", "uint8", "bool", "complex64", "cfloat", "complex128", "cdouble",
                 "complex32", "chalf", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
                 "float8_e8m0fnu", "float4_e2m1fn_x2", "uint16", "uint32", "uint64", "qint8", "quint8", "qint32",
                 "quint4x2", "quint2x4", "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2"]
_STORAGES = ["Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool", "ComplexFloat",
             "ComplexDouble", "QInt8", "QUInt8", "QInt32"]
_LEGACY_TENSORS = ["Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool"]


def _fallback():
    """src/policy/globals.rs allowed() (before registry.toml)."""
    e = {}
    for n in ["_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
              "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor",
              "_rebuild_sparse_csr_tensor", "_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass",
              "_rebuild_nested_tensor", "_rebuild_device_tensor_from_cpu_tensor",
              "_rebuild_device_tensor_from_numpy", "_rebuild_xla_tensor", "_rebuild_mlc_tensor"]:
        e[("torch._utils", n)] = "call"
    for m in ("torch._tensor", "torch.tensor"):
        for n in ("_rebuild_from_type_v2", "_rebuild_from_type"):
            e[(m, n)] = "call"
    e[("torch.storage", "_load_from_bytes")] = "call"
    e[("torch.storage", "UntypedStorage")] = "value"
    e[("torch.storage", "TypedStorage")] = "value"
    for m in ("torch", "torch.cuda"):
        for s in _STORAGES:
            e[(m, s + "Storage")] = "value"
        for t in _LEGACY_TENSORS:
            e[(m, t + "Tensor")] = "call"
    e[("torch", "Tensor")] = "call"
    for n, u in [("Size", "call"), ("device", "call")]:
        e[("torch", n)] = u
    e[("torch.serialization", "_get_layout")] = "call"
    for n in ["per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric",
              "per_channel_affine_float_qparams", "strided", "sparse_coo", "sparse_csr", "sparse_csc",
              "sparse_bsr", "sparse_bsc", "_mkldnn", "jagged"] + _TORCH_DTYPES:
        e[("torch", n)] = "value"
    e[("torch.nn.parameter", "Parameter")] = "call"
    for n in ("OrderedDict", "Counter", "defaultdict"):
        e[("collections", n)] = "call"
    for n in ("set", "frozenset", "bytearray", "complex", "slice", "bytes"):
        e[("builtins", n)] = "call"
    for n in ("int", "float", "str", "bool", "list", "dict", "tuple", "object"):
        e[("builtins", n)] = "value"
    e[("_codecs", "encode")] = "call"
    for m in ("numpy.core.multiarray", "numpy._core.multiarray"):
        e[(m, "_reconstruct")] = "call"
        e[(m, "scalar")] = "call"
    for m in ("numpy.core.numeric", "numpy._core.numeric"):
        e[(m, "_frombuffer")] = "call"
    for n in ("ndarray", "matrix", "memmap"):
        e[("numpy", n)] = "value"
    e[("numpy", "dtype")] = "call"
    e[("joblib.numpy_pickle", "NumpyArrayWrapper")] = "new"
    for n in ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist", "build_complexlist",
              "restore_type_tag"):
        e[("torch.jit._pickle", n)] = "call"
    return e


class Registry:
    def __init__(self, path: str = REGISTRY_TOML):
        self.source = path if os.path.exists(path) else "src/policy/globals.rs allowed() (transcribed)"
        self.entries: dict[tuple[str, str], str] = {}
        if os.path.exists(path):
            with open(path, "rb") as f:
                d = tomllib.load(f)
            for g in d.get("allow", []):
                for n in g.get("names", []):
                    self.entries[(g["module"], n)] = g.get("use", "call")
            for g in d.get("global", []):
                self.entries[(g["module"], g["name"])] = g.get("use", "call")
        else:
            self.entries = _fallback()
        # dotted class names the machine models (for BUILD / container methods on instances)
        self.type_names = {f"{m}.{n}" for (m, n) in self.entries}

    def names(self):
        return sorted(self.entries)

    def use(self, module, name):
        key = (module, name)
        if key in self.entries:
            return self.entries[key]
        # protocol < 3 renames (fix_imports)
        if key in _compat_pickle.NAME_MAPPING:
            key = _compat_pickle.NAME_MAPPING[key]
        elif module in _compat_pickle.IMPORT_MAPPING:
            key = (_compat_pickle.IMPORT_MAPPING[module], name)
        return self.entries.get(key)

    def models_type(self, qualname: str | None) -> bool:
        """An instance of this (module.qualname) type is modelled (a registry class or a type
        the modelled calls return)."""
        if not qualname:
            return False
        return qualname in self.type_names or qualname in MODELLED_RESULT_TYPES


# Types that registry calls return, whose own methods the machine models as part of that call
# (an ndarray restored by BUILD after numpy _reconstruct, a tensor's __setstate__ ...).
MODELLED_RESULT_TYPES = {
    "numpy.ndarray", "numpy.dtype", "torch.Tensor", "torch.nn.parameter.Parameter", "torch.Size",
    "torch.device", "collections.OrderedDict", "collections.Counter", "collections.defaultdict",
    "builtins.set", "builtins.frozenset", "builtins.bytearray", "builtins.complex", "builtins.slice",
    "torch.storage.TypedStorage", "torch.storage.UntypedStorage", "torch.dtype",
} | {f"numpy.dtypes.{n}DType" for n in ("Float64", "Float32", "Float16", "Int64", "Int32", "Int16", "Int8", "UInt8",
                                         "UInt16", "UInt32", "UInt64", "Bool", "Complex64", "Complex128")}
