"""Seeded generator of candidate files.

Candidates are composed from a vocabulary:
  * the registry (src/policy/registry.toml): the names the machine models, used with the
    argument shapes it expects and with others;
  * callables and classes of the standard library, torch, numpy, joblib and scikit-learn
    found by INTROSPECTING the installed packages inside the sandbox (worker.py handle_vocab):
    functions, classes, enum classes and dataclasses, chosen at random, not hand-picked;
  * opcodes: GLOBAL/STACK_GLOBAL, REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ, BUILD, APPEND(S),
    SETITEM(S), ADDITEMS, memo, PERSID at protocols 0-5;
  * structural tricks (each template below names the counterexample class it probes).

A candidate is (main ops, container); the container wraps the encoded ops into the file its
loader expects (plain pickle, torch zip with the ops as data.pkl, legacy torch stream, joblib).
Everything is a pure function of (seed, index): `make(seed, i, vocab)` is reproducible.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import struct
import zipfile
from dataclasses import dataclass, field

import pk

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# --------------------------------------------------------------------------------------------
# containers
# --------------------------------------------------------------------------------------------

STORAGES = {  # key -> (storage class, numel, bytes)
    "0": ("FloatStorage", 6, struct.pack("<6f", 0.5, 1.5, 2.5, 3.5, 4.5, 5.5)),
    "1": ("FloatStorage", 4, struct.pack("<4f", -1.0, -2.0, -3.0, -4.0)),
    "2": ("LongStorage", 3, struct.pack("<3q", 7, 8, 9)),
}


def torch_zip(pkl: bytes, root: str = "archive") -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo(f"{root}/data.pkl", (1980, 1, 1, 0, 0, 0)), pkl)
        z.writestr(zipfile.ZipInfo(f"{root}/byteorder", (1980, 1, 1, 0, 0, 0)), "little")
        for k, (_, _, data) in STORAGES.items():
            z.writestr(zipfile.ZipInfo(f"{root}/data/{k}", (1980, 1, 1, 0, 0, 0)), data)
        z.writestr(zipfile.ZipInfo(f"{root}/version", (1980, 1, 1, 0, 0, 0)), "3\n")
    return b.getvalue()


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _storage_keys_used(pkl: bytes):
    """The storage keys the pickle's persistent ids name (the string after a *Storage global):
    the legacy loader wants exactly those listed after the main pickle."""
    try:
        ops = pk.decode(pkl)
    except Exception:  # noqa: BLE001
        return set(STORAGES)
    used = set()
    strs = ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "SHORT_BINSTRING", "BINSTRING", "STRING")
    for i, (name, arg) in enumerate(ops):
        is_storage = (name == "GLOBAL" and str(arg[1]).endswith("Storage")) or (
            name == "STACK_GLOBAL" and i and str(ops[i - 1][1]).endswith("Storage"))
        if is_storage:
            for n2, a2 in ops[i + 1:i + 4]:
                if n2 in strs and a2 in STORAGES:
                    used.add(a2)
                    break
    return used


def legacy_stream(pkl: bytes) -> bytes:
    """torch < 1.6: magic, protocol version, sys_info, the main pickle, storage keys, storages."""
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    out = pickle.dumps(LEGACY_MAGIC, 2) + pickle.dumps(1001, 2) + pickle.dumps(sys_info, 2) + pkl
    keys = sorted(_storage_keys_used(pkl))
    out += pickle.dumps(keys, 2)
    for k in keys:
        _, numel, data = STORAGES[k]
        out += struct.pack("<q", numel) + data
    return out


def npy_object(pkl: bytes) -> bytes:
    """An .npy file of an object array: numpy.load(allow_pickle=True) unpickles what follows."""
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    pad = 64 - (10 + len(header) + 1) % 64
    h = (header + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + pkl


def rezip(base: str, pkl: bytes) -> bytes:
    """A real checkpoint (tests/fixtures/models) with its data.pkl replaced, members in order."""
    out = io.BytesIO()
    with zipfile.ZipFile(os.path.join(REPO, base)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for info in zin.infolist():
            data = pkl if info.filename.endswith("/data.pkl") else zin.read(info.filename)
            z.writestr(zipfile.ZipInfo(info.filename, (1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def wrap(container: str, ops, base: str = "") -> bytes:
    data = pk.encode(ops)
    if container in ("pickle", "joblib") or (ops and ops[0][0] == "RAW" and container in RAW_CONTAINERS):
        return data
    if container == "npy":
        return npy_object(data)
    if container == "torchzip" and base:
        return rezip(base, data)
    if container == "torchzip":
        return torch_zip(data)
    if container == "legacy":
        return legacy_stream(data)
    raise ValueError(container)


EXT = {"pickle": ".pkl", "joblib": ".joblib", "torchzip": ".pt", "legacy": ".pt", "npy": ".npy", "npz": ".npz",
       "tar": ".pt"}
# containers whose RAW candidates (tests/oracle/containers.py) are the whole file already
RAW_CONTAINERS = ("torchzip", "legacy", "npy", "npz", "tar")

# The loaders that run each container. The *_trace loaders are the same loads with the
# pure-Python unpickler (for the call trace); PRIMARY is the loader Property 2 compares with.
LOADERS = {
    "pickle": ["pickle", "pickle_py", "joblib", "torch", "torch_trace", "torch_wo"],
    "joblib": ["joblib", "pickle", "pickle_py"],
    "torchzip": ["torch", "torch_trace", "torch_wo"],
    "legacy": ["torch", "torch_trace", "torch_wo"],
    "npy": ["numpy", "numpy_trace"],
    "npz": ["numpy", "numpy_trace"],
    "tar": ["torch", "torch_trace", "torch_wo"],
}
PRIMARY = {"pickle": "pickle", "joblib": "joblib", "torchzip": "torch", "legacy": "torch", "npy": "numpy",
           "npz": "numpy", "tar": "torch"}


@dataclass
class Candidate:
    name: str
    cls: str  # the class of counterexample the template probes
    template: str
    container: str
    ops: list
    proto: int
    note: str = ""
    extra_loaders: list = field(default_factory=list)
    base: str = ""  # a real checkpoint whose data.pkl the ops replace
    loader_set: list = field(default_factory=list)  # replaces LOADERS[container] when given

    def data(self) -> bytes:
        return wrap(self.container, self.ops, self.base)

    @property
    def loaders(self):
        own = self.loader_set or LOADERS[self.container]
        return own + [x for x in self.extra_loaders if x not in own]

    @property
    def primary(self):
        return PRIMARY[self.container]


# --------------------------------------------------------------------------------------------
# vocabulary
# --------------------------------------------------------------------------------------------

# Modules whose names modelguard's current policy treats by prefix or as data classes: the
# generator draws from them more often (the names themselves are still introspected).
FOCUS_PREFIXES = ("torch.nn.", "torch.optim.", "torch.ao.nn.", "torch.nn.utils.", "argparse", "pathlib",
                  "datetime", "decimal", "fractions", "uuid", "enum", "collections", "omegaconf",
                  "torch.", "numpy.", "joblib.", "sklearn.", "copyreg", "builtins", "_codecs")


def stable_choice(rng, seq):
    """One random() whatever len(seq) is: an edit of the registry changes which name is drawn,
    not the rest of the candidate (rng.choice's rejection sampling would shift the stream)."""
    return seq[min(int(rng.random() * len(seq)), len(seq) - 1)]


class Vocab:
    def __init__(self, entries: list, registry):
        self.registry = registry
        self.functions = [e for e in entries if e["kind"] == "function"]
        self.classes = [e for e in entries if e["kind"] in ("class", "enum", "dataclass")]
        self.enums = [e for e in entries if e["kind"] == "enum"]
        self.dataclasses = [e for e in entries if e["kind"] == "dataclass"]
        self.dict_classes = [e for e in self.classes if e.get("has_dict") and not e.get("setstate")
                             and e.get("new") in ("builtins.object",)]
        self.focus_functions = [e for e in self.functions if e["module"].startswith(FOCUS_PREFIXES)]
        self.focus_classes = [e for e in self.classes if e["module"].startswith(FOCUS_PREFIXES)]
        self.container_classes = [e for e in self.classes if e.get("container")]

    def function(self, rng):
        pool = self.focus_functions if rng.random() < 0.6 and self.focus_functions else self.functions
        return rng.choice(pool)

    def klass(self, rng):
        pool = self.focus_classes if rng.random() < 0.6 and self.focus_classes else self.classes
        return rng.choice(pool)

    def dict_class(self, rng):
        r = rng.random()
        if r < 0.3:
            return {"module": "argparse", "name": "Namespace"}
        if r < 0.4:
            return {"module": "joblib.numpy_pickle", "name": "NumpyArrayWrapper"}
        if r < 0.5:
            return {"module": "collections", "name": "OrderedDict", "reduce": True}
        return rng.choice(self.dict_classes) if self.dict_classes else {"module": "argparse", "name": "Namespace"}

    def callable_any(self, rng):
        """A callable to plant or call: introspected functions/classes, or a registry name."""
        r = rng.random()
        if r < 0.15:
            m, n = stable_choice(rng, self.registry.names())
            return {"module": m, "name": n}
        if r < 0.6:
            return self.function(rng)
        return self.klass(rng)


# --------------------------------------------------------------------------------------------
# random simple arguments
# --------------------------------------------------------------------------------------------

WORDS = ["a", "x", "weight", "data", "__setstate__", "extend", "add", "read", "system", "latin1",
         "ascii", "utf-8", "0", "cpu", "storage", "utf8", "w", "wb", "r", "1", "-", ".", "..", ""]


def rand_path(rng):
    return rng.choice(["/tmp/w/p", "/tmp/w/p.txt", "/tmp/oracle-probe", "/tmp", ".", "p", "/tmp/w/dir/x",
                       "/usr/bin/true", "/etc/ld.so.cache"])


def rand_simple(rng, depth=0):
    r = rng.random()
    if r < 0.22:
        return rng.choice([0, 1, 2, -1, 3, 8, 255, 2 ** 31 + 1, 10 ** 6])
    if r < 0.44:
        return rng.choice(WORDS)
    if r < 0.54:
        return rand_path(rng)
    if r < 0.62:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 8)))
    if r < 0.67:
        return rng.choice([0.0, 1.5, -2.25])
    if r < 0.72:
        return None
    if r < 0.77:
        return rng.choice([True, False])
    if depth < 2 and r < 0.85:
        return tuple(rand_simple(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    if depth < 2 and r < 0.92:
        return [rand_simple(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 2:
        return {rng.choice(WORDS): rand_simple(rng, depth + 1) for _ in range(rng.randint(0, 2))}
    return rng.choice(WORDS)


def rand_args(rng, entry):
    req = entry.get("required")
    if req is not None and rng.random() < 0.7:
        n = len(req)
    else:
        n = rng.randint(0, 3)
    return tuple(rand_simple(rng) for _ in range(min(n, 5)))


# --------------------------------------------------------------------------------------------
# emit helpers
# --------------------------------------------------------------------------------------------


CONTAINER = ["torchzip"]  # the container being generated (persistent ids differ in legacy files)


def emit_tensor(e: pk.Emitter, key="0", shape=(2, 3), stride=(3, 1), offset=0, v3=False):
    """torch._utils._rebuild_tensor_v2(persid storage, offset, size, stride, False, OrderedDict())."""
    cls, numel, _ = STORAGES[key]
    e.glob("torch._utils", "_rebuild_tensor_v2")
    e.mark()
    # persistent id ('storage', torch.<X>Storage, key, 'cpu', numel); the legacy format adds
    # a view_metadata (None)
    e.mark()
    e.lit("storage")
    e.glob("torch", cls)
    e.lit(key)
    e.lit("cpu")
    e.lit(numel)
    if CONTAINER[0] == "legacy":
        e.lit(None)
    e.op("TUPLE")
    e.op("BINPERSID" if e.proto >= 1 else "BINPERSID")
    e.lit(offset)
    e.lit(tuple(shape))
    e.lit(tuple(stride))
    e.lit(False)
    emit_reduce_noargs(e, "collections", "OrderedDict")
    e.op("TUPLE")
    e.op("REDUCE")


def emit_reduce_noargs(e, m, n):
    e.glob(m, n)
    e.tuple_of([])
    e.op("REDUCE")


def emit_instance(e: pk.Emitter, rng, cls_entry, how=None):
    """An instance made WITHOUT arguments, the way the protocol writes it (or a chosen way)."""
    m, n = cls_entry["module"], cls_entry["name"]
    if cls_entry.get("reduce"):
        emit_reduce_noargs(e, m, n)
        return "reduce()"
    if how is None:
        opts = ["reconstructor", "inst", "obj"]
        if e.proto >= 2:
            opts += ["newobj", "newobj", "newobj"]
        if e.proto >= 4:
            opts += ["newobj_ex"]
        how = rng.choice(opts)
    if how == "newobj":
        e.glob(m, n)
        e.tuple_of([])
        e.op("NEWOBJ")
    elif how == "newobj_ex":
        e.glob(m, n)
        e.tuple_of([])
        e.dict_of([])
        e.op("NEWOBJ_EX")
    elif how == "inst":
        e.mark()
        e.op("INST", (m, n))
    elif how == "obj":
        e.mark()
        e.glob(m, n)
        e.op("OBJ")
    else:  # copyreg._reconstructor(cls, object, None): what protocols 0/1 write
        e.glob("copyreg", "_reconstructor")
        e.tuple_of([lambda: e.glob(m, n), lambda: e.glob("builtins", "object"), lambda: e.lit(None)])
        e.op("REDUCE")
    return how


def emit_global_entry(e, entry):
    e.glob(entry["module"], entry["name"])


# --------------------------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------------------------


def t_random_call(rng, vocab, proto):
    """A callable chosen by introspection called with simple arguments (REDUCE/NEWOBJ/INST/OBJ)."""
    e = pk.Emitter(proto, rng)
    entry = vocab.callable_any(rng) if rng.random() < 0.5 else (vocab.function(rng) if rng.random() < 0.5 else vocab.klass(rng))
    args = rand_args(rng, entry)
    hows = ["reduce", "reduce", "inst", "obj"] + (["newobj"] if proto >= 2 else []) + (["newobj_ex"] if proto >= 4 else [])
    how = rng.choice(hows)
    wrapper = rng.random() < 0.5
    if wrapper:
        e.op("EMPTY_DICT" if proto >= 1 else "MARK")
        if proto == 0:
            e.op("DICT")
        e.lit("model")
    if how == "reduce":
        emit_global_entry(e, entry)
        e.lit(args)
        e.op("REDUCE")
    elif how == "inst":
        e.mark()
        for a in args:
            e.lit(a)
        e.op("INST", (entry["module"], entry["name"]))
    elif how == "obj":
        e.mark()
        emit_global_entry(e, entry)
        for a in args:
            e.lit(a)
        e.op("OBJ")
    elif how == "newobj":
        emit_global_entry(e, entry)
        e.lit(args)
        e.op("NEWOBJ")
    else:
        emit_global_entry(e, entry)
        e.lit(args)
        e.lit({} if rng.random() < 0.5 else {"x": rand_simple(rng)})
        e.op("NEWOBJ_EX")
    if rng.random() < 0.3:
        e.lit(rand_simple(rng) if rng.random() < 0.5 else {rng.choice(WORDS): rand_simple(rng)})
        e.op("BUILD")
    if wrapper:
        e.op("SETITEM")
    cls = "module-prefix-trust" if entry["module"].startswith(("torch.nn.", "torch.optim.", "torch.ao.nn.", "argparse", "pathlib", "datetime", "decimal", "fractions", "uuid", "enum", "collections")) else "unknown"
    return e.stop(), cls, f"{how} {entry['module']}.{entry['name']}{args!r}"[:200]


def t_planted_setstate(rng, vocab, proto):
    """BUILD twice: the first plants `__setstate__` in the instance dict, the second calls it."""
    e = pk.Emitter(proto, rng)
    c = vocab.dict_class(rng)
    how = emit_instance(e, rng, c)
    target = vocab.callable_any(rng)
    # first BUILD: dict state (or slot state) that plants __setstate__
    slot = rng.random() < 0.3
    if slot:
        e.tuple_of([lambda: e.lit(None), lambda: e.dict_of([(lambda: e.lit("__setstate__"), lambda: emit_global_entry(e, target))])])
    else:
        e.dict_of([(lambda: e.lit("__setstate__"), lambda: emit_global_entry(e, target))])
    e.op("BUILD")
    arg = rand_simple(rng)
    e.lit(arg)
    e.op("BUILD")
    return e.stop(), "planted-setstate", f"{c['module']}.{c['name']} via {how}; __setstate__={target['module']}.{target['name']}({arg!r})"


def t_appends_lookup(rng, vocab, proto):
    """APPEND/APPENDS/ADDITEMS on a non-list: the instance's planted extend/append/add, or the class's own."""
    e = pk.Emitter(proto, rng)
    plant = rng.random() < 0.7
    if plant:
        c = vocab.dict_class(rng)
    else:
        c = rng.choice(vocab.container_classes) if vocab.container_classes else vocab.dict_class(rng)
    how = emit_instance(e, rng, c)
    opts = ["APPENDS", "APPEND"] + (["ADDITEMS"] if proto >= 4 else [])
    op = rng.choice(opts)
    meth = {"APPENDS": rng.choice(["extend", "append"]), "APPEND": "append", "ADDITEMS": "add"}[op]
    target = vocab.callable_any(rng)
    if plant:
        e.dict_of([(lambda: e.lit(meth), lambda: emit_global_entry(e, target))])
        e.op("BUILD")
    items = [rand_simple(rng) for _ in range(rng.randint(1, 2))]
    if op == "APPEND":
        e.lit(items[0])
        e.op("APPEND")
    else:
        e.mark()
        for x in items:
            e.lit(x)
        e.op(op)
    what = f"{target['module']}.{target['name']}" if plant else "(class's own)"
    return e.stop(), "appends-lookup", f"{op} on {c['module']}.{c['name']} via {how}; {meth}={what}"


def t_slot_state(rng, vocab, proto):
    """BUILD with (dict, slotstate): setattr per key, dunder keys included."""
    e = pk.Emitter(proto, rng)
    c = vocab.dict_class(rng) if rng.random() < 0.6 else vocab.klass(rng)
    how = emit_instance(e, rng, c)
    key = rng.choice(["__class__", "__dict__", "__setstate__", "__getattr__", "__reduce_ex__", "data",
                      "__module__", "extend", "__len__", rng.choice(WORDS)])
    r = rng.random()
    if r < 0.4:
        val = lambda: emit_global_entry(e, vocab.klass(rng))
    elif r < 0.7:
        val = lambda: emit_global_entry(e, vocab.callable_any(rng))
    else:
        v = rand_simple(rng)
        val = lambda: e.lit(v)
    e.tuple_of([lambda: e.lit(None) if rng.random() < 0.5 else e.dict_of([]),
                lambda: e.dict_of([(lambda: e.lit(key), val)])])
    e.op("BUILD")
    if rng.random() < 0.5:
        a = rand_simple(rng)
        e.lit(a)
        e.op("BUILD")
    return e.stop(), "slot-state", f"{c['module']}.{c['name']} via {how}; slot {key}"


def t_reconstructor(rng, vocab, proto):
    """copyreg._reconstructor(cls, base, state) (protocols 0/1) vs NEWOBJ (2+), with any base."""
    e = pk.Emitter(proto, rng)
    c = vocab.klass(rng) if rng.random() < 0.5 else vocab.dict_class(rng)
    base_r = rng.random()
    if base_r < 0.4:
        base = {"module": "builtins", "name": "object"}
    elif base_r < 0.6:
        base = {"module": "builtins", "name": rng.choice(["dict", "list", "set", "int", "str", "tuple", "bytes"])}
    else:
        base = vocab.klass(rng)
    state = None if rng.random() < 0.5 else rand_simple(rng)
    e.glob("copyreg", "_reconstructor")
    e.tuple_of([lambda: emit_global_entry(e, c), lambda: emit_global_entry(e, base), lambda: e.lit(state)])
    e.op("REDUCE")
    if rng.random() < 0.4:
        e.lit({rng.choice(WORDS): rand_simple(rng)})
        e.op("BUILD")
    return e.stop(), "protocol-dependence", f"_reconstructor({c['module']}.{c['name']}, {base['module']}.{base['name']}, {state!r})"


def t_copyreg_newobj(rng, vocab, proto):
    e = pk.Emitter(proto, rng)
    c = vocab.klass(rng)
    args = rand_args(rng, c) if rng.random() < 0.5 else ()
    e.glob("copyreg", rng.choice(["__newobj__", "__newobj_ex__"]))
    if rng.random() < 0.5:
        e.tuple_of([lambda: emit_global_entry(e, c)] + [lambda a=a: e.lit(a) for a in args])
    else:
        e.tuple_of([lambda: emit_global_entry(e, c), lambda: e.lit(args), lambda: e.lit({})])
    e.op("REDUCE")
    return e.stop(), "protocol-dependence", f"copyreg newobj {c['module']}.{c['name']}{args!r}"


def t_rebuild_from_type(rng, vocab, proto):
    """_rebuild_from_type_v2(func, new_type, args, state) in a torch zip: state setattr per key."""
    e = pk.Emitter(proto, rng)
    e.op("EMPTY_DICT" if proto >= 1 else "MARK")
    if proto == 0:
        e.op("DICT")
    e.lit("w")
    e.glob("torch._tensor", "_rebuild_from_type_v2")
    r = rng.random()
    fname = "_rebuild_tensor_v2"
    if r < 0.7:
        func = lambda: e.glob("torch._utils", "_rebuild_tensor_v2")
        # the storage persistent id of emit_tensor (a legacy stream's has a 6th item)
        inner = [lambda: (e.mark(), e.lit("storage"), e.glob("torch", "FloatStorage"), e.lit("0"), e.lit("cpu"),
                          e.lit(6), CONTAINER[0] == "legacy" and e.lit(None), e.op("TUPLE"), e.op("BINPERSID")),
                 lambda: e.lit(0), lambda: e.lit((2, 3)), lambda: e.lit((3, 1)), lambda: e.lit(False),
                 lambda: emit_reduce_noargs(e, "collections", "OrderedDict")]
    else:
        f = vocab.callable_any(rng)
        fname = f"{f['module']}.{f['name']}"
        func = lambda: emit_global_entry(e, f)
        a = rand_args(rng, f)
        inner = [lambda x=x: e.lit(x) for x in a]
    nt = rng.choice([("torch", "Tensor"), ("torch.nn.parameter", "Parameter"), None])
    if nt is None:
        k = vocab.klass(rng)
        nt = (k["module"], k["name"])
    skey = rng.choice(["data", "requires_grad", "__class__", "grad", "_backward_hooks", "__dict__", rng.choice(WORDS)])
    sv = rng.random()
    if skey == "data" or sv < 0.4:
        sval = lambda: emit_tensor(e, key="1", shape=(2, 2), stride=(2, 1))
    elif sv < 0.7:
        v = rand_simple(rng)
        sval = lambda: e.lit(v)
    else:
        g = vocab.callable_any(rng)
        sval = lambda: emit_global_entry(e, g)
    e.tuple_of([func, lambda: e.glob(*nt), lambda: e.tuple_of(inner),
                lambda: e.dict_of([(lambda: e.lit(skey), sval)])])
    e.op("REDUCE")
    e.op("SETITEM")
    return e.stop(), "tensor-state", f"_rebuild_from_type_v2({fname}, {nt[0]}.{nt[1]}, state {skey})"


def t_parameter_with_state(rng, vocab, proto):
    e = pk.Emitter(proto, rng)
    e.op("EMPTY_DICT" if proto >= 1 else "MARK")
    if proto == 0:
        e.op("DICT")
    e.lit("p")
    e.glob("torch._utils", "_rebuild_parameter_with_state")
    skey = rng.choice(["data", "requires_grad", "__class__", "grad", "_cdata", rng.choice(WORDS)])
    sv = rng.random()
    if skey in ("data", "grad") or sv < 0.4:
        sval = lambda: emit_tensor(e, key="1", shape=(2, 2), stride=(2, 1))
    elif sv < 0.7:
        v = rand_simple(rng)
        sval = lambda: e.lit(v)
    else:
        g = vocab.callable_any(rng)
        sval = lambda: emit_global_entry(e, g)
    state_as_tuple = rng.random() < 0.3
    e.tuple_of([lambda: emit_tensor(e), lambda: e.lit(False), lambda: emit_reduce_noargs(e, "collections", "OrderedDict"),
                (lambda: e.tuple_of([lambda: e.dict_of([]), lambda: e.dict_of([(lambda: e.lit(skey), sval)])]))
                if state_as_tuple else (lambda: e.dict_of([(lambda: e.lit(skey), sval)]))])
    e.op("REDUCE")
    e.op("SETITEM")
    return e.stop(), "tensor-state", f"_rebuild_parameter_with_state state {skey} ({'slots' if state_as_tuple else 'dict'})"


def nested_payload(rng, vocab):
    """A small pickle (ops) that calls something: a random call or a planted setstate."""
    p = rng.choice([2, 3, 4])
    t = rng.choice([t_random_call, t_planted_setstate, t_appends_lookup])
    ops, _, note = t(rng, vocab, p)
    return ops, note


def t_nested_bytes(rng, vocab, proto):
    """torch.storage._load_from_bytes(b): torch.load(BytesIO(b), weights_only=False) of any format."""
    e = pk.Emitter(proto, rng)
    inner_ops, note = nested_payload(rng, vocab)
    inner = pk.encode(inner_ops)
    kind = rng.choice(["plain", "zip", "legacy", "truncated", "junk-after", "bad-opcode"])
    if kind == "zip":
        b = torch_zip(inner)
    elif kind == "legacy":
        b = legacy_stream(inner)
    elif kind == "truncated":
        b = inner[: max(1, len(inner) - rng.randint(1, 3))]
    elif kind == "junk-after":
        b = inner + bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 8)))
    elif kind == "bad-opcode":
        # the payload runs, then the stream breaks
        b = inner[:-1] + b"\xfe"
    else:
        b = inner
    e.glob("torch.storage", "_load_from_bytes")
    e.tuple_of([lambda: e.lit(b)])
    e.op("REDUCE")
    return e.stop(), "nested-bytes", f"_load_from_bytes({kind}): {note}"


def t_joblib_wrapper(rng, vocab, proto):
    """joblib NumpyArrayWrapper restored with a state that plants `read` (joblib calls it)."""
    e = pk.Emitter(max(proto, 2), rng)
    how = emit_instance(e, rng, {"module": "joblib.numpy_pickle", "name": "NumpyArrayWrapper"})
    target = vocab.callable_any(rng)
    pairs = [(lambda: e.lit("subclass"), lambda: e.glob("numpy", "ndarray")),
             (lambda: e.lit("shape"), lambda: e.lit((2,))),
             (lambda: e.lit("order"), lambda: e.lit("C")),
             (lambda: e.lit("dtype"), lambda: (e.glob("numpy", "dtype"), e.tuple_of([lambda: e.lit("f8"), lambda: e.lit(False), lambda: e.lit(True)]), e.op("REDUCE"),
                                               e.tuple_of([lambda: e.lit(3), lambda: e.lit("<"), lambda: e.lit(None), lambda: e.lit(None), lambda: e.lit(None), lambda: e.lit(-1), lambda: e.lit(-1), lambda: e.lit(0)]), e.op("BUILD"))),
             (lambda: e.lit("allow_mmap"), lambda: e.lit(False))]
    if rng.random() < 0.8:
        pairs.append((lambda: e.lit("read"), lambda: emit_global_entry(e, target)))
    e.dict_of(pairs)
    e.op("BUILD")
    ops = e.stop()
    # the array bytes follow the BUILD in a joblib stream: 2 float64
    stop = ops.pop()
    data = pk.encode(ops) + struct.pack("<2d", 1.0, 2.0) + b"."
    return ("RAW", data), "joblib-read", f"NumpyArrayWrapper via {how}; read={target['module']}.{target['name']}"


def t_registry_misuse(rng, vocab, proto):
    """A registry name called with arguments chosen at random (any shape)."""
    e = pk.Emitter(proto, rng)
    m, n = stable_choice(rng, vocab.registry.names())
    args = tuple(rand_simple(rng) for _ in range(rng.randint(0, 4)))
    how = rng.choice(["reduce", "newobj"] if proto >= 2 else ["reduce", "inst"])
    if how == "reduce":
        e.glob(m, n)
        e.lit(args)
        e.op("REDUCE")
    elif how == "inst":
        e.mark()
        for a in args:
            e.lit(a)
        e.op("INST", (m, n))
    else:
        e.glob(m, n)
        e.lit(args)
        e.op("NEWOBJ")
    return e.stop(), "registry-shape", f"{how} {m}.{n}{args!r}"[:200]


def t_global_only(rng, vocab, proto):
    """Only references: importing the modules runs their top level (suspicious, never clean)."""
    e = pk.Emitter(proto, rng)
    k = rng.randint(1, 3)
    e.mark()
    names = []
    for _ in range(k):
        ent = vocab.callable_any(rng)
        names.append(f"{ent['module']}.{ent['name']}")
        emit_global_entry(e, ent)
    e.op("TUPLE")
    return e.stop(), "import-only", "refs " + ", ".join(names)


FIXTURE_ZIPS = ["tests/fixtures/models/sd_sequential.pt", "tests/fixtures/models/tied.pt",
                "tests/fixtures/models/views.pt", "tests/fixtures/models/zip_proto4.pt",
                "tests/fixtures/models/zip_proto5.pt", "tests/fixtures/models/lightning.ckpt",
                "tests/fixtures/models/training_checkpoint.pth", "tests/fixtures/models/numpy_in_torch_p2.pt",
                "tests/fixtures/models/all_dtypes.pt"]
_FIXTURE_OPS: dict = {}


def fixture_ops(base):
    if base not in _FIXTURE_OPS:
        with zipfile.ZipFile(os.path.join(REPO, base)) as z:
            name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            _FIXTURE_OPS[base] = pk.decode(z.read(name))
    return list(_FIXTURE_OPS[base])


STR_OPS = ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8")


def t_mutate_fixture(rng, vocab, proto):
    """A real checkpoint's data.pkl, mutated at the pickle level: a global swapped for an
    introspected one, a planted __setstate__ / extend after an object, a second BUILD."""
    base = rng.choice(FIXTURE_ZIPS)
    ops = fixture_ops(base)
    kind = rng.choice(["swap-global", "plant-setstate", "plant-extend", "build-again", "swap-global"])
    objs = [i for i, (n, _) in enumerate(ops) if n in ("REDUCE", "NEWOBJ", "BUILD")]
    ent = vocab.callable_any(rng)
    note = kind
    if kind == "swap-global":
        gl = [i for i, (n, _) in enumerate(ops) if n in ("GLOBAL", "STACK_GLOBAL")]
        i = rng.choice(gl)
        if ops[i][0] == "GLOBAL":
            note += f" {ops[i][1][0]}.{ops[i][1][1]} -> {ent['module']}.{ent['name']}"
            ops[i] = ("GLOBAL", (ent["module"], ent["name"]))
        else:
            strs = [j for j in range(i - 1, -1, -1) if ops[j][0] in STR_OPS][:2]
            if len(strs) == 2:
                ops[strs[1]] = (ops[strs[1]][0], ent["module"])
                ops[strs[0]] = (ops[strs[0]][0], ent["name"])
                note += f" -> {ent['module']}.{ent['name']}"
    elif objs:
        i = rng.choice(objs) + 1
        lit = rng.choice(WORDS)
        if kind == "plant-setstate":
            ins = [("EMPTY_DICT", None), ("MARK", None), ("BINUNICODE", "__setstate__"),
                   ("GLOBAL", (ent["module"], ent["name"])), ("SETITEMS", None), ("BUILD", None),
                   ("BINUNICODE", lit), ("BUILD", None)]
        elif kind == "plant-extend":
            ins = [("EMPTY_DICT", None), ("MARK", None), ("BINUNICODE", "extend"),
                   ("GLOBAL", (ent["module"], ent["name"])), ("SETITEMS", None), ("BUILD", None),
                   ("MARK", None), ("BINUNICODE", lit), ("APPENDS", None)]
        else:
            ins = [("EMPTY_DICT", None), ("MARK", None), ("BINUNICODE", rng.choice(WORDS)),
                   ("GLOBAL", (ent["module"], ent["name"])), ("SETITEMS", None), ("BUILD", None)]
        ops[i:i] = ins
        note += f" after op {i - 1} ({ops[i - 1][0]}): {ent['module']}.{ent['name']}"
    cls = {"swap-global": "unknown", "plant-setstate": "planted-setstate", "plant-extend": "appends-lookup",
           "build-again": "planted-setstate"}[kind]
    return ("BASE", base, ops), cls, f"{os.path.basename(base)}: {note}"


TEMPLATES = [
    (t_random_call, 6, ["pickle", "pickle", "torchzip", "joblib", "npy"]),
    (t_planted_setstate, 4, ["pickle", "torchzip", "joblib", "npy"]),
    (t_appends_lookup, 4, ["pickle", "torchzip", "joblib", "npy"]),
    (t_slot_state, 3, ["pickle", "torchzip"]),
    (t_reconstructor, 3, ["pickle", "torchzip"]),
    (t_copyreg_newobj, 1, ["pickle"]),
    (t_rebuild_from_type, 3, ["torchzip", "torchzip", "legacy"]),
    (t_parameter_with_state, 2, ["torchzip", "legacy"]),
    (t_nested_bytes, 3, ["pickle", "torchzip"]),
    (t_joblib_wrapper, 2, ["joblib"]),
    (t_registry_misuse, 2, ["pickle", "torchzip"]),
    (t_global_only, 1, ["pickle", "torchzip"]),
    (t_mutate_fixture, 4, ["torchzip"]),
]


def make(seed: int, index: int, vocab: Vocab) -> Candidate:
    rng = random.Random(hashlib.sha256(f"{seed}:{index}".encode()).digest())
    total = sum(w for _, w, _ in TEMPLATES)
    x = rng.uniform(0, total)
    for fn, w, containers in TEMPLATES:
        x -= w
        if x <= 0:
            break
    container = rng.choice(containers)
    if container in ("torchzip", "legacy"):
        proto = rng.choice([2, 2, 2, 3, 4, 5]) if container == "torchzip" else 2
    else:
        proto = rng.choice([0, 1, 2, 3, 4, 5])
    CONTAINER[0] = container
    ops, cls, note = fn(rng, vocab, proto)
    base = ""
    if isinstance(ops, tuple) and ops[0] == "RAW":
        # joblib stream: the ops are followed by raw array bytes; kept as one RAW op
        ops = [("RAW", ops[1])]
    elif isinstance(ops, tuple) and ops[0] == "BASE":
        base, ops = ops[1], ops[2]
    name = f"s{seed}-{index:06d}-{fn.__name__[2:]}"
    return Candidate(name=name, cls=cls, template=fn.__name__[2:], container=container, ops=ops,
                     proto=proto, note=note, base=base)


_orig_encode = pk.encode


def _encode_with_raw(ops):
    if ops and ops[0][0] == "RAW":
        return ops[0][1]
    return _orig_encode(ops)


pk.encode = _encode_with_raw
