"""Every claim of src/policy/registry.toml, checked against the libraries installed here.

    target/venv-python/bin/python -m pytest tests/registry          # check
    MODELGUARD_BLESS=1 target/venv-python/bin/python -m pytest tests/registry   # re-bless the lock

The pickle machine never runs a pickle: it models what the real loaders would do with each
registered name. That is only sound while the installed libraries behave as the registry says,
so a library upgrade that changes what the unpickler would reach must fail here instead of
silently widening the allowlist. How each part of the registry is checked:

* `[[allow]]` names resolve through the real `find_class` of a `pickle.Unpickler` subclass at
  protocol 4 (what `pickle.load` and `numpy.load` use), of a `pickle._Unpickler` subclass (what
  joblib's NumpyUnpickler inherits) and of torch's two `UnpicklerWrapper` classes (captured from
  a real `torch.load` of a zip and of a legacy file). The C and Python unpicklers must agree;
  torch's wrappers may only differ where torch documents it (`torch.tensor` -> `torch._tensor`
  in the zip loader; a storage-type name -> `StorageType`, with no import). Names that no Python
  loader resolves must be ones TorchScript's C++ unpickler accepts (checked with
  `torch._C._pickle_save` / `torch._C._pickle_load_obj`).
* `class` must equal `isinstance(obj, type)`; classes must have no `__getinitargs__` (INST/OBJ
  then use `cls.__new__(cls)`).
* `kind`: one check per kind (CHECKS below) on the object the unpickler reaches: Python
  functions are pinned, C functions and types must stay C, containers keep their C methods and
  argument-ignoring `__new__`, `use = "new"` classes keep `object.__new__` / `str.__new__` and no
  restore hook, kinds whose `__setstate__` the machine models keep the C/Cython one.
* Python source the machine models (registered functions, the class methods they reach, and
  their same-package helpers one call deep) is pinned as sha256 of `inspect.getsource`
  (dedented, stripped) in tests/registry/upstream.lock.json, together with torch's storage-type
  table and module mapping. A difference fails with the function's name; review
  src/policy/interpret against the new source, then re-bless with MODELGUARD_BLESS=1.
* `[[construct]]` classes: imported where the package installs into this venv
  (tests/registry/requirements.txt), otherwise read with `ast` from the exact wheel (pinned by
  sha256 in CONSTRUCT_SOURCES, fetched with `pip download --no-deps`), never imported.
* `[dangerous] globals` resolve, and the behaviour the registry names is visible in their source.
* `[tensor] attributes` cover `dir(torch.nn.Parameter) | dir(torch.Tensor)`.
* Every `kind` is a variant of `enum Kind` / `enum ConstructKind` in src/policy/registry.rs.
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import dis
import enum
import functools
import hashlib
import importlib
import importlib.util
import inspect
import io
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
import tomllib
import types
import warnings
import zipfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
REGISTRY_TOML = os.path.join(REPO, "src", "policy", "registry.toml")
REGISTRY_RS = os.path.join(REPO, "src", "policy", "registry.rs")
JOBLIB_RS = os.path.join(REPO, "src", "policy", "interpret", "joblib.rs")
VALUES_RS = os.path.join(REPO, "src", "policy", "interpret", "values.rs")
LOCK_PATH = os.path.join(HERE, "upstream.lock.json")
WHEEL_CACHE = os.environ.get("MODELGUARD_REGISTRY_WHEELS") or os.path.join(REPO, "target", "registry-wheels")
BLESS = os.environ.get("MODELGUARD_BLESS") == "1"
BLESS_HINT = "MODELGUARD_BLESS=1 target/venv-python/bin/python -m pytest tests/registry"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")

with open(REGISTRY_TOML, "rb") as _f:
    REGISTRY = tomllib.load(_f)


@dataclasses.dataclass(frozen=True)
class Allow:
    module: str
    name: str
    kind: str
    use: str
    cls: bool
    reason: str

    @property
    def id(self) -> str:
        return f"{self.module}.{self.name}"


ALLOW = [
    Allow(g["module"], n, g["kind"], g["use"], g.get("class", False), g["reason"])
    for g in REGISTRY["allow"]
    for n in g["names"]
]
CONSTRUCT = [(g["module"], n, g["kind"], g["reason"]) for g in REGISTRY["construct"] for n in g["names"]]
DANGEROUS_GLOBALS = [(d["module"], d["name"], d["why"]) for d in REGISTRY["dangerous"]["globals"]] + [
    (g["module"], n, REGISTRY["dangerous"][table]["why"])
    for table in ("native", "finalizers")
    for g in REGISTRY["dangerous"][table]["classes"] for n in g["names"]]


def _ids(entries):
    return [e.id if isinstance(e, Allow) else f"{e[0]}.{e[1]}" for e in entries]


# ------------------------------------------------------------------------------------------------
# What the machine's Rust code says (parsed, so that the test follows it)
# ------------------------------------------------------------------------------------------------


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def rust_enum_variants(path: str, enum_name: str) -> set[str]:
    m = re.search(r"pub enum " + enum_name + r"\s*\{(.*?)\n\}", _read(path), re.S)
    assert m, f"no `enum {enum_name}` in {path}"
    body = re.sub(r"//[^\n]*", "", m.group(1))
    body = re.sub(r"#\[[^\]]*\]", "", body)
    return set(re.findall(r"\b([A-Z][A-Za-z0-9]*)\s*(?:,|$)", body))


def rust_str_list(path: str, const: str) -> list[str]:
    m = re.search(r"const " + const + r"\s*:\s*&\[&str\]\s*=\s*&\[(.*?)\];", _read(path), re.S)
    assert m, f"no `const {const}: &[&str]` in {path}"
    return re.findall(r'"([^"]*)"', m.group(1))


def rust_has_setstate_kinds() -> set[str]:
    m = re.search(r"fn has_setstate\(kind: Kind\) -> bool \{\s*matches!\(kind,(.*?)\)\s*\}", _read(VALUES_RS), re.S)
    assert m, f"no `fn has_setstate` in {VALUES_RS}"
    return set(re.findall(r"Kind::(\w+)", m.group(1)))


def camel(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.split("_"))


# ------------------------------------------------------------------------------------------------
# The loaders' find_class
# ------------------------------------------------------------------------------------------------

PROTO4_NONE = pickle.dumps(None, protocol=4)
PROTO2_NONE = pickle.dumps(None, protocol=2)


class CUnpickler(pickle.Unpickler):
    """The C unpickler (pickle.load, numpy.load, torch.load's base), default find_class."""


class PyUnpickler(pickle._Unpickler):  # noqa: SLF001 - joblib's NumpyUnpickler base
    """The pure-Python unpickler joblib's NumpyUnpickler subclasses, default find_class."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    obj: object = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        return f"raises {self.error}" if self.error else f"-> {self.obj!r}"


def _find(unpickler_cls, module: str, name: str, proto: int = 4, **kwargs) -> Outcome:
    """find_class as the loader makes it, after a PROTO opcode: protocol 4 (no Python-2
    renames, dotted names walked) unless told otherwise."""
    u = unpickler_cls(io.BytesIO(PROTO4_NONE if proto == 4 else PROTO2_NONE), **kwargs)
    u.load()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Outcome(obj=u.find_class(module, name))
    except Exception as e:  # noqa: BLE001 - the outcome is the point
        return Outcome(error=f"{type(e).__name__}: {e}")


@functools.cache
def torch_wrappers() -> dict[str, type]:
    """torch.serialization's UnpicklerWrapper classes (local classes of _load and _legacy_load),
    captured from real torch.load calls through a pickle module whose Unpickler records every
    subclass instantiated."""
    import torch

    made: list[type] = []

    class Recorder(pickle.Unpickler):
        def __init__(self, *args, **kwargs):
            made.append(type(self))
            super().__init__(*args, **kwargs)

    mod = types.ModuleType("pickle")
    mod.__dict__.update({k: v for k, v in vars(pickle).items() if not k.startswith("__")})
    mod.Unpickler = Recorder
    out = {}
    for label, save_kwargs in (("torch.load zip", {}), ("torch.load legacy", {"_use_new_zipfile_serialization": False})):
        buf = io.BytesIO()
        torch.save({"x": 1}, buf, pickle_protocol=4, **save_kwargs)
        buf.seek(0)
        made.clear()
        torch.load(buf, pickle_module=mod, weights_only=False)
        wrappers = [c for c in made if c is not Recorder]
        assert wrappers, f"{label}: torch.load did not subclass pickle_module.Unpickler"
        w = wrappers[0]
        assert w.__name__ == "UnpicklerWrapper" and "find_class" in vars(w), (label, w)
        out[label] = w
    return out


@functools.cache
def resolutions(module: str, name: str) -> dict[str, Outcome]:
    res = {
        "pickle (C)": _find(CUnpickler, module, name),
        "pickle (C), protocol 2": _find(CUnpickler, module, name, proto=2),
        "pickle._Unpickler (joblib)": _find(PyUnpickler, module, name),
    }
    for label, w in torch_wrappers().items():
        res[label] = _find(w, module, name, encoding="utf-8")
    return res


def plain(e: Allow) -> Outcome:
    """What the C unpickler reaches; for `torch.tensor` (renamed only by torch.load's zip
    loader) what that loader reaches."""
    if e.module == "torch.tensor":
        return resolutions(e.module, e.name)["torch.load zip"]
    return resolutions(e.module, e.name)["pickle (C)"]


# ------------------------------------------------------------------------------------------------
# TorchScript's C++ unpickler (torch.jit.load): the loader of names no Python loader resolves
# ------------------------------------------------------------------------------------------------


def torchscript_load(data_pkl: bytes):
    """Load `data_pkl` with TorchScript's C++ unpickler, in an archive torch's own writer made."""
    import torch

    base = zipfile.ZipFile(io.BytesIO(torch._C._pickle_save(0)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for n in base.namelist():
            z.writestr(n, data_pkl if n.endswith("/data.pkl") else base.read(n))
    return torch._C._pickle_load_obj(out.getvalue())


def _stream_globals(data: bytes) -> list[str]:
    import pickletools

    names, strings = [], []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            names.append(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            names.append(".".join(strings[-2:]))
        elif isinstance(arg, str):
            strings.append(arg)
    return names


@functools.cache
def torchscript_storage_names() -> dict[str, object]:
    """Storage-type global -> dtype, for every dtype TorchScript's C++ pickler can write a
    tensor of (and its C++ unpickler reads back with the same dtype)."""
    import torch

    out = {}
    for dt in {v for v in vars(torch).values() if isinstance(v, torch.dtype)}:
        try:
            blob = torch._C._pickle_save(torch.empty(2, dtype=dt))
            back = torch._C._pickle_load_obj(blob)
        except Exception:  # noqa: BLE001 - quantized dtypes cannot be made this way
            continue
        if back.dtype != dt:
            continue
        pkl = zipfile.ZipFile(io.BytesIO(blob)).read("archive/data.pkl")
        for g in _stream_globals(pkl):
            if g.startswith("torch.") and g.endswith("Storage"):
                out[g.removeprefix("torch.")] = dt
    return out


# ------------------------------------------------------------------------------------------------
# Source pins
# ------------------------------------------------------------------------------------------------


def source_sha256(func) -> str:
    src = textwrap.dedent(inspect.getsource(func)).strip()
    return hashlib.sha256(src.encode("utf-8")).hexdigest()


def dotted(path: str):
    """Import the longest importable module prefix of `path`, then getattr the rest."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for p in parts[i:]:
            obj = inspect.getattr_static(obj, p) if isinstance(obj, type) else getattr(obj, p)
            if isinstance(obj, (staticmethod, classmethod)):
                obj = obj.__func__
        return obj
    raise ImportError(path)


def canonical(func) -> str:
    return f"{func.__module__}.{func.__qualname__}"


# Python code the machine models beyond the registered functions themselves: (path, why).
EXTRA_PINS = [
    ("torch._utils._set_obj_state", "_rebuild_parameter_with_state and _rebuild_from_type_v2 restore tensor state with setattr per key"),
    ("torch._tensor.Tensor.__setstate__", "BUILD on a legacy tensor (set_ path); _rebuild_from_type_v2 compares against it"),
    ("torch.nn.parameter.Parameter.__new__", "Parameter(data, requires_grad), also from _rebuild_parameter*"),
    ("torch.serialization.load", "torch.storage._load_from_bytes calls torch.load on the file's bytes"),
    ("torch.serialization._load", "the zip loader: its UnpicklerWrapper and persistent_load"),
    ("torch.serialization._legacy_load", "the legacy loader: its UnpicklerWrapper and persistent_load"),
    ("torch.serialization.StorageType.__init__", "torch.load's find_class turns storage names into StorageType"),
    ("torch.storage._get_dtype_from_pickle_storage_type", "StorageType's table lookup"),
    ("numpy.random._pickle.__bit_generator_ctor", "the default bit_generator_ctor of __randomstate_ctor"),
    ("collections.Counter.__init__", "Counter(mapping) runs Counter.__init__"),
    ("collections.Counter.update", "Counter.__init__ copies the mapping with Counter.update"),
    ("fractions.Fraction.__new__", "Fraction(str | int, ...) parses plain numbers"),
    ("numpy.matrix.__array_finalize__", "registry: their __array_finalize__ only sets plain attributes"),
    ("numpy.memmap.__array_finalize__", "registry: their __array_finalize__ only sets plain attributes"),
    ("joblib.numpy_pickle.NumpyArrayWrapper.read", "NumpyUnpickler.load_build calls wrapper.read (src/policy/interpret/joblib.rs)"),
    ("joblib.numpy_pickle.NumpyArrayWrapper.read_array", "wrapper.read -> read_array: the bytes joblib reads"),
    ("joblib.numpy_pickle.NumpyArrayWrapper.read_mmap", "wrapper.read -> read_mmap"),
    ("joblib.numpy_pickle.NumpyArrayWrapper.safe_get_numpy_array_alignment_bytes", "read_array's padding"),
    ("joblib.numpy_pickle.NumpyUnpickler.load_build", "BUILD in joblib: Unpickler.load_build, then wrapper.read"),
    ("pickle._Unpickler.find_class", "joblib's find_class (Python-2 renames, import, getattr walk)"),
    ("pickle._Unpickler._instantiate", "INST/OBJ in joblib: __getinitargs__ lookup, cls.__new__(cls)"),
    ("pickle._Unpickler.load_build", "BUILD in joblib: the instance __setstate__ lookup (src/pickle/lookup.rs)"),
    ("pickle._Unpickler.load_appends", "APPENDS in joblib: the extend/append lookup"),
    ("pickle._Unpickler.load_additems", "ADDITEMS in joblib: the add lookup"),
    ("enum.EnumType.__call__", "[[construct]] enum: Cls(value) is a member lookup"),
    ("enum.Enum.__new__", "[[construct]] enum: the member lookup, then _missing_"),
    ("enum.Enum._missing_", "[[construct]] enum: the default _missing_ raises"),
]

# Callees of pinned functions are pinned too when they are Python functions of the same top-level
# package, one call deep (except for these, whose callees are the whole loader).
NO_CALLEE_EXPANSION = {"torch.serialization.load", "torch.serialization._load", "torch.serialization._legacy_load"}


def _same_package_callees(func) -> list:
    """Python functions of the same top-level package that `func` names as globals."""
    top = func.__module__.split(".")[0]
    out = []

    def walk(code):
        for ins in dis.get_instructions(code):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                v = func.__globals__.get(ins.argval)
                if isinstance(v, types.FunctionType) and v.__module__.split(".")[0] == top:
                    out.append(v)
        for c in code.co_consts:
            if isinstance(c, types.CodeType):
                walk(c)

    walk(func.__code__)
    return out


@functools.cache
def current_pins() -> dict[str, tuple[str, str]]:
    """canonical name -> (sha256, why pinned)."""
    roots: list[tuple[object, str]] = []
    for e in ALLOW:
        r = plain(e)
        if r.ok and isinstance(r.obj, types.FunctionType):
            roots.append((r.obj, f"registry [[allow]] {e.id} ({e.kind})"))
    for path, why in EXTRA_PINS:
        f = dotted(path)
        assert isinstance(f, types.FunctionType), f"{path} is no longer a Python function ({type(f).__name__}): {why}"
        roots.append((f, why))
    pins: dict[str, tuple[str, str]] = {}
    for f, why in roots:
        pins.setdefault(canonical(f), (source_sha256(f), why))
    for f, why in roots:
        if canonical(f) in NO_CALLEE_EXPANSION:
            continue
        for c in _same_package_callees(f):
            pins.setdefault(canonical(c), (source_sha256(c), f"called by {canonical(f)}"))
    return dict(sorted(pins.items()))


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for dist in ("torch", "numpy", "joblib", "scikit-learn", "torchmetrics", "morfessor",
                 "python-crfsuite", "sklearn-crfsuite"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def current_lock() -> dict:
    import torch
    import torch.serialization
    import torch.storage

    return {
        "_comment": "Pinned by tests/registry/test_registry.py: what the installed libraries do at the points the pickle "
                    "machine models. Regenerate only after reviewing src/policy/interpret against the new upstream "
                    f"source: {BLESS_HINT}",
        "blessed_with": _versions(),
        "source_sha256": {k: v[0] for k, v in current_pins().items()},
        "torch_storage_types": sorted(torch.storage._storage_type_to_dtype_map()),
        "torch_load_module_mapping": _zip_module_mapping(),
    }


def _zip_module_mapping() -> dict[str, str]:
    """The module renames of torch.load's zip loader: `load_module_mapping`, a local of
    torch.serialization._load that its UnpicklerWrapper.find_class closes over."""
    fc = torch_wrappers()["torch.load zip"].find_class
    cells = dict(zip(fc.__code__.co_freevars, fc.__closure__ or ()))
    assert "load_module_mapping" in cells, f"the zip UnpicklerWrapper.find_class closes over {sorted(cells)}"
    return dict(sorted(cells["load_module_mapping"].cell_contents.items()))


@pytest.fixture(scope="session")
def lock() -> dict:
    if BLESS:
        data = current_lock()
        with open(LOCK_PATH, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=False)
            f.write("\n")
        return data
    assert os.path.exists(LOCK_PATH), f"{LOCK_PATH} is missing: bless it with {BLESS_HINT}"
    with open(LOCK_PATH, encoding="utf-8") as f:
        return json.load(f)


def _lock_names() -> list[str]:
    try:
        with open(LOCK_PATH, encoding="utf-8") as f:
            locked = set(json.load(f).get("source_sha256", {}))
    except (OSError, ValueError):
        locked = set()
    return sorted(locked | set(current_pins()))


@pytest.mark.parametrize("name", _lock_names())
def test_source_pinned(lock, name):
    """The Python source the machine models is the source it was reviewed against."""
    pins = current_pins()
    locked = lock["source_sha256"].get(name)
    env = lock.get("blessed_with", {})
    if name not in pins:
        if BLESS:
            pytest.skip(f"{name} is dropped from the lock by this bless")
        pytest.fail(f"{name} is in the lock but the machine no longer reaches it as Python code (gone, renamed "
                    f"or now C): review src/policy/interpret, then re-bless with {BLESS_HINT}")
    sha, why = pins[name]
    assert locked is not None, (f"{name} ({why}) is modelled but not pinned: review its source against "
                                f"src/policy/interpret, then bless with {BLESS_HINT}")
    assert sha == locked, (
        f"{name} changed since the lock was blessed (locked sha256 {locked[:16]}, now {sha[:16]}; blessed with "
        f"{env}, running {_versions()}). The machine models it ({why}): review src/policy/interpret and "
        f"docs/unpickling-model.md against the new source before re-blessing with {BLESS_HINT}")


def test_torch_loader_tables_pinned(lock):
    """torch.load's find_class: the storage names it turns into StorageType without importing,
    and the module renames of the zip loader."""
    now = current_lock()
    for key in ("torch_storage_types", "torch_load_module_mapping"):
        assert now[key] == lock[key], (
            f"{key} changed: locked {lock[key]}, now {now[key]}. torch.load now resolves other names than the "
            f"machine models: review src/policy (registry.toml, interpret/torch.rs), then re-bless with {BLESS_HINT}")


# ------------------------------------------------------------------------------------------------
# Registry shape
# ------------------------------------------------------------------------------------------------


def test_kinds_are_machine_variants():
    """Every kind string is a variant the machine knows (build.rs would refuse it, but this says
    which)."""
    kinds = rust_enum_variants(REGISTRY_RS, "Kind")
    construct_kinds = rust_enum_variants(REGISTRY_RS, "ConstructKind")
    missing = sorted({e.kind for e in ALLOW if camel(e.kind) not in kinds})
    assert not missing, f"registry kinds without a Kind variant in {REGISTRY_RS}: {missing}"
    missing = sorted({k for _, _, k, _ in CONSTRUCT if camel(k) not in construct_kinds})
    assert not missing, f"construct kinds without a ConstructKind variant: {missing}"
    assert {e.use for e in ALLOW} <= {"call", "new", "value"}


def test_every_kind_has_a_check():
    """A kind added to the registry must get a check here before it is trusted."""
    assert not sorted({e.kind for e in ALLOW} - set(CHECKS)), "add a check to CHECKS for these kinds"
    assert not sorted({k for _, _, k, _ in CONSTRUCT} - set(CONSTRUCT_CHECKS))
    assert not sorted({m for m, _, _, _ in CONSTRUCT} - set(CONSTRUCT_SOURCES)), "say how to check these modules"
    assert not sorted(set(_ids(DANGEROUS_GLOBALS)) - set(DANGEROUS_BEHAVIOUR))


def test_entries_are_unique():
    seen = collections.Counter(_ids(ALLOW) + _ids(CONSTRUCT))
    assert not [k for k, n in seen.items() if n > 1]
    # A dotted name would walk attributes at protocol 4 (MG007): the registry names none.
    assert not [e.id for e in ALLOW if "." in e.name] and not [f"{m}.{n}" for m, n, _, _ in CONSTRUCT if "." in n]


# ------------------------------------------------------------------------------------------------
# [[allow]]: resolution under every loader
# ------------------------------------------------------------------------------------------------


def torchscript_only(e: Allow) -> bool:
    """A storage name only TorchScript's C++ unpickler resolves (it writes one per dtype)."""
    return (e.kind == "typed_storage" and e.module == "torch" and e.name in torchscript_storage_names()
            and not any(r.ok for r in resolutions(e.module, e.name).values()))


# Registered paths of other versions of a library, unreachable with the installed one:
# module -> (distribution, versions where the import must fail, why). The test asserts the
# import really fails, then skips (it cannot check what it cannot import).
OTHER_VERSION_PATHS = {
    "sklearn.externals.joblib.numpy_pickle": ("scikit-learn", (0, 23), "scikit-learn >= 0.23 removed sklearn.externals.joblib"),
    "numpy.core.memmap": ("numpy", (2, 0), "numpy >= 2 has no numpy.core.memmap (a numpy 1 path)"),
}


def skip_other_version(module: str, outcome: Outcome, table: str):
    if module not in OTHER_VERSION_PATHS or outcome.ok:
        return
    from importlib import metadata

    dist, since, why = OTHER_VERSION_PATHS[module]
    installed = tuple(int(x) for x in re.findall(r"\d+", metadata.version(dist))[:2])
    assert installed >= since and "ModuleNotFoundError" in outcome.error, (
        f"{module} does not resolve with {dist} {metadata.version(dist)}, which should have it: {table}")
    pytest.skip(why)


@pytest.mark.parametrize("e", ALLOW, ids=_ids(ALLOW))
def test_allow_resolves(e):
    """The name resolves with a loader, and the loaders agree on what it is."""
    res = resolutions(e.module, e.name)
    table = ", ".join(f"{k} {v}" for k, v in res.items())
    c, py, c2 = res["pickle (C)"], res["pickle._Unpickler (joblib)"], res["pickle (C), protocol 2"]
    assert c.ok == py.ok and (not c.ok or c.obj is py.obj), f"the C and Python unpicklers disagree: {table}"
    # The registry lists post-rename names: protocol 2's Python-2 renames must not move them.
    assert c.ok == c2.ok and (not c.ok or c.obj is c2.obj), f"a Python-2 rename changes this name: {table}"
    skip_other_version(e.module, c, table)
    for label in ("torch.load zip", "torch.load legacy"):
        if label not in res:
            continue
        t = res[label]
        storage = "Storage" in e.name and e.name in _storage_table()
        if storage:
            import torch.serialization

            assert t.ok and isinstance(t.obj, torch.serialization.StorageType), f"{label}: {table}"
            assert not c.ok or t.obj.dtype == c.obj.dtype, f"{label}: dtype differs from the class: {table}"
            # nothing is imported: the module name is ignored
            w = torch_wrappers()[label]
            odd = _find(w, "modelguard_no_such_module", e.name, encoding="utf-8")
            assert odd.ok and isinstance(odd.obj, torch.serialization.StorageType), f"{label} imported the module: {odd}"
        elif e.module == "torch.tensor":
            if label == "torch.load zip":
                target = _find(CUnpickler, "torch._tensor", e.name)
                assert target.ok and t.ok and t.obj is target.obj, f"zip loader does not rename to torch._tensor: {table}"
                assert not c.ok and "ModuleNotFoundError" in c.error, f"plain pickle now imports torch.tensor: {table}"
            else:
                assert not t.ok, f"the legacy loader now resolves torch.tensor: {table}"
        else:
            assert t.ok == c.ok and (not t.ok or t.obj is c.obj), f"{label} differs from pickle: {table}"
    if torchscript_only(e):
        assert not any(r.ok for r in res.values()), table
        dt = torchscript_storage_names()[e.name]
        assert str(dt).removeprefix("torch.") in {x.name for x in ALLOW if x.kind == "torch_dtype"}, (
            f"TorchScript writes {e.name} for {dt}, a dtype the registry does not list")
        return
    assert any(r.ok for r in res.values()), (
        f"{e.id} ({e.kind}) is registered but resolves with no loader: {table}; "
        + ("TorchScript's C++ unpickler does not know it either: " + _torchscript_verdict(e) if e.module.startswith("torch") else ""))


def _torchscript_verdict(e: Allow) -> str:
    if e.kind == "typed_storage":
        return f"no dtype makes TorchScript write `torch.{e.name}`"
    if e.module == "torch.jit._pickle":
        try:
            torchscript_load(_call_stream(e.module, e.name, 1))
            return "accepted"
        except Exception as err:  # noqa: BLE001
            return str(err).splitlines()[0]
    return "not a TorchScript name"


@functools.cache
def _storage_table() -> frozenset[str]:
    import torch.storage

    return frozenset(torch.storage._storage_type_to_dtype_map())


@pytest.mark.parametrize("e", ALLOW, ids=_ids(ALLOW))
def test_allow_class_flag(e):
    """`class = true` exactly for types (INST/OBJ instantiate types without calling them), and
    no class has __getinitargs__ (which would make INST/OBJ call it)."""
    r = plain(e)
    if not r.ok:
        if torchscript_only(e):
            pytest.skip(f"{e.id} resolves only in TorchScript's C++ unpickler: no Python object to be a class")
        pytest.skip(f"does not resolve ({r.error}); test_allow_resolves reports it")
    assert isinstance(r.obj, type) == e.cls, (
        f"{e.id}: registry says class = {str(e.cls).lower()}, but isinstance(obj, type) is {isinstance(r.obj, type)} "
        f"({type(r.obj).__name__}): INST/OBJ would {'call cls.__new__(cls)' if isinstance(r.obj, type) else 'call it'}")
    if e.cls:
        assert not hasattr(r.obj, "__getinitargs__"), (
            f"{e.id} has __getinitargs__ ({getattr(r.obj, '__getinitargs__')!r}): INST/OBJ without arguments call "
            "cls() (its __new__ and __init__), not cls.__new__(cls) as the machine models")


# ------------------------------------------------------------------------------------------------
# [[allow]]: one check per kind
# ------------------------------------------------------------------------------------------------


def is_c_callable(f) -> bool:
    """Implemented in C (a builtin, a slot wrapper or method descriptor): no Python code runs."""
    return isinstance(f, (types.BuiltinFunctionType, types.BuiltinMethodType, types.WrapperDescriptorType,
                          types.MethodDescriptorType, types.MethodWrapperType, types.ClassMethodDescriptorType))


def is_cython(f) -> bool:
    return type(f).__name__ == "cython_function_or_method"


def is_extension_module(module_name: str) -> bool:
    import importlib.machinery

    f = getattr(sys.modules[module_name], "__file__", None) or ""
    return f.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


HEAPTYPE = 1 << 9


def assert_c_type(cls, what: str):
    """A type whose construction runs no Python code: __new__/__init__ of every class in its
    MRO and its metaclass __call__ are C."""
    assert isinstance(cls, type), what
    for k in cls.__mro__:
        for n in ("__new__", "__init__"):
            v = vars(k).get(n)
            if isinstance(v, staticmethod):
                v = v.__func__
            assert v is None or is_c_callable(v), f"{what}: {k.__qualname__}.{n} is Python code ({v!r})"
    assert type(cls).__call__ is type.__call__ or is_c_callable(type(cls).__call__), f"{what}: metaclass __call__"


def own(cls, name):
    """What an attribute lookup on the class finds, without running descriptors."""
    return inspect.getattr_static(cls, name, None)


LOOKED_UP = ("__setstate__", "extend", "append", "add", "update", "__getattr__")


def python_function(e: Allow, obj):
    assert isinstance(obj, types.FunctionType), f"{e.id} ({e.kind}) should be a Python function, is {type(obj).__name__}"
    assert canonical(obj) in current_pins(), f"{e.id} is not pinned"


def check_python_function(e, obj):
    python_function(e, obj)


def check_jit_list(e, obj):
    python_function(e, obj)
    x = [1]
    assert (obj(x) if e.kind == "jit_identity_list" else obj(x, "List[int]")) is x, f"{e.id} no longer returns its argument"
    nargs = 1 if e.kind == "jit_identity_list" else 2
    assert torchscript_load(_call_stream(e.module, e.name, nargs)) == [1, 2], f"TorchScript's unpickler refuses {e.id}"


def _call_stream(module: str, name: str, nargs: int) -> bytes:
    """GLOBAL module name; ([1, 2],) or ([1, 2], 'List[int]'); REDUCE (protocol 2, as TorchScript)."""
    args = b"]q\x00(K\x01K\x02e" + (b"X\t\x00\x00\x00List[int]" if nargs == 2 else b"")
    return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + args + (b"\x86" if nargs == 2 else b"\x85") + b"R."


def check_numpy_reconstruct(e, obj):
    import numpy._core.multiarray as ma

    if isinstance(obj, types.FunctionType):  # numpy.core._internal's shim for pre-1.0 pickles
        python_function(e, obj)
        body = ast.parse(textwrap.dedent(inspect.getsource(obj))).body[0]
        calls = {ast.unparse(n.func) for n in ast.walk(body) if isinstance(n, ast.Call)}
        assert calls == {"ndarray.__new__"}, f"{e.id} now calls {calls}"
    else:
        assert obj is ma._reconstruct and is_c_callable(obj), f"{e.id} is not numpy's C _reconstruct"


def check_numpy_scalar(e, obj):
    import numpy._core.multiarray as ma

    assert obj is ma.scalar and is_c_callable(obj), f"{e.id} is not numpy's C scalar"


def check_numpy_frombuffer(e, obj):
    import numpy._core.numeric as nn

    python_function(e, obj)
    assert obj is nn._frombuffer
    assert is_c_callable(nn.frombuffer), "_frombuffer's frombuffer is no longer C"


def check_codecs_encode(e, obj):
    import _codecs

    assert obj is _codecs.encode and is_c_callable(obj)


def check_untyped_storage(e, obj):
    import torch.storage

    assert obj in (torch.storage.UntypedStorage, torch.storage.TypedStorage), f"{e.id} is {obj!r}"


def check_typed_storage(e, obj):
    import torch.storage

    assert isinstance(obj, type) and issubclass(obj, torch.storage.TypedStorage), f"{e.id} is {obj!r}"
    assert "Storage" in e.name


def check_torch_size(e, obj):
    import torch

    assert obj is torch.Size and issubclass(obj, tuple)
    assert_c_type(obj, e.id)


def check_torch_device(e, obj):
    import torch

    assert obj is torch.device
    assert_c_type(obj, e.id)


def check_layout_lookup(e, obj):
    import torch

    python_function(e, obj)
    assert obj(str(torch.sparse_coo)) is torch.sparse_coo


def check_torch_constant(e, obj):
    import torch

    assert isinstance(obj, (torch.qscheme, torch.layout)), f"{e.id} is a {type(obj).__name__}"


def check_torch_dtype(e, obj):
    import torch

    assert isinstance(obj, torch.dtype), f"{e.id} is a {type(obj).__name__}"


def check_parameter(e, obj):
    import torch

    assert obj is torch.nn.Parameter
    assert canonical(obj.__new__) in current_pins()
    assert obj.__setstate__ is torch.Tensor.__setstate__, "Parameter has its own __setstate__ (the machine uses _set_obj_state)"
    assert obj.__init__ is object.__init__ or is_c_callable(obj.__init__), "Parameter.__init__ is Python code"
    assert type(obj).__call__ is type.__call__, "Parameter's metaclass has its own __call__"


def check_legacy_tensor_class(e, obj):
    import torch

    assert canonical(torch.Tensor.__setstate__) in current_pins()
    if obj is torch.Tensor:
        for n in ("__new__", "__init__"):
            assert is_c_callable(getattr(obj, n)), f"torch.Tensor.{n} is Python code"
        assert type(obj).__call__ is type.__call__
        return
    assert type(obj).__name__ == "tensortype" and is_c_callable(type(obj).__call__), f"{e.id} is {type(obj)!r}"
    storage = getattr(torch, e.name.removesuffix("Tensor") + "Storage")
    assert obj.dtype == storage.dtype, f"{e.id}: dtype {obj.dtype}, the machine assumes {storage.dtype}"
    if e.module == "torch":
        t = obj()
        assert type(t) is torch.Tensor and t.numel() == 0 and t.dtype == obj.dtype
        assert type(t).__setstate__ is torch.Tensor.__setstate__


def assert_new_ignores_args(cls, what):
    x = cls.__new__(cls, [(1, 2)])
    assert len(x) == 0, f"{what}.__new__ uses its arguments ({x!r}); the machine models NEWOBJ as an empty container"


def assert_no_setstate(cls, what):
    assert getattr(cls, "__setstate__", None) is None, f"{what} has __setstate__ ({cls.__setstate__!r})"


def check_ordered_dict(e, obj):
    import _collections

    assert obj is collections.OrderedDict is _collections.OrderedDict, "OrderedDict is not the C odict"
    for n in ("__setitem__", "update", "__init__"):
        v = own(obj, n)
        assert is_c_callable(v) and v.__objclass__ is obj, f"OrderedDict.{n} is {v!r}, not the odict C method"
    assert_new_ignores_args(obj, e.id)
    assert_no_setstate(obj, e.id)


def check_counter(e, obj):
    assert obj is collections.Counter and issubclass(obj, dict)
    assert obj.__setitem__ is dict.__setitem__, "Counter has its own __setitem__ (SETITEMS would run it)"
    assert obj.__new__ is dict.__new__
    for n in ("__init__", "update"):
        assert canonical(getattr(obj, n)) in current_pins(), f"Counter.{n} is not pinned"
    assert_new_ignores_args(obj, e.id)
    assert_no_setstate(obj, e.id)


def check_default_dict(e, obj):
    import _collections

    assert obj is collections.defaultdict is _collections.defaultdict
    assert obj.__setitem__ is dict.__setitem__ and obj.update is dict.update
    assert_c_type(obj, e.id)
    assert_new_ignores_args(obj, e.id)
    assert_no_setstate(obj, e.id)


def check_set(e, obj):
    import builtins

    assert obj is builtins.set
    assert is_c_callable(obj.add) and is_c_callable(obj.update)
    assert_c_type(obj, e.id)
    assert_new_ignores_args(obj, e.id)
    assert_no_setstate(obj, e.id)


def check_builtin_value_type(e, obj):
    import builtins

    assert obj is getattr(builtins, e.name) and not obj.__flags__ & HEAPTYPE, f"{e.id} is not the built-in type"
    assert_c_type(obj, e.id)
    assert_no_setstate(obj, e.id)
    if e.name in ("dict", "list"):  # calls.rs: NEWOBJ of dict/list is an empty container
        assert_new_ignores_args(obj, e.id)


def plain_class_shape(cls, what: str, new, data_descriptors_ok: set[str]):
    assert cls.__new__ is new, f"{what}.__new__ is {cls.__new__!r}, the machine assumes {new!r}"
    assert getattr(cls, "__setstate__", None) is None, f"{what} has __setstate__ somewhere in its MRO"
    assert getattr(cls, "__getattr__", None) is None, f"{what} has __getattr__"
    assert cls.__getattribute__ in (object.__getattribute__, str.__getattribute__), f"{what}.__getattribute__"
    assert cls.__setattr__ is object.__setattr__, f"{what}.__setattr__ is {cls.__setattr__!r}"
    assert cls.__reduce_ex__ is object.__reduce_ex__, f"{what}.__reduce_ex__"
    assert not hasattr(cls, "__getinitargs__")
    assert type(cls) is type, f"{what} has metaclass {type(cls)!r}"
    for k in cls.__mro__:
        if k in (object, str):
            continue
        for n, v in vars(k).items():
            if hasattr(type(v), "__set__") or hasattr(type(v), "__delete__"):
                assert n in data_descriptors_ok, (
                    f"{what}: {k.__qualname__}.{n} is a data descriptor: BUILD's slot state (setattr) would run it")
    for n in LOOKED_UP:
        assert getattr(cls, n, None) is None, f"{what}.{n} exists (src/pickle/lookup.rs says registered classes have none)"


def check_plain_class(e, obj):
    plain_class_shape(obj, e.id, object.__new__, {"__dict__", "__weakref__"})


def check_str_subclass(e, obj):
    assert issubclass(obj, str)
    plain_class_shape(obj, e.id, str.__new__, set())
    assert obj.__getattribute__ is str.__getattribute__
    assert "__dict__" not in dir(obj), f"{e.id} instances have a __dict__ (BUILD could write into them)"


def check_numpy_array_class(e, obj):
    import numpy

    assert issubclass(obj, numpy.ndarray), f"{e.id} is not an ndarray subclass"
    assert obj.__setstate__ is numpy.ndarray.__setstate__ and is_c_callable(obj.__setstate__)
    assert not hasattr(obj, "__array_prepare__"), (
        f"{e.id} has __array_prepare__: joblib's wrapper.read would reconstruct the recorded subclass")
    if obj is not numpy.ndarray:
        fin = obj.__array_finalize__
        assert isinstance(fin, types.FunctionType) and canonical(fin) in current_pins()
    # An array's only looked-up method is ndarray.__setstate__ (src/pickle/lookup.rs).
    for n in LOOKED_UP:
        assert n == "__setstate__" or getattr(obj, n, None) is None, f"{e.id}.{n} exists"


def check_numpy_dtype(e, obj):
    import numpy

    assert obj is numpy.dtype
    assert_c_type(obj, e.id)
    assert is_c_callable(obj.__setstate__), "numpy.dtype.__setstate__ is not C"


def check_joblib_wrapper(e, obj):
    import joblib.numpy_pickle as jnp

    assert obj is jnp.NumpyArrayWrapper, f"{e.id} is {obj!r}"
    plain_class_shape(obj, e.id, object.__new__, {"__dict__", "__weakref__"})
    methods = set(rust_str_list(JOBLIB_RS, "WRAPPER_METHODS"))
    standard = {"__module__", "__doc__", "__dict__", "__weakref__", "__qualname__", "__firstlineno__", "__static_attributes__"}
    extra = set(vars(obj)) - standard
    assert extra == methods | {"__init__", "write_array"}, (
        f"NumpyArrayWrapper's own attributes are {sorted(extra)}; the machine knows {sorted(methods)} "
        f"(WRAPPER_METHODS in {JOBLIB_RS}) plus __init__/write_array")
    for m in methods:
        assert canonical(getattr(obj, m)) in current_pins()


def check_random_state(e, obj):
    import numpy.random
    import numpy.random._pickle as rp

    python_function(e, obj)
    rs = numpy.random.RandomState
    for n in ("__setstate__", "set_state", "__reduce__"):
        assert is_cython(getattr(rs, n)), f"RandomState.{n} is not Cython ({getattr(rs, n)!r})"
    assert is_extension_module(rs.__module__)
    assert "__dict__" not in dir(rs), "RandomState instances have a __dict__: BUILD could plant a method"
    known = rust_str_list(VALUES_RS, "BIT_GENERATORS")
    assert sorted(rp.BitGenerators) == sorted(known), f"BitGenerators {sorted(rp.BitGenerators)} vs machine {known}"
    for name, bg in rp.BitGenerators.items():
        assert isinstance(bg, type) and is_extension_module(bg.__module__), f"bit generator {name} is not compiled"
    assert inspect.signature(obj).parameters.keys() <= {"bit_generator_name", "bit_generator_ctor"}


def check_partial(e, obj):
    import _functools

    assert obj is functools.partial is _functools.partial, "functools.partial is not the C partial"
    assert is_c_callable(obj.__setstate__) and is_c_callable(obj.__new__)
    assert type(obj).__call__ is type.__call__


def check_plain_value(e, obj):
    if obj.__module__ == "fractions":
        assert canonical(obj.__new__) in current_pins(), "Fraction.__new__ is not pinned"
        assert "__dict__" not in dir(obj), "Fraction instances have a __dict__"
    else:
        c_module = {"decimal": "_decimal", "datetime": "_datetime"}[e.module]
        assert obj is getattr(importlib.import_module(c_module), e.name), f"{e.id} is not the C {c_module} type"
        assert_c_type(obj, e.id)
    for n in LOOKED_UP:
        assert getattr(obj, n, None) is None, f"{e.id}.{n} exists (the machine says registered values have none)"


CHECKS = {
    **{k: check_python_function for k in (
        "rebuild_tensor", "rebuild_tensor_v2", "rebuild_tensor_v3", "rebuild_parameter",
        "rebuild_parameter_with_state", "rebuild_qtensor", "rebuild_sparse", "rebuild_meta_no_storage",
        "rebuild_nested", "rebuild_device_from_cpu", "rebuild_device_from_numpy", "rebuild_wrapper_subclass",
        "rebuild_from_type_v2", "rebuild_from_type", "load_from_bytes", "copyreg_reconstructor",
        "copyreg_newobj", "copyreg_newobj_ex")},
    "jit_identity_list": check_jit_list,
    "jit_restore_type_tag": check_jit_list,
    "numpy_reconstruct": check_numpy_reconstruct,
    "numpy_scalar": check_numpy_scalar,
    "numpy_frombuffer": check_numpy_frombuffer,
    "codecs_encode": check_codecs_encode,
    "untyped_storage": check_untyped_storage,
    "typed_storage": check_typed_storage,
    "torch_size": check_torch_size,
    "torch_device": check_torch_device,
    "torch_layout_lookup": check_layout_lookup,
    "torch_constant": check_torch_constant,
    "torch_dtype": check_torch_dtype,
    "parameter": check_parameter,
    "legacy_tensor_class": check_legacy_tensor_class,
    "ordered_dict": check_ordered_dict,
    "counter": check_counter,
    "default_dict": check_default_dict,
    "set": check_set,
    **{k: check_builtin_value_type for k in ("frozenset", "bytearray", "bytes", "complex", "slice", "builtin_type")},
    "plain_class": check_plain_class,
    "str_subclass": check_str_subclass,
    "numpy_array_class": check_numpy_array_class,
    "numpy_dtype": check_numpy_dtype,
    "joblib_array_wrapper": check_joblib_wrapper,
    "numpy_random_state": check_random_state,
    "functools_partial": check_partial,
    "plain_value": check_plain_value,
}


@pytest.mark.parametrize("e", ALLOW, ids=_ids(ALLOW))
def test_allow_kind(e):
    """What the unpickler reaches is what the machine models for the entry's kind."""
    r = plain(e)
    if not r.ok:
        if torchscript_only(e):
            pytest.skip(f"{e.id} resolves only in TorchScript's C++ unpickler (its dtype round trip is checked in test_allow_resolves)")
        pytest.skip(f"does not resolve in Python ({r.error}); test_allow_resolves judges it")
    CHECKS[e.kind](e, r.obj)


def test_registered_setstate_kinds_are_compiled():
    """The kinds whose class __setstate__ the machine models (values.rs has_setstate) keep the
    C/Cython implementation; ndarray and dtype too."""
    import numpy
    import numpy.random

    classes = {"NumpyRandomState": numpy.random.RandomState, "FunctoolsPartial": functools.partial}
    kinds = rust_has_setstate_kinds()
    assert kinds <= set(classes), f"add the class of these kinds here: {sorted(kinds - set(classes))}"
    for k in kinds:
        f = classes[k].__setstate__
        assert is_c_callable(f) or is_cython(f), f"{k}: {classes[k].__qualname__}.__setstate__ is Python ({f!r})"
    for cls in (numpy.ndarray, numpy.dtype):
        assert is_c_callable(cls.__setstate__), f"{cls.__qualname__}.__setstate__ is no longer C"


def test_registered_objects_have_no_lookup_targets():
    """src/pickle/lookup.rs: an instance of a registered class has no __setstate__ (except the
    modelled ones), extend/append/add/update or __getattr__ of its class."""
    import numpy.random

    has = {camel_to_snake(k) for k in rust_has_setstate_kinds()}
    classes = [("numpy_random_state", numpy.random.RandomState), ("functools_partial", functools.partial),
               ("builtin_type", object)]
    for e in ALLOW:
        if e.kind in ("plain_class", "joblib_array_wrapper", "plain_value", "str_subclass"):
            r = plain(e)
            if r.ok:
                classes.append((e.kind, r.obj))
    for kind, cls in classes:
        for n in LOOKED_UP:
            if n == "__setstate__" and kind in has:
                continue
            assert getattr(cls, n, None) is None, f"{cls!r} ({kind}) has {n}"


def camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_joblib_build_then_read():
    """joblib's BUILD: the pure-Python load_build, then wrapper.read(unpickler, ...)."""
    import joblib.numpy_pickle as jnp

    assert jnp.Unpickler is pickle._Unpickler
    nu = jnp.NumpyUnpickler
    assert nu.dispatch[pickle.BUILD[0]] is nu.load_build
    assert nu.find_class is pickle._Unpickler.find_class, "NumpyUnpickler overrides find_class"
    fn = ast.parse(textwrap.dedent(inspect.getsource(nu.load_build))).body[0]
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    assert ast.unparse(body[0]) == "Unpickler.load_build(self)", "load_build no longer starts with Unpickler.load_build"
    calls = [ast.unparse(n) for n in ast.walk(fn) if isinstance(n, ast.Call)]
    assert "array_wrapper.read(self, self.ensure_native_byte_order)" in calls, calls
    assert canonical(nu.load_build) in current_pins()


# ------------------------------------------------------------------------------------------------
# [tensor] attributes
# ------------------------------------------------------------------------------------------------


def test_tensor_attributes_cover_installed_torch():
    """_set_obj_state sets each key with setattr: a key naming a tensor attribute changes the
    tensor, so the list must contain every attribute of the installed torch."""
    import torch

    listed = set(REGISTRY["tensor"]["attributes"])
    installed = set(dir(torch.nn.Parameter)) | set(dir(torch.Tensor)) | set(dir(torch.nn.Parameter(torch.zeros(1))))
    missing = sorted(installed - listed)
    assert not missing, (f"torch {torch.__version__} has tensor attributes the registry does not list: {missing}; "
                         "add them to [tensor] attributes in src/policy/registry.toml")


# ------------------------------------------------------------------------------------------------
# [[construct]]
# ------------------------------------------------------------------------------------------------

# How each construct module is checked. ("import", why): imported from this venv. ("wheel",
# distribution, version, file, sha256, why): read with ast from that exact wheel, never imported.
CONSTRUCT_SOURCES = {
    "morfessor.baseline": ("import", "morfessor (tests/registry/requirements.txt)"),
    "pycrfsuite._logparser": ("import", "python-crfsuite (tests/registry/requirements.txt)"),
    "sklearn.tree._tree": ("import", "scikit-learn (tests/oracle/requirements.txt)"),
    "pyannote.audio.core.task": (
        "wheel", "pyannote.audio", "4.0.7", "pyannote_audio-4.0.7-py3-none-any.whl",
        "852ea15c4d85bc34773e618267603ffca6a521669a74d33742692cc67fc700d6",
        "the real file comes from whisperx 3.8.6 (tests/fixtures/pypi_models.py), which requires "
        "pyannote-audio>=4.0.0; 4.0.7 is what it installs; pyannote.audio needs torch~=2.8 stacks "
        "(torchaudio, torchcodec) that do not install beside torch 2.15"),
    "chemprop.nn.metrics": (
        "wheel", "chemprop", "2.3.1", "chemprop-2.3.1-py3-none-any.whl",
        "ee4fa72d1d3c65ebf29853b6eb470a0a7ce607946304b19ca7e1913a6330e8b9",
        "the real files come from admet-ai 2.0.1 (tests/fixtures/pypi_models.py), which requires "
        "chemprop>=2.2.2; 2.3.1 is what it installs; chemprop needs rdkit, lightning and more; its "
        "torchmetrics bases are imported from this venv (tests/registry/requirements.txt)"),
}


def wheel_source(module: str) -> tuple[str, str]:
    """(source text of `module`, path inside the wheel), from the pinned wheel."""
    _, dist, version, fname, sha, _ = CONSTRUCT_SOURCES[module]
    path = os.path.join(WHEEL_CACHE, fname)
    if not os.path.exists(path) or hashlib.sha256(open(path, "rb").read()).hexdigest() != sha:
        os.makedirs(WHEEL_CACHE, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "-d", WHEEL_CACHE, f"{dist}=={version}"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0 and os.path.exists(path), f"pip download {dist}=={version} failed: {p.stderr[-2000:]}"
    data = open(path, "rb").read()
    assert hashlib.sha256(data).hexdigest() == sha, f"{fname} does not have the pinned sha256 {sha}"
    z = zipfile.ZipFile(io.BytesIO(data))
    base = module.replace(".", "/")
    for member in (base + ".py", base + "/__init__.py"):
        if member in z.namelist():
            return z.read(member).decode("utf-8"), member
    raise AssertionError(f"{module} is not in {fname}")


def _class_defs(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def _imports(tree: ast.Module) -> dict[str, str]:
    """Top-level names bound by imports -> what they name."""
    out = {}
    for n in tree.body:
        if isinstance(n, ast.Import):
            for a in n.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(n, ast.ImportFrom) and n.level == 0:
            for a in n.names:
                out[a.asname or a.name] = f"{n.module}.{a.name}"
    return out


def _functions(cls: ast.ClassDef) -> set[str]:
    return {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def construct_namedtuple(module, name, _reason):
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type) and cls.__mro__ == (cls, tuple, object), f"{module}.{name} is not a direct tuple subclass"
    fields = cls._fields
    new = vars(cls)["__new__"]
    new = new.__func__ if isinstance(new, staticmethod) else new
    ref = collections.namedtuple(name, fields, defaults=list(cls._field_defaults.values()) or None)
    rnew = vars(ref)["__new__"]
    rnew = rnew.__func__ if isinstance(rnew, staticmethod) else rnew
    for attr in ("co_code", "co_names", "co_varnames", "co_consts"):
        assert getattr(new.__code__, attr) == getattr(rnew.__code__, attr), f"{name}.__new__ is not namedtuple's ({attr})"
    assert new.__globals__.get("_tuple_new") is tuple.__new__ and new.__globals__.get("__builtins__") == {}
    assert new.__defaults__ == rnew.__defaults__
    assert cls.__init__ is object.__init__, f"{name} defines __init__"
    for n in ("__setstate__", "__getattr__", "__getinitargs__"):
        assert getattr(cls, n, None) is None, f"{name}.{n}"
    assert cls(*range(len(fields))) == tuple(range(len(fields)))


def construct_enum(module, name, _reason):
    src, member = wheel_source(module)
    tree = ast.parse(src)
    cls = _class_defs(tree).get(name)
    assert cls is not None, f"no class {name} in {member}"
    assert _imports(tree).get("Enum") == "enum.Enum", f"{member}: `Enum` is not enum.Enum"
    assert [ast.unparse(b) for b in cls.bases] == ["Enum"] and not cls.keywords, f"{name}: bases {ast.unparse(cls)[:200]}"
    assert not cls.decorator_list, f"{name} is decorated"
    members = {}
    for stmt in cls.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # docstring
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name), (
            f"{name}: `{ast.unparse(stmt)[:120]}` is more than a member (a method, _missing_, __new__, ...)")
        target = stmt.targets[0].id
        assert not target.startswith("_"), f"{name}.{target}: an enum hook"
        assert isinstance(stmt.value, ast.Constant) and type(stmt.value.value) in (int, str), ast.unparse(stmt)
        members[target] = stmt.value.value
    # The same class made with the installed enum: Cls(value) is EnumType.__call__, a member
    # lookup through Enum.__new__, then the default _missing_.
    probe = enum.Enum(name, members)
    assert type(probe).__call__ is enum.EnumType.__call__ and probe.__new__ is enum.Enum.__new__
    assert probe._missing_.__func__ is enum.Enum._missing_.__func__
    for k, v in members.items():
        assert probe(v) is probe[k]
    with pytest.raises(ValueError):
        probe(object())
    for f in (enum.EnumType.__call__, enum.Enum.__new__, enum.Enum._missing_.__func__):
        assert canonical(f) in current_pins()


def construct_new_ignores_args(module, name, _reason):
    """Through the class chain in the wheel (ast) and the installed bases it names: no class
    defines __new__ (so NEWOBJ is object.__new__), and __init__ is overridden (so object.__new__
    ignores the arguments)."""
    src, member = wheel_source(module)
    tree = ast.parse(src)
    defs, imports = _class_defs(tree), _imports(tree)
    external, inits, seen = [], [], set()

    def walk(cname: str):
        if cname in seen:
            return
        seen.add(cname)
        c = defs[cname]
        assert not c.keywords, f"{cname} sets a metaclass: {ast.unparse(c)[:160]}"
        fns = _functions(c)
        assert "__new__" not in fns, f"{member}: {cname} defines __new__"
        if "__init__" in fns:
            inits.append(cname)
        for b in c.bases:
            text = ast.unparse(b)
            if isinstance(b, ast.Name) and b.id in defs:
                walk(b.id)
            else:
                head = text.split(".")[0]
                assert head in imports, f"{cname}: base {text} is neither in {member} nor imported"
                external.append(imports[head] + text[len(head):])

    assert name in defs, f"no class {name} in {member}"
    walk(name)
    for path in external:
        base = dotted(path)
        assert isinstance(base, type), path
        news = [k.__qualname__ for k in base.__mro__ if k is not object and "__new__" in vars(k)]
        assert not news, f"{name}: installed base {path} has __new__ in {news}"
        if base.__init__ is not object.__init__:
            inits.append(path)
        # CPython's rule, with this base: object.__new__ ignores arguments when __init__ is
        # overridden and __new__ is not.
        probe = type("Probe", (base,), {"__init__": lambda self, *a, **k: None})
        probe.__abstractmethods__ = frozenset()
        assert probe.__new__ is object.__new__
        assert isinstance(probe.__new__(probe, "B", "i", "n"), probe)
    assert inits, f"{name}: no class in the chain overrides __init__, so object.__new__ would refuse arguments"


def construct_constructor(module, name, _reason):
    import numpy

    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type) and cls.__mro__ == (cls, object) and type(cls) is type
    assert is_extension_module(module), f"{module} is not a compiled extension"
    assert is_c_callable(cls.__new__) and is_c_callable(cls.__init__), "Tree's constructor is Python code"
    assert is_cython(cls.__setstate__) and is_cython(cls.__reduce__), "Tree's restore methods are not Cython"
    for n in ("__getattr__", "__getinitargs__"):
        assert getattr(cls, n, None) is None, f"{name}.{n}"
    assert "__dict__" not in dir(cls), f"{name} instances have a __dict__"
    # __cinit__ checks its argument types.
    t = cls(2, numpy.array([2], dtype=numpy.intp), 1)
    assert t.n_features == 2 and t.n_outputs == 1
    with pytest.raises(TypeError):
        cls("2", numpy.array([2], dtype=numpy.intp), 1)
    with pytest.raises(TypeError):
        cls(2, [2], 1)
    # __setstate__ validates the node array's dtype before copying it.
    bad = {"max_depth": 1, "node_count": 1, "nodes": numpy.zeros(1, dtype=[("a", "f8")]), "values": numpy.zeros((1, 1, 2))}
    with pytest.raises(ValueError, match="incompatible dtype"):
        cls(2, numpy.array([2], dtype=numpy.intp), 1).__setstate__(bad)


CONSTRUCT_CHECKS = {
    "namedtuple": construct_namedtuple,
    "enum": construct_enum,
    "new_ignores_args": construct_new_ignores_args,
    "constructor": construct_constructor,
}


@pytest.mark.parametrize("module,name,kind,reason", CONSTRUCT, ids=_ids(CONSTRUCT))
def test_construct(module, name, kind, reason):
    """The [[construct]] class is built by the code the kind names (see CONSTRUCT_SOURCES for
    whether it is imported or read from its wheel)."""
    how = CONSTRUCT_SOURCES[module]
    if how[0] == "import":
        try:
            importlib.import_module(module)
        except ImportError as err:
            pytest.fail(f"{module} does not import ({err}): install tests/registry/requirements.txt ({how[1]})")
    CONSTRUCT_CHECKS[kind](module, name, reason)


# ------------------------------------------------------------------------------------------------
# [dangerous] globals
# ------------------------------------------------------------------------------------------------


def _calls(func) -> list[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    return [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _fileresource(cls):
    setstate, ensure = _calls(cls.__setstate__), _calls(cls.ensure_name)
    assert "self.ensure_name()" in setstate and any(c.startswith("open(self.name, 'wb')") for c in setstate), setstate
    assert any(c.startswith("f.write(") for c in setstate), setstate
    assert "tempfile.mkstemp(self.suffix, self.prefix)" in ensure, ensure


def _ndarraywrapper(cls):
    calls = _calls(cls.read)
    src = textwrap.dedent(inspect.getsource(cls.read))
    assert "os.path.join(unpickler._dirname, self.filename)" in calls, calls
    assert any(c.startswith("unpickler.np.load(filename") for c in calls), calls
    assert re.search(r"kwargs\[['\"]allow_pickle['\"]\]\s*=\s*True", src), "read no longer sets allow_pickle=True"


def _zndarraywrapper(cls):
    calls = _calls(cls.read)
    assert "os.path.join(unpickler._dirname, self.filename)" in calls, calls
    assert "open(filename, 'rb')" in calls, calls


def _routed_by_joblib(cls):
    import joblib.numpy_pickle as jnp

    assert cls.__name__ in inspect.getsource(jnp.NumpyUnpickler.load_build), "load_build no longer reads it"


def _classes_getattr(cls):
    # any name, __setstate__ included, is answered with a fresh _ClassNamespace
    assert "__getattr__" in cls.__dict__
    assert "_ClassNamespace(name)" in _calls(cls.__getattr__), _calls(cls.__getattr__)


def _finalizer(cls):
    # a __del__ of its own (not object's): it runs when the restored instance is freed
    assert isinstance(cls, type) and any("__del__" in k.__dict__ for k in cls.__mro__ if k is not object), cls


def _pybind11(cls):
    # cls.__new__(cls) is pybind11's allocator: no C++ object until __init__ runs
    assert isinstance(cls, type) and any(k.__module__ == "pybind11_builtins" for k in cls.__mro__), cls.__mro__


DANGEROUS_BEHAVIOUR = {
    **{f"{m}.{n}": (m.split(".")[0], [_finalizer])
       for m, n, why in DANGEROUS_GLOBALS if why == REGISTRY["dangerous"]["finalizers"]["why"]},
    **{f"{m}.{n}": (m.split(".")[0], [_pybind11])
       for m, n, why in DANGEROUS_GLOBALS if why == REGISTRY["dangerous"]["native"]["why"]},
    "sklearn_crfsuite._fileresource.FileResource": ("sklearn-crfsuite", [_fileresource]),
    "joblib.numpy_pickle_compat.NDArrayWrapper": ("joblib", [_ndarraywrapper, _routed_by_joblib]),
    "joblib.numpy_pickle_compat.ZNDArrayWrapper": ("joblib", [_zndarraywrapper]),
    "torch._classes._Classes": ("torch", [_classes_getattr]),
}


@pytest.mark.parametrize("module,name,why", DANGEROUS_GLOBALS, ids=_ids(DANGEROUS_GLOBALS))
def test_dangerous_global(module, name, why):
    """The dangerous global resolves, and does what the registry says it does."""
    dist, checks = DANGEROUS_BEHAVIOUR[f"{module}.{name}"]
    top = module.split(".")[0]
    if importlib.util.find_spec(top) is None:
        pytest.skip(f"{dist} is not installed")
    r = _find(CUnpickler, module, name)
    assert r.ok, f"{module}.{name} does not resolve: {r}"
    for check in checks:
        check(r.obj)
