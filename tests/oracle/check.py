"""The checker: what the real loaders did (traces from the sandbox) against modelguard's verdicts.

Levels the loaders' behaviour REQUIRES of modelguard (Property 1):
  0  only modelled work: allowlisted globals, modelled calls, object.__new__ of modelled classes,
     builtin containers' own methods;
  1  also unmodelled imports and an installed class's own __new__/__setstate__/__getattr__/
     container methods on an instance made without arguments  -> verdict must not be clean;
  2  anything else the loader ran (a call with file-chosen arguments, a planted attribute, a
     __getattr__ serving a value, a descriptor/custom __setattr__, a global mutated, a process/
     file-write/network/exec/ctypes event, a timeout or crash)  -> scan verdict malicious (or
     error) and convert refused (exit 1 or 2).
Property 2: convert exit 0 => its tensors equal the primary loader's (names, dtype, shape,
sha256 of the bytes); the primary loader raising => no silent convert (exit 0 needs a finding
at medium or above).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import tempfile

SEVERITY = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
VERDICT_LEVEL = {"clean": 0, "suspicious": 1, "malicious": 2}

TRUSTED_PREFIXES = ("torch.nn.", "torch.optim.", "torch.ao.nn.", "torch.nn.utils.")
DATA_CLASS_MODULES = ("argparse", "pathlib", "datetime", "decimal", "fractions", "uuid", "enum", "collections",
                      "omegaconf")



# Types whose __new__ never reads its arguments (NEWOBJ does not call __init__): list
# (PyType_GenericNew, Objects/listobject.c), dict and its subclasses here (dict_new,
# Objects/dictobject.c), set (set_new, Objects/setobject.c: refuses keywords for set itself).
ARGS_IGNORED_BY_NEW = {"builtins.list", "builtins.dict", "builtins.set", "collections.OrderedDict",
                       "collections.Counter", "collections.defaultdict"}

class Obs:
    __slots__ = ("loader", "category", "level", "detail")

    def __init__(self, loader, category, level, detail):
        self.loader, self.category, self.level, self.detail = loader, category, level, detail

    def as_json(self):
        return {"loader": self.loader, "category": self.category, "level": self.level, "detail": self.detail}


def _g(c):
    g = c.get("global")
    return tuple(g) if g else None


def classify_call(loader, c, reg):
    """One recorded unpickler action -> Obs or None."""
    op, how = c.get("op"), c.get("how")
    tgt = c.get("target")
    if op == "global":
        if reg.use(c["module"], c["name"]) is not None:
            return Obs(loader, "global-modelled", 0, f"{c['module']}.{c['name']}")
        if c.get("ok") or c.get("new_modules"):
            return Obs(loader, "import", 1, f"{c['module']}.{c['name']}")
        return None
    if op == "call":
        g = _g(c)
        use = reg.use(*g) if g else None
        nargs = c.get("nargs")
        if how in ("reduce", "instantiate-call"):
            if g == ("copyreg", "_reconstructor") and c.get("recon_base") is not None:
                rc = c.get("recon_cls_global")
                if c.get("recon_base") == "builtins.object":
                    if rc and reg.use(*rc) in ("new", "call"):
                        return Obs(loader, "modelled-new", 0, f"_reconstructor({c.get('recon_cls')})")
                    if c.get("has_del"):
                        return Obs(loader, "finalizer", 2, f"_reconstructor({c.get('recon_cls')}, object): its __del__ runs")
                    return Obs(loader, "restore-new", 1, f"_reconstructor({c.get('recon_cls')}, object)")
                # base dict/list with a state of exactly that built-in type holding plain data:
                # `base.__new__(cls, state)` is the C tp_new (TypeError unless cls subclasses
                # base) and `base.__init__(obj, state)` the C merge/extend of plain data, so no
                # code of cls runs there: the same as object.__new__(cls) (copyreg.py
                # _reconstructor; Objects/dictobject.c dict_merge; Objects/listobject.c).
                if c.get("recon_state_plain") and c.get("recon_base") in ("builtins.dict", "builtins.list") \
                        and c.get("recon_state_type") == c.get("recon_base"):
                    if c.get("has_del"):
                        return Obs(loader, "finalizer", 2, f"_reconstructor({c.get('recon_cls')}, {c.get('recon_base')}): its __del__ runs")
                    return Obs(loader, "restore-new", 1, f"_reconstructor({c.get('recon_cls')}, {c.get('recon_base')}, plain state)")
                return Obs(loader, "call", 2, f"_reconstructor({c.get('recon_cls')}, {c.get('recon_base')}, ...)")
            ncg = c.get("newobj_cls_global")
            if g in (("copyreg", "__newobj__"), ("copyreg", "__newobj_ex__")) and ncg and reg.use(*ncg) in ("new", "call") \
                    and (nargs == 1 or str(c.get("args", "")).endswith(", (), {})")):
                return Obs(loader, "modelled-new", 0, f"copyreg.{g[1]}({'.'.join(ncg)})")
            if g == ("copyreg", "__newobj__") and ncg and reg.use(*ncg) in ("new", "call") \
                    and ".".join(ncg) in ARGS_IGNORED_BY_NEW:
                # cls.__new__(cls, *args) of list/dict/set/...: their C __new__ never reads args
                return Obs(loader, "modelled-new", 0, f"copyreg.__newobj__({'.'.join(ncg)}, ...) (__new__ ignores its arguments)")
            if g in (("copyreg", "__newobj__"), ("copyreg", "__newobj_ex__")) and c.get("has_del"):
                return Obs(loader, "finalizer", 2, f"copyreg.{g[1]}{c.get('args')}: its __del__ runs")
            if g == ("copyreg", "__newobj__"):
                if nargs == 1:
                    return Obs(loader, "restore-new", 1, f"copyreg.__newobj__{c.get('args')}")
                return Obs(loader, "call", 2, f"copyreg.__newobj__{c.get('args')}")
            if g == ("copyreg", "__newobj_ex__"):
                if str(c.get("args", "")).endswith(", (), {})"):
                    return Obs(loader, "restore-new", 1, f"copyreg.__newobj_ex__{c.get('args')}")
                return Obs(loader, "call", 2, f"copyreg.__newobj_ex__{c.get('args')}")
            if use == "call":
                return Obs(loader, "modelled-call", 0, tgt)
            if use == "new" and nargs == 0 and how == "instantiate-call":
                return Obs(loader, "modelled-new", 0, tgt)
            if g is None:
                return Obs(loader, "computed-call", 2, f"{tgt} ({c.get('computed')}){c.get('args')}")
            return Obs(loader, "call", 2, f"{g[0]}.{g[1]}{c.get('args')}")
        if how in ("newobj", "newobj_ex", "instantiate-new"):
            if c.get("is_type", True) is False and c.get("new_builtin"):
                # NEWOBJ on a function or other non-type whose type's __new__ is a C slot: the
                # C unpicklers refuse it, pickle.py's call raises TypeError before any code.
                return Obs(loader, "newobj-non-type", 0, f"{how} {tgt} (not a type)")
            if use in ("call", "new") and (nargs == 0 or use == "call"):
                return Obs(loader, "modelled-new", 0, tgt)
            if use in ("call", "new") and tgt in ARGS_IGNORED_BY_NEW:
                return Obs(loader, "modelled-new", 0, f"{tgt} (__new__ ignores its arguments)")
            if nargs == 0 and c.get("is_type", True):
                if c.get("has_del"):
                    return Obs(loader, "finalizer", 2, f"{tgt}: its __del__ runs when the object is freed")
                return Obs(loader, "restore-new", 1, f"{tgt} ({c.get('new_def')})")
            return Obs(loader, "call", 2, f"{how} {tgt}{c.get('args')} ({c.get('new_def')})")
        return Obs(loader, "call", 2, f"{how} {tgt}")
    if op == "build":
        otype = c.get("obj_type")
        modelled = reg.models_type(otype)
        if c.get("obj_global"):
            return Obs(loader, "build-on-global", 2, f"{how} on {'.'.join(c['obj_global'])}")
        if how == "build-getattr":
            if c.get("served"):
                return Obs(loader, "getattr-served", 2, f"{c.get('owner')}.__getattr__('__setstate__') -> {c.get('target')}")
            return Obs(loader, "restore-getattr", 0 if modelled else 1, f"{c.get('owner')}.__getattr__")
        if how == "build-setstate":
            if c.get("origin") == "instance":
                if c.get("callable") is False:
                    return Obs(loader, "planted-noncallable", 1, f"{otype}: planted __setstate__ = {tgt}")
                return Obs(loader, "planted", 2, f"{otype}: planted __setstate__ = {tgt}")
            if c.get("origin") == "class-object":
                return Obs(loader, "build-on-global", 2, f"{otype}: {tgt}")
            if modelled:
                return Obs(loader, "modelled-setstate", 0, tgt)
            return Obs(loader, "restore-setstate", 1, f"{tgt}")
        if how == "build-dict":
            if c.get("dict_type") != "builtins.dict":
                return Obs(loader, "call", 2, f"{otype}.__dict__ is {c.get('dict_type')}")
            return None
        if how == "build-setattr":
            desc = c.get("descriptor")
            sdef = c.get("setattr_def")
            if sdef not in (None, "builtins.object"):
                if modelled:
                    return Obs(loader, "modelled-setattr", 0, f"{otype}.{c.get('key')}")
                return Obs(loader, "setattr-custom", 2, f"{sdef}.__setattr__({c.get('key')})")
            if c.get("key") == "'__dict__'" and desc == "builtins.getset_descriptor":
                return None  # object.__dict__ replaced by a dict: the same as dict state (raises otherwise)
            if desc and desc != "builtins.member_descriptor":
                return Obs(loader, "setattr-descriptor", 2, f"{otype}.{c.get('key')} ({desc})")
            return None
    if op == "container":
        otype = c.get("obj_type")
        if c.get("obj_global"):
            return Obs(loader, "mutate-global", 2, f"{how} on global {'.'.join(c['obj_global'])}")
        origin = c.get("origin")
        if origin is None:
            return None  # AttributeError: nothing called
        if origin == "instance":
            if c.get("callable") is False:
                return Obs(loader, "planted-noncallable", 1, f"{how}: {otype} instance attribute {c.get('method')} = {tgt}")
            return Obs(loader, "planted", 2, f"{how}: {otype} instance attribute {c.get('method')} = {tgt}")
        if origin == "class-object":
            return Obs(loader, "build-on-global", 2, f"{how} on a class object {otype}")
        if reg.models_type(otype) or (c.get("owner") in ("builtins.list", "builtins.dict", "builtins.set")):
            return Obs(loader, "modelled-container", 0, f"{c.get('owner')}.{c.get('method')}")
        if origin == "getattr":
            return Obs(loader, "restore-getattr", 1, f"{c.get('owner')}.__getattr__({c.get('method')})")
        return Obs(loader, "restore-container", 1, f"{c.get('owner')}.{c.get('method')}")
    return None


EVENT_LEVEL = {"process": 2, "network": 2, "ctypes": 2}


def classify_event(loader, ev):
    cat = ev.get("category")
    if cat in ("process", "network", "ctypes", "file-write", "exec", "other") and ev.get("in_unpickler") is False \
            and not ev.get("in_import"):
        # the loader's own work outside any unpickling (torch's TAR extraction into a temp dir,
        # numpy's header parse): not caused by the file's opcodes
        return Obs(loader, "event-loader-internal", 0, ev["event"])
    if cat == "exec" and ev.get("ast_only"):
        return Obs(loader, "event-compile-ast", 0, ev["event"])
    if cat in EVENT_LEVEL:
        return Obs(loader, "event-" + cat, 2, f"{ev['event']} {ev.get('detail', '')[:120]}")
    if cat == "file-write":
        if ev.get("in_import"):
            return Obs(loader, "event-file-write-import", 0, ev["event"])
        return Obs(loader, "event-file-write", 2, f"{ev['event']} {ev.get('detail', '')[:120]}")
    if cat == "exec":
        if ev.get("in_import"):
            return Obs(loader, "event-exec-import", 0, ev["event"])
        return Obs(loader, "event-exec", 2, f"{ev['event']} {ev.get('detail', '')[:80]}")
    if cat == "import":
        return Obs(loader, "event-import", 0, ev.get("detail", "")[:80])
    if cat == "other" and ev["event"] in ("sys.setprofile", "sys.settrace", "sys.addaudithook",
                                           "cpython._PySys_ClearAuditHooks"):
        return Obs(loader, "event-tamper", 2, ev["event"])
    if cat == "other":
        return Obs(loader, "event-other", 0, ev["event"])
    return None


def classify_loader(loader, tr, reg):
    obs = []
    if tr.get("died"):
        obs.append(Obs(loader, "died-or-timeout", 2, tr.get("raised")))
    calls = tr.get("calls") or []
    has_global_records = any(c.get("op") == "global" for c in calls)
    for c in calls:
        o = classify_call(loader, c, reg)
        if o:
            obs.append(o)
    if not has_global_records:
        # loaders traced only through the audit hook (C unpicklers): the globals they resolved
        for m, n, ok in tr.get("globals") or []:
            if reg.use(m, n) is None and ok:
                obs.append(Obs(loader, "import", 1, f"{m}.{n}"))
        if not tr.get("globals"):
            for ev in tr.get("events") or []:
                if ev.get("category") == "find_class":
                    try:
                        m, n = eval(ev["detail"], {"__builtins__": {}})  # a repr of two strings
                    except Exception:  # noqa: BLE001
                        continue
                    if reg.use(m, n) is None:
                        obs.append(Obs(loader, "import", 1, f"{m}.{n}"))
    for ev in tr.get("events") or []:
        o = classify_event(loader, ev)
        if o:
            obs.append(o)
    for p in tr.get("tmpfs_writes") or []:
        obs.append(Obs(loader, "tmpfs-write", 2, p))
    for p in tr.get("tmpfs_removed") or []:
        obs.append(Obs(loader, "tmpfs-remove", 2, p))
    return obs


def required_level(results, reg):
    obs = []
    for loader, tr in results.items():
        obs += classify_loader(loader, tr, reg)
    level = max((o.level for o in obs), default=0)
    return level, obs


# --------------------------------------------------------------------------------------------
# modelguard
# --------------------------------------------------------------------------------------------

ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
             "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool", "C64": "complex64",
             "U16": "uint16", "U32": "uint32", "U64": "uint64", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
             "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz", "F8_E8M0": "float8_e8m0fnu",
             "F4": "float4_e2m1fn_x2", "C128": "complex128", "C32": "complex32"}


def canon_dtype(d: str) -> str:
    d = d.replace("torch.", "").replace("np.", "")
    return {"float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
            "short": "int16", "cfloat": "complex64", "cdouble": "complex128"}.get(d, d)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = {"dtype": canon_dtype(ST_DTYPES.get(v["dtype"], v["dtype"])), "shape": v["shape"],
                  "sha256": hashlib.sha256(data[base + a:base + b]).hexdigest()}
    return out


def run_modelguard(binary, path, timeout=90):
    res = {}
    try:
        p = subprocess.run([binary, "scan", "--format", "json", path], capture_output=True, timeout=timeout)
        res["scan_exit"] = p.returncode
        try:
            j = json.loads(p.stdout)
            f = j["files"][0]
            res["verdict"] = f.get("verdict")
            res["findings"] = [{"rule_id": x.get("rule_id") or x.get("rule"), "severity": x.get("severity"),
                                "message": (x.get("message") or "")[:200]} for x in f.get("findings", [])]
        except Exception as e:  # noqa: BLE001
            res["verdict"] = "error"
            res["scan_error"] = f"unparsable scan output: {e}: {p.stdout[:200]!r} {p.stderr[:200]!r}"
    except subprocess.TimeoutExpired:
        res["scan_exit"] = None
        res["verdict"] = "error"
        res["scan_error"] = "timeout"
    with tempfile.TemporaryDirectory(prefix="oracle-conv-") as td:
        out = os.path.join(td, "out.safetensors")
        try:
            p = subprocess.run([binary, "convert", path, out, "--report", "-", "-q"], capture_output=True,
                               timeout=timeout)
            res["convert_exit"] = p.returncode
            try:
                j = json.loads(p.stdout)
                res["convert_findings"] = [{"rule_id": x.get("rule_id") or x.get("rule"),
                                            "severity": x.get("severity")} for x in j.get("findings", [])]
                res["convert_verdict"] = j.get("verdict")
            except Exception:  # noqa: BLE001
                res["convert_findings"] = None
                res["convert_stderr"] = p.stderr[-300:].decode("utf-8", "replace")
            if p.returncode == 0 and os.path.exists(out):
                res["tensors"] = read_safetensors(out)
        except subprocess.TimeoutExpired:
            res["convert_exit"] = None
    return res


def max_sev(findings):
    return max((SEVERITY.get(f.get("severity"), 0) for f in findings or []), default=-1)


# --------------------------------------------------------------------------------------------
# the properties
# --------------------------------------------------------------------------------------------


def tensors_equal(want: dict, got: dict):
    """None if equal, else a short description of the first difference."""
    w = {k: {"dtype": canon_dtype(v["dtype"]), "shape": list(v["shape"]), "sha256": v.get("sha256")} for k, v in want.items()}
    if set(w) != set(got):
        return f"names differ: loader {sorted(w)[:8]} vs convert {sorted(got)[:8]}"
    for k in sorted(w):
        a, b = w[k], got[k]
        packed = a["dtype"] == "float4_e2m1fn_x2" and b["dtype"] in ("F4", "float4_e2m1fn_x2")
        if packed:
            pass  # safetensors' F4 counts elements (2 per byte), torch counts bytes: bytes decide
        elif a["dtype"] != b["dtype"] or list(a["shape"]) != list(b["shape"]):
            return f"{k}: loader {a['dtype']}{a['shape']} vs convert {b['dtype']}{b['shape']}"
        if a["sha256"] is not None and a["sha256"] != b["sha256"]:
            return f"{k}: bytes differ"
    return None


def check(cand_info, results, mg, reg):
    """-> (violations, level, obs). Each violation: {property, kind, detail, key}."""
    level, obs = required_level(results, reg)
    v = []
    verdict = mg.get("verdict")
    cexit = mg.get("convert_exit")
    top = [o for o in obs if o.level == level and level > 0]
    key_obs = top[0] if top else None
    # kinds are coarse (not the verdict itself): an engine change from clean to suspicious on a
    # file that needs malicious is still the same open counterexample
    if level == 2:
        if verdict not in ("malicious", "error"):
            v.append({"property": "P1", "kind": "scan-below-malicious", "verdict": verdict,
                      "detail": key_obs.as_json()})
        if cexit == 0:
            v.append({"property": "P1", "kind": "convert-exit0", "detail": key_obs.as_json()})
    elif level == 1:
        if verdict in ("clean", "skipped", None):
            v.append({"property": "P1", "kind": "scan-clean", "verdict": verdict, "detail": key_obs.as_json()})
    prim = cand_info["primary"]
    pt = results.get(prim)
    if pt is not None and cexit == 0 and not pt.get("died"):
        if pt.get("raised"):
            if max(max_sev(mg.get("convert_findings")), max_sev(mg.get("findings"))) < SEVERITY["medium"]:
                v.append({"property": "P2", "kind": "silent-convert-loader-raised",
                          "detail": {"loader": prim, "raised": pt["raised"][:200]}})
        elif pt.get("tensors") is not None and mg.get("tensors") is not None:
            d = tensors_equal(pt["tensors"], mg["tensors"])
            if d:
                v.append({"property": "P2", "kind": "tensors-differ", "detail": {"loader": prim, "diff": d}})
    return v, level, obs


# the classes of container mutants (tests/oracle/containers.py): the rule family a fix belongs to
CONTAINER_CLASSES = ("lookup", "zip-reader", "storage-keys", "trailing-data", "byte-order", "header-grammar",
                     "compression")


def classify_violation(cand_cls, viol, obs):
    """The counterexample class of one violation."""
    if viol["property"] == "P2" and cand_cls in CONTAINER_CLASSES:
        return cand_cls
    if viol["property"] == "P2":
        return cand_cls if cand_cls in ("tensor-state", "nested-bytes", "joblib-read") else "tensor-state" if "differ" in viol["kind"] else cand_cls
    d = viol.get("detail") or {}
    cat, det = d.get("category", ""), d.get("detail", "") or ""
    if viol.get("verdict") == "skipped":
        return "format-sniffing"
    if cat == "died-or-timeout":
        return "loader-crash"
    if cat == "finalizer":
        return "finalizer"
    if cand_cls in ("nested-bytes", "joblib-read", "tensor-state", "protocol-dependence"):
        return cand_cls
    if cat == "planted" and "__setstate__" in det:
        return "planted-setstate"
    if cat == "planted":
        return "appends-lookup"
    if cat in ("getattr-served", "restore-getattr"):
        return "getattr-lookup"
    if cat in ("setattr-descriptor", "setattr-custom"):
        return "slot-state"
    if cat in ("call", "restore-new", "import", "computed-call"):
        t = det.split(" ")[-1] if cat == "call" and det.startswith(("newobj", "instantiate")) else det
        for tok in (det, t):
            base = tok.split("(")[0]
            if base.startswith(("newobj ", "newobj_ex ")):
                base = base.split(" ", 1)[1]
            if base.startswith(TRUSTED_PREFIXES) or base.startswith(DATA_CLASS_MODULES):
                return "module-prefix-trust"
    if cat == "build-on-global" or cat == "mutate-global":
        return "global-mutation"
    if cat == "call" and det.startswith(("newobj", "instantiate")):
        return "newobj-args"
    if cand_cls in ("planted-setstate", "appends-lookup", "slot-state", "registry-shape", "import-only"):
        return cand_cls
    return "unknown"


def signature(cls, viol, template=""):
    """Coarse: one fix of the engine fixes a whole signature, whatever callable the file chose.
    Container mutants add their mutation kind (one fixture per kind of rewrite and outcome)."""
    d = viol.get("detail") or {}
    if viol["property"] == "P1":
        return f"{cls}|P1|{viol['kind']}|{d.get('category')}"
    if template.startswith("container:"):
        return f"{cls}|P2|{viol['kind']}|{template[10:]}"
    return f"{cls}|P2|{viol['kind']}"
