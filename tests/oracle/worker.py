"""The in-sandbox half of the differential oracle.

THIS FILE RUNS ONLY INSIDE THE SANDBOX (tests/oracle/sandbox.py starts it under bubblewrap):
it loads untrusted, generated pickles with the REAL loaders and reports what they did.

Protocol: one JSON request per line on stdin, one JSON reply per line on stdout.
  {"op": "load", "name": "c.pkl", "data": "<base64>", "loaders": [...], "timeout": 10}
      -> {"ok": true, "results": {loader: trace}, "tmpfs_writes": [...], "strays": n}
  {"op": "vocab", "seed": 1, "modules": [...]}  -> {"ok": true, "vocab": [...]}
  {"op": "quit"}

Every load runs in a forked child (a fresh copy of this already-importing process: torch,
numpy and joblib are imported once, here), with rlimits, an audit hook, an instrumented
pure-Python unpickler and a profiler. After each candidate every other process of the sandbox's
pid namespace is killed and the candidate's tmpfs folder is compared with its snapshot.

A trace (per loader):
  raised:  repr of the exception the loader raised, or null
  globals: [[module, name, ok]] every global the unpickler resolved (find_class)
  calls:   [{op, how, target, ...}] every callable the unpickler itself invoked (see rec_*)
  events:  [{event, detail, in_import}] audit events of interest
  tensors: {name: {dtype, shape, sha256}} what the loader returned, flattened by the naming
           contract, or null when the result is not nameable (with tensors_error)
"""

import base64
import hashlib
import io
import json
import os
import resource
import select
import signal
import sys
import time
import traceback
import zlib

# Imported once in the server, before any candidate is read.
import pickle
import copyreg
import numpy as np
import torch
import joblib
import joblib.numpy_pickle
import torch.serialization
import torch._weights_only_unpickler

try:  # imported once here too, so that children do not re-import them per load
    import sklearn  # noqa: F401
    import sklearn.utils  # noqa: F401
    import scipy.sparse  # noqa: F401
except Exception:  # noqa: BLE001
    pass

WORK = "/tmp/w"
REAL_STDOUT = sys.stdout

# --------------------------------------------------------------------------------------------
# naming
# --------------------------------------------------------------------------------------------


def qual(obj):
    """module.qualname of a callable/class, or a description of a value."""
    try:
        if isinstance(obj, type):
            return f"{obj.__module__}.{obj.__qualname__}"
        self_ = getattr(obj, "__self__", None)
        qn = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        if self_ is not None and not isinstance(self_, type(sys)) and qn:
            # a bound method: the class it is bound to
            owner = self_ if isinstance(self_, type) else type(self_)
            if "." in qn:
                return f"{owner.__module__}.{qn}"
            return f"{owner.__module__}.{owner.__qualname__}.{qn}"
        mod = getattr(obj, "__module__", None)
        if mod is None and isinstance(self_, type(sys)):
            mod = self_.__name__
        if qn:
            return f"{mod}.{qn}"
        return f"<instance of {type(obj).__module__}.{type(obj).__qualname__}>"
    except Exception as e:  # noqa: BLE001 - describing must never fail
        return f"<unnamed: {type(e).__name__}>"


def type_q(obj):
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


# --------------------------------------------------------------------------------------------
# the recorder (one per child process)
# --------------------------------------------------------------------------------------------


class Rec:
    def __init__(self):
        self.globals = []
        self.calls = []
        self.events = []
        self.global_ids = {}  # id(obj) -> [module, name]
        self.created = {}  # id(obj) -> creation record
        self.keep = []  # keeps objects alive so ids stay unique
        self.in_hook = False
        self.overflow = 0

    def call(self, **kw):
        if len(self.calls) < 2000:
            self.calls.append(kw)
        else:
            self.overflow += 1

    def glob_of(self, obj):
        return self.global_ids.get(id(obj))


R = Rec()

# --------------------------------------------------------------------------------------------
# audit hook
# --------------------------------------------------------------------------------------------

PROCESS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
           "subprocess.Popen", "os.kill", "os.killpg", "pty.spawn", "os.startfile", "os.popen",
           "_posixsubprocess")
FILEWRITE = ("os.remove", "os.unlink", "os.rename", "os.replace", "os.rmdir", "os.mkdir",
             "os.chmod", "os.chown", "os.truncate", "os.symlink", "os.link", "os.utime",
             "shutil.", "os.chdir", "os.chflags", "os.lchmod", "os.lchown", "os.mkfifo", "os.mknod",
             "os.removexattr", "os.setxattr", "tempfile.", "os.putenv", "os.unsetenv")
NETWORK = ("socket.", "http.", "urllib.", "ftplib.", "smtplib.", "imaplib.", "poplib.",
           "nntplib.", "telnetlib.", "webbrowser.", "ssl.")
CODE = ("exec", "compile", "code.__new__", "function.__new__", "marshal.load", "marshal.loads",
        "builtins.input", "cpython.run_", "sys.settrace", "sys.setprofile", "sys._getframe",
        "sys.addaudithook", "object.__setattr__", "object.__delattr__", "gc.", "sys.set_asyncgen_hooks",
        "cpython._PySys_ClearAuditHooks", "ctypes.", "mmap.", "resource.", "signal.",
        "os.add_dll_directory", "sys.unraisablehook", "sys.excepthook", "pickle.find_class",
        "import", "open", "os.listdir", "os.scandir", "glob.", "os.walk", "sqlite3.", "winreg",
        "builtins.breakpoint", "builtins.id", "os.getxattr", "os.listxattr", "array.__new__",
        "_thread.start_new_thread", "sys.monitoring")


def _is_write_open(args):
    try:
        path, mode, flags = args[0], args[1], args[2]
    except Exception:  # noqa: BLE001
        return False
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    if isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
        return True
    return False


INSTRUMENTED = {"find_class", "load_reduce", "load_newobj", "load_newobj_ex", "_instantiate", "load_build",
                "_load_build", "_joblib_read_lookup",
                "load_append", "load_appends", "load_additems", "load_setitem", "load_setitems",
                "_c_pickle_load", "_container_method", "_newobj_common"}


def _is_unpickler_frame(f):
    """A frame of an unpickler at work: the Python unpicklers' own code, or a frame that is in
    the middle of a call into a C unpickler (`unpickler.load()`, `pickle_module.load(f)`,
    `pickle.load(fp)`): payload code runs below such frames, the loader's own work does not."""
    co = f.f_code
    fn = co.co_filename
    if fn.endswith(("/pickle.py", "/_weights_only_unpickler.py")):
        return True
    if fn == __file__ and co.co_name in INSTRUMENTED:
        return True
    if fn.endswith("/joblib/numpy_pickle.py") and co.co_name == "load_build":
        return True
    if fn == __file__:
        return False  # the driver's own `torch.load(..., pickle_module=pickle)` is not unpickling
    try:
        import linecache
        line = linecache.getline(fn, f.f_lineno)
    except Exception:  # noqa: BLE001
        return False
    return ".load(" in line and ("pickle" in line or "unpickler" in line)


def _context():
    """(in_import, in_unpickler, ast_only) for the event being audited."""
    f = sys._getframe(2)
    in_import = in_unpickler = ast_only = False
    depth = 0
    while f is not None and depth < 400:
        fn = f.f_code.co_filename
        if fn.startswith("<frozen importlib") or "importlib/__init__" in fn:
            in_import = True
        if fn.endswith("/ast.py") and f.f_code.co_name == "parse" and depth < 3:
            ast_only = True
        if not in_unpickler and _is_unpickler_frame(f):
            in_unpickler = True
        f = f.f_back
        depth += 1
    return in_import, in_unpickler, ast_only


def _short(x, n=200):
    try:
        s = repr(x)
    except Exception:  # noqa: BLE001
        s = f"<{type(x).__name__}>"
    return s if len(s) <= n else s[:n] + "..."


def audit(event, args):
    if R.in_hook:
        return
    if not (event.startswith(PROCESS) or event.startswith(FILEWRITE) or event.startswith(NETWORK)
            or event.startswith(CODE)):
        return
    R.in_hook = True
    try:
        if event == "sys._getframe" or event == "object.__setattr__" and args and isinstance(args[0], type) and args[0].__module__ == __name__:
            return
        if event in ("sys._getframe", "builtins.id"):
            return
        cat = None
        if event.startswith(PROCESS):
            cat = "process"
        elif event.startswith(NETWORK):
            cat = "network"
        elif event == "open":
            if not _is_write_open(args):
                return  # reads are everywhere (imports); writes are what matter
            cat = "file-write"
        elif event.startswith(FILEWRITE):
            cat = "file-write"
        elif event.startswith("ctypes."):
            cat = "ctypes"
        elif event in ("exec", "compile", "code.__new__", "function.__new__", "marshal.loads",
                       "marshal.load") or event.startswith("cpython.run_"):
            cat = "exec"
        elif event == "import":
            cat = "import"
        elif event == "pickle.find_class":
            cat = "find_class"
        elif event in ("os.listdir", "os.scandir", "os.walk") or event.startswith("glob."):
            return  # directory reads: noise from imports
        else:
            cat = "other"
        if cat in ("import", "find_class"):
            in_imp, in_unp, ast_only = None, None, False
        else:
            in_imp, in_unp, ast_only = _context()
        if len(R.events) < 1000:
            detail = _short(args[0] if event == "import" and args else args)
            R.events.append({"event": event, "category": cat, "detail": detail, "in_import": in_imp,
                             "in_unpickler": in_unp, "ast_only": ast_only})
    except Exception:  # noqa: BLE001
        pass
    finally:
        R.in_hook = False


# --------------------------------------------------------------------------------------------
# the instrumented pure-Python unpickler (CPython 3.11 Lib/pickle.py, with recording added)
# --------------------------------------------------------------------------------------------

_PU = pickle._Unpickler
_orig_find_class = _PU.find_class


def lookup_origin(obj, name):
    """Where `getattr(obj, name)` would find `name`, without running any of obj's code:
    ("instance"|"class"|"getattr"|None, defining class qualname or None, is_data_descriptor)."""
    t = type(obj)
    cls_attr = None
    owner = None
    for k in t.__mro__:
        try:
            d = k.__dict__
        except Exception:  # noqa: BLE001
            continue
        if name in d:
            cls_attr, owner = d[name], k
            break
    if owner is not None:
        tt = type(cls_attr)
        if hasattr(tt, "__set__") or hasattr(tt, "__delete__"):
            return "class", f"{owner.__module__}.{owner.__qualname__}", True
    try:
        idict = object.__getattribute__(obj, "__dict__")
    except Exception:  # noqa: BLE001
        idict = None
    if isinstance(obj, type):
        # attributes of a class object: its own mro, then the metaclass (done above)
        for k in obj.__mro__:
            if name in k.__dict__:
                return "class-object", f"{k.__module__}.{k.__qualname__}", False
    elif isinstance(idict, dict) and name in idict:
        return "instance", None, False
    if owner is not None:
        return "class", f"{owner.__module__}.{owner.__qualname__}", False
    for k in t.__mro__:
        if "__getattr__" in k.__dict__ and k is not object:
            return "getattr", f"{k.__module__}.{k.__qualname__}", False
    return None, None, False


def creation(obj):
    return R.created.get(id(obj))


def note_created(obj, rec):
    R.keep.append(obj)
    R.created[id(obj)] = rec


def find_class(self, module, name):
    before = set(sys.modules)
    try:
        obj = _orig_find_class(self, module, name)
    except BaseException as e:
        R.globals.append([module, name, False])
        R.call(op="global", module=module, name=name, ok=False, error=_short(e, 120),
               new_modules=sorted(set(sys.modules) - before)[:50])
        raise
    R.globals.append([module, name, True])
    R.keep.append(obj)
    R.global_ids[id(obj)] = [module, name]
    R.call(op="global", module=module, name=name, ok=True, kind=type_q(obj), target=qual(obj),
           new_modules=sorted(set(sys.modules) - before)[:50])
    return obj


def _callable_info(func):
    g = R.glob_of(func)
    info = {"target": qual(func), "global": g}
    if g is None:
        c = creation(func)
        info["computed"] = c["how"] if c else type_q(func)
    return info


def load_reduce(self):
    stack = self.stack
    args = stack.pop()
    func = stack[-1]
    info = _callable_info(func)
    nargs = len(args) if isinstance(args, tuple) else None
    extra = {}
    # copyreg._reconstructor(cls, base, state): object.__new__(cls) when base is object
    if func is copyreg._reconstructor and isinstance(args, tuple) and len(args) == 3:
        extra = {"recon_cls": qual(args[0]), "recon_cls_global": R.glob_of(args[0]),
                 "recon_base": qual(args[1]), "recon_state_none": args[2] is None,
                 "recon_state_plain": _plain_data(args[2]), "recon_state_type": qual(type(args[2])),
                 "has_del": isinstance(args[0], type) and _has_del(args[0])}
    elif func in (copyreg.__newobj__, copyreg.__newobj_ex__) and isinstance(args, tuple) and args:
        extra = {"newobj_cls_global": R.glob_of(args[0]), "has_del": isinstance(args[0], type) and _has_del(args[0])}
    R.call(op="call", how="reduce", nargs=nargs, args=_short(args, 160), **info, **extra)
    res = func(*args)
    stack[-1] = res
    note_created(res, {"how": "reduce", "target": info["target"], "nargs": nargs,
                       "empty": nargs == 0 or (extra.get("recon_base") == "builtins.object"
                                               and extra.get("recon_state_none"))})


def _plain_data(v, depth=0):
    """Exactly the built-in data types, nested: their C methods run no Python code."""
    if depth > 20:
        return False
    t = type(v)
    if v is None or t in (bool, int, float, str, bytes):
        return True
    if t in (list, tuple):
        return all(_plain_data(x, depth + 1) for x in v)
    if t is dict:
        return all(_plain_data(k, depth + 1) and _plain_data(x, depth + 1) for k, x in v.items())
    return False


def _is_pybind11(cls):
    """A pybind11 class: `cls.__new__(cls)` gives an instance without its C++ object."""
    try:
        return any(k.__module__ == "pybind11_builtins" for k in type.__getattribute__(cls, "__mro__"))
    except Exception:  # noqa: BLE001
        return False


def _has_del(cls):
    """The class (not object) defines __del__: restoring an instance schedules that code."""
    try:
        return any("__del__" in k.__dict__ for k in type.__getattribute__(cls, "__mro__") if k is not object)
    except Exception:  # noqa: BLE001
        return False


def _newobj_common(cls, args, kwargs, how):
    info = _callable_info(cls)
    info["has_del"] = _has_del(cls)
    try:
        owner = next(k for k in type.__getattribute__(cls, "__mro__") if "__new__" in k.__dict__)
        new_def = f"{owner.__module__}.{owner.__qualname__}.__new__"
    except Exception:  # noqa: BLE001
        new_def = None
    # Not a type: the C unpicklers raise before calling anything; pickle.py calls
    # cls.__new__, found on type(cls). When that is a C type's __new__ (a builtin, as for
    # functions and builtins), tp_new_wrapper raises TypeError on a non-type before any code.
    new_builtin = None
    if not isinstance(cls, type):
        try:
            owner = next(k for k in type(cls).__mro__ if "__new__" in k.__dict__)
            new_builtin = not isinstance(owner.__dict__["__new__"], (staticmethod, classmethod))
        except Exception:  # noqa: BLE001
            new_builtin = None
    nargs = len(args) + (len(kwargs) if kwargs else 0)
    R.call(op="call", how=how, nargs=nargs, args=_short((args, kwargs), 160), new_def=new_def,
           is_type=isinstance(cls, type), new_builtin=new_builtin, **info)
    return info, nargs


def load_newobj(self):
    args = self.stack.pop()
    cls = self.stack.pop()
    info, nargs = _newobj_common(cls, args, None, "newobj")
    obj = cls.__new__(cls, *args)
    note_created(obj, {"how": "newobj", "target": info["target"], "nargs": nargs, "empty": nargs == 0})
    self.append(obj)


def load_newobj_ex(self):
    kwargs = self.stack.pop()
    args = self.stack.pop()
    cls = self.stack.pop()
    info, nargs = _newobj_common(cls, args, kwargs, "newobj_ex")
    obj = cls.__new__(cls, *args, **kwargs)
    note_created(obj, {"how": "newobj_ex", "target": info["target"], "nargs": nargs, "empty": nargs == 0})
    self.append(obj)


def _instantiate(self, klass, args):
    info = _callable_info(klass)
    if (args or not isinstance(klass, type) or hasattr(klass, "__getinitargs__")):
        R.call(op="call", how="instantiate-call", nargs=len(args), args=_short(args, 160), **info)
        try:
            value = klass(*args)
        except TypeError as err:
            raise TypeError("in constructor for %s: %s" % (klass.__name__, str(err)), sys.exc_info()[2])
        note_created(value, {"how": "instantiate-call", "target": info["target"], "nargs": len(args), "empty": False})
    else:
        owner = next((k for k in klass.__mro__ if "__new__" in k.__dict__), object)
        R.call(op="call", how="instantiate-new", nargs=0, new_def=f"{owner.__module__}.{owner.__qualname__}.__new__",
               is_type=True, has_del=_has_del(klass), **info)
        value = klass.__new__(klass)
        note_created(value, {"how": "instantiate-new", "target": info["target"], "nargs": 0, "empty": True})
    self.append(value)


def _obj_info(obj):
    c = creation(obj)
    g = R.glob_of(obj)
    return {"obj_type": type_q(obj), "obj_created": c, "obj_global": g}


def load_build(self):
    try:
        _load_build(self)
    finally:
        _joblib_read_lookup(self)


def _joblib_read_lookup(self):
    """joblib's NumpyUnpickler.load_build calls `wrapper.read(self)` right after this BUILD when
    the object is a NumpyArrayWrapper/NDArrayWrapper: record where `read` is found."""
    if not isinstance(self, joblib.numpy_pickle.NumpyUnpickler) or not self.stack:
        return
    inst = self.stack[-1]
    wrappers = (joblib.numpy_pickle.NumpyArrayWrapper, joblib.numpy_pickle.NDArrayWrapper)
    if not isinstance(inst, wrappers):
        return
    where, owner, _ = lookup_origin(inst, "read")
    extra = {}
    if where == "instance":
        try:
            val = object.__getattribute__(inst, "__dict__")["read"]
            extra = {"target": qual(val), "callable": callable(val)}
        except Exception:  # noqa: BLE001
            pass
    R.call(op="container", how="joblib-read", method="read", origin=where, owner=owner, exact=None, **extra,
           **_obj_info(inst))


def _load_build(self):
    stack = self.stack
    state = stack.pop()
    inst = stack[-1]
    where, owner, _ = lookup_origin(inst, "__setstate__")
    info = _obj_info(inst)
    if where == "getattr":
        try:
            setstate = getattr(inst, "__setstate__", None)
        except BaseException:
            R.call(op="build", how="build-getattr", origin=where, owner=owner, served=False, **info)
            raise
        R.call(op="build", how="build-getattr", origin=where, owner=owner, served=setstate is not None,
               target=qual(setstate) if setstate is not None else None, **info)
    else:
        setstate = getattr(inst, "__setstate__", None)
    if setstate is not None:
        R.call(op="build", how="build-setstate", origin=where, owner=owner, target=qual(setstate),
               callable=callable(setstate),
               state=_short(state, 160), state_type=type_q(state), **info)
        setstate(state)
        return
    slotstate = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slotstate = state
    if state:
        inst_dict = inst.__dict__
        R.call(op="build", how="build-dict", dict_type=type_q(inst_dict), keys=_short(list(state)[:20], 300)
               if hasattr(state, "keys") else None, state_type=type_q(state), **info)
        intern = sys.intern
        for k, v in state.items():
            if type(k) is str:
                inst_dict[intern(k)] = v
            else:
                inst_dict[k] = v
    if slotstate:
        for k, v in slotstate.items():
            where_k, owner_k, is_data = lookup_origin(inst, k) if isinstance(k, str) else (None, None, False)
            setattr_def = next((f"{c.__module__}.{c.__qualname__}" for c in type(inst).__mro__
                                if "__setattr__" in c.__dict__), None)
            desc = None
            if is_data and owner_k:
                try:
                    d = next(c.__dict__[k] for c in type(inst).__mro__ if k in c.__dict__)
                    desc = type_q(d)
                except Exception:  # noqa: BLE001
                    desc = "?"
            R.call(op="build", how="build-setattr", key=_short(k, 80), origin=where_k, owner=owner_k,
                   descriptor=desc, setattr_def=setattr_def, **info)
            setattr(inst, k, v)


def _container_method(obj, name, how):
    where, owner, _ = lookup_origin(obj, name)
    extra = {}
    if where == "instance":
        try:
            val = object.__getattribute__(obj, "__dict__")[name]
            extra = {"target": qual(val), "callable": callable(val)}
        except Exception:  # noqa: BLE001
            pass
    R.call(op="container", how=how, method=name, origin=where, owner=owner, exact=type(obj).__name__
           if type(obj) in (list, dict, set) else None, **extra, **_obj_info(obj))


def load_append(self):
    stack = self.stack
    value = stack.pop()
    list_ = stack[-1]
    if type(list_) is not list or R.glob_of(list_) is not None:
        _container_method(list_, "append", "append")
    list_.append(value)


def load_appends(self):
    items = self.pop_mark()
    list_obj = self.stack[-1]
    exact = type(list_obj) is list and R.glob_of(list_obj) is None
    try:
        extend = list_obj.extend
    except AttributeError:
        pass
    else:
        if not exact:
            _container_method(list_obj, "extend", "appends-extend")
        extend(items)
        return
    if not exact:
        _container_method(list_obj, "append", "appends-append")
    append = list_obj.append
    for item in items:
        append(item)


def load_additems(self):
    items = self.pop_mark()
    set_obj = self.stack[-1]
    if isinstance(set_obj, set):
        if type(set_obj) is not set or R.glob_of(set_obj) is not None:
            _container_method(set_obj, "update", "additems-update")
        set_obj.update(items)
    else:
        _container_method(set_obj, "add", "additems-add")
        add = set_obj.add
        for item in items:
            add(item)


def load_setitem(self):
    stack = self.stack
    value = stack.pop()
    key = stack.pop()
    d = stack[-1]
    if type(d) is not dict or R.glob_of(d) is not None:
        _container_method(d, "__setitem__", "setitem")
    d[key] = value


def load_setitems(self):
    items = self.pop_mark()
    d = self.stack[-1]
    if type(d) is not dict or R.glob_of(d) is not None:
        _container_method(d, "__setitem__", "setitems")
    for i in range(0, len(items), 2):
        d[items[i]] = items[i + 1]


def _persistent_load_rec(orig):
    def persistent_load(pid):
        R.call(op="persid", how="persistent_load", pid=_short(pid, 120))
        return orig(pid)
    return persistent_load


PATCHED = {
    "load_reduce": (pickle.REDUCE, load_reduce),
    "load_newobj": (pickle.NEWOBJ, load_newobj),
    "load_newobj_ex": (pickle.NEWOBJ_EX, load_newobj_ex),
    "load_build": (pickle.BUILD, load_build),
    "load_append": (pickle.APPEND, load_append),
    "load_appends": (pickle.APPENDS, load_appends),
    "load_additems": (pickle.ADDITEMS, load_additems),
    "load_setitem": (pickle.SETITEM, load_setitem),
    "load_setitems": (pickle.SETITEMS, load_setitems),
}


def instrument_python_unpickler():
    """Patch pickle._Unpickler (and joblib's dispatch copy) in this child process."""
    _PU.find_class = find_class
    _PU._instantiate = _instantiate
    for meth, (op, fn) in PATCHED.items():
        setattr(_PU, meth, fn)
        _PU.dispatch[op[0]] = fn
    nd = joblib.numpy_pickle.NumpyUnpickler.dispatch
    for meth, (op, fn) in PATCHED.items():
        if meth == "load_build":
            continue  # joblib's own load_build calls Unpickler.load_build (patched above)
        nd[op[0]] = fn
    # Everything that asks the pickle module for an unpickler gets the Python one.
    pickle.Unpickler = _PU
    pickle.load = pickle._load
    pickle.loads = pickle._loads


class CFindClass(pickle.Unpickler):
    """The C unpickler, recording the globals it resolves (find_class is called by method)."""

    def find_class(self, module, name):
        try:
            obj = super().find_class(module, name)
        except BaseException:
            R.globals.append([module, name, False])
            raise
        R.globals.append([module, name, True])
        return obj


# --------------------------------------------------------------------------------------------
# profiler: Python-level functions called directly by C code (the C unpickler, torch's loader)
# --------------------------------------------------------------------------------------------


def make_profiler(anchor_codes):
    def prof(frame, event, arg):
        if event != "call":
            return
        back = frame.f_back
        if back is not None and back.f_code in anchor_codes:
            co = frame.f_code
            if co in anchor_codes or co.co_filename == __file__:
                return
            R.call(op="pycall", how="from-c", target=f"{frame.f_globals.get('__name__')}.{co.co_qualname}",
                   file=co.co_filename.rsplit("/", 3)[-1])
    return prof


def quiet_setprofile(f):
    R.in_hook = True
    try:
        sys.setprofile(f)
    finally:
        R.in_hook = False


def _c_pickle_load(u):
    return u.load()


# --------------------------------------------------------------------------------------------
# flattening by the naming contract (README "Naming contract")
# --------------------------------------------------------------------------------------------


def _tensor_desc(x):
    if isinstance(x, np.ndarray):
        a = x
        if a.dtype.hasobject:
            return None
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        a = np.array(a, order="C", copy=True)  # (ascontiguousarray would make 0-d arrays 1-d)
        return {"dtype": "np." + a.dtype.name, "shape": list(a.shape),
                "sha256": hashlib.sha256(a.tobytes()).hexdigest()}
    t = x.detach()
    if t.layout != torch.strided or t.is_quantized or t.device.type != "cpu":
        return {"dtype": str(t.dtype), "shape": list(t.shape), "sha256": None, "layout": str(t.layout)}
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    sizes = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64, 16: torch.complex128}
    try:
        iv = t.view(sizes[t.element_size()]).contiguous().clone()
        b = iv.numpy().tobytes() if iv.numel() else b""
    except Exception:  # noqa: BLE001
        b = t.contiguous().numpy().tobytes()
    return {"dtype": str(t.dtype), "shape": list(t.shape), "sha256": hashlib.sha256(b).hexdigest()}


def flatten(obj):
    out = {}
    seen = set()
    budget = [100000]

    def add(name, v):
        if name in out and out[name][1] is not v:
            raise ValueError(f"name collision: {name!r}")
        out[name] = (_tensor_desc(v), v)

    def walk(v, path, depth):
        budget[0] -= 1
        if budget[0] < 0 or depth > 200:
            raise ValueError("flatten budget")
        if isinstance(v, (torch.Tensor, np.ndarray)):
            if isinstance(v, np.ndarray) and (v.dtype.hasobject or v.dtype.kind not in "biufc"):
                return  # strings, records, datetimes: not tensors (the naming contract leaves them out)
            add(path or "tensor", v)
            return
        if id(v) in seen:
            return
        if isinstance(v, torch.nn.Module):
            seen.add(id(v))
            for k, t in v.state_dict().items():
                walk(t, f"{path}.{k}" if path else k, depth + 1)
            seen.discard(id(v))
            return
        if isinstance(v, dict):
            seen.add(id(v))
            for k, x in list(v.items()):
                k = str(k)
                walk(x, f"{path}.{k}" if path else k, depth + 1)
            seen.discard(id(v))
            return
        if isinstance(v, (list, tuple)):
            seen.add(id(v))
            for i, x in enumerate(v):
                walk(x, f"{path}.{i}" if path else str(i), depth + 1)
            seen.discard(id(v))
            return
        if isinstance(v, (str, bytes, int, float, complex, type(None), bool, type, type(sys))):
            return
        d = None
        try:
            d = object.__getattribute__(v, "__dict__")
        except Exception:  # noqa: BLE001
            pass
        if isinstance(d, dict) and d:
            seen.add(id(v))
            for k, x in list(d.items()):
                walk(x, f"{path}.{k}" if path else str(k), depth + 1)
            seen.discard(id(v))

    walk(obj, "", 0)
    return {k: d for k, (d, _) in out.items()}


# --------------------------------------------------------------------------------------------
# loaders
# --------------------------------------------------------------------------------------------

def _wo_true(path):
    return torch.load(path, weights_only=True, map_location="cpu")


def _torch_false(path):
    return torch.load(path, weights_only=False, map_location="cpu")


def run_loader(loader, path):
    """Returns the loaded object; traces go to R."""
    if loader == "pickle":
        with open(path, "rb") as f:
            u = CFindClass(f)
            anchors = {_c_pickle_load.__code__}
            quiet_setprofile(make_profiler(anchors))
            try:
                return _c_pickle_load(u)
            finally:
                quiet_setprofile(None)
    if loader == "pickle_py":
        instrument_python_unpickler()
        with open(path, "rb") as f:
            return pickle._Unpickler(f).load()
    if loader == "torch":
        return _torch_false(path)
    if loader == "torch_trace":
        instrument_python_unpickler()
        return torch.load(path, weights_only=False, map_location="cpu", pickle_module=pickle)
    if loader == "torch_wo":
        anchors = {torch._weights_only_unpickler.Unpickler.load.__code__}
        quiet_setprofile(make_profiler(anchors))
        try:
            return _wo_true(path)
        finally:
            quiet_setprofile(None)
    if loader == "joblib":
        instrument_python_unpickler()
        return joblib.load(path)
    if loader == "numpy":
        r = np.load(path, allow_pickle=True)
        if isinstance(r, np.lib.npyio.NpzFile):
            with r:
                return {k: r[k] for k in r.files}
        return r
    if loader == "numpy_trace":
        instrument_python_unpickler()
        r = np.load(path, allow_pickle=True)
        if isinstance(r, np.lib.npyio.NpzFile):
            with r:
                return {k: r[k] for k in r.files}
        return r
    if loader == "jit":
        return torch.jit.load(path, map_location="cpu").state_dict()
    raise ValueError(loader)


def child_main(loader, path, wfd, limits):
    os.setpgid(0, 0)
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu"], limits["cpu"] + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits["as"], limits["as"]))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits["fsize"], limits["fsize"]))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except Exception:  # noqa: BLE001
        pass
    sys.stdout = io.StringIO()  # a payload printing must not corrupt the protocol
    sys.stdin = io.StringIO()
    import warnings
    warnings.simplefilter("ignore")
    sys.addaudithook(audit)
    out = {"raised": None, "result_type": None, "tensors": None}
    t0 = time.monotonic()
    try:
        obj = run_loader(loader, path)
        out["result_type"] = type_q(obj)
        try:
            out["tensors"] = flatten(obj)
        except Exception as e:  # noqa: BLE001
            out["tensors_error"] = _short(e, 200)
    except BaseException as e:  # noqa: BLE001
        out["raised"] = f"{type(e).__name__}: {_short(str(e), 300)}"
        out["raised_type"] = type(e).__name__
    out["seconds"] = round(time.monotonic() - t0, 3)
    R.in_hook = True  # stop recording
    out["globals"] = R.globals
    out["calls"] = R.calls
    out["calls_overflow"] = R.overflow
    out["events"] = R.events
    try:
        data = json.dumps(out, default=str).encode()
    except Exception as e:  # noqa: BLE001
        data = json.dumps({"raised": "oracle: unserialisable trace " + repr(e)}).encode()
    try:
        with os.fdopen(wfd, "wb") as w:
            w.write(data)
    finally:
        os._exit(0)


def kill_strays():
    """Kill every process of the sandbox's pid namespace except this server (and init)."""
    me = os.getpid()
    n = 0
    for _ in range(3):
        found = False
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            pid = int(p)
            if pid in (me, 1):
                continue
            try:
                os.kill(pid, signal.SIGKILL)
                found = True
                n += 1
            except ProcessLookupError:
                pass
            except PermissionError:
                pass
        if not found:
            break
        time.sleep(0.01)
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
    return n


def snapshot(root):
    snap = {}
    for dp, dns, fns in os.walk(root):
        for n in dns + fns:
            p = os.path.join(dp, n)
            try:
                st = os.lstat(p)
                snap[p] = (st.st_mode, st.st_size, st.st_mtime_ns)
            except OSError:
                pass
    return snap


def rm_tree(root):
    for dp, dns, fns in os.walk(root, topdown=False):
        for n in fns:
            try:
                os.unlink(os.path.join(dp, n))
            except OSError:
                pass
        for n in dns:
            p = os.path.join(dp, n)
            try:
                os.chmod(p, 0o700)
            except OSError:
                pass
            try:
                if os.path.islink(p):
                    os.unlink(p)
                else:
                    os.rmdir(p)
            except OSError:
                pass


def run_one(loader, path, timeout, limits):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            child_main(loader, path, w, limits)
        finally:
            os._exit(3)
    os.close(w)
    buf = b""
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        rl, _, _ = select.select([r], [], [], left)
        if not rl:
            continue
        chunk = os.read(r, 1 << 20)
        if not chunk:
            break
        buf += chunk
        if len(buf) > 64 << 20:
            break
    os.close(r)
    if timed_out:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"raised": "oracle: timeout", "raised_type": "Timeout", "globals": [], "calls": [], "events": [],
                "tensors": None, "died": True}
    try:
        return json.loads(buf)
    except Exception:  # noqa: BLE001
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        return {"raised": f"oracle: child died (status {status}, signal {sig})", "raised_type": "Died",
                "globals": [], "calls": [], "events": [], "tensors": None, "died": True}


def handle_load(req):
    rm_tree(WORK)
    os.makedirs(WORK, exist_ok=True)
    results = {}
    writes = []
    strays = 0
    limits = {"cpu": int(req.get("cpu", 10)), "as": int(req.get("as", 6 << 30)), "fsize": 64 << 20}
    for loader in req["loaders"]:
        d = os.path.join(WORK, loader)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, req["name"])
        with open(path, "wb") as f:
            f.write(base64.b64decode(req["data"]))
        before = {**snapshot("/tmp"), **snapshot("/dev")}
        os.chdir(d)
        res = run_one(loader, path, float(req.get("timeout", 20)), limits)
        os.chdir("/")
        strays += kill_strays()
        after = {**snapshot("/tmp"), **snapshot("/dev")}
        w = sorted(p for p in after if before.get(p) != after[p])
        gone = sorted(p for p in before if p not in after)
        res["tmpfs_writes"] = w[:50]
        res["tmpfs_removed"] = gone[:50]
        writes += w
        results[loader] = res
        rm_tree(d)
    return {"ok": True, "results": results, "strays": strays}


# --------------------------------------------------------------------------------------------
# vocabulary by introspection
# --------------------------------------------------------------------------------------------

SKIP_MODULES = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "__main__",
                "lib2to3", "ensurepip", "pydoc_data", "test"}


def handle_vocab(req):
    """Walk modules (stdlib names + what torch/numpy/joblib/sklearn import) and list public
    functions, classes, enum classes and dataclasses with a little signature information."""
    import inspect
    import dataclasses
    import enum
    import importlib
    import warnings
    warnings.simplefilter("ignore")
    sys.stdout = io.StringIO()
    names = set()
    for m in sorted(sys.stdlib_module_names):
        if m in SKIP_MODULES or m.startswith("_") and m not in ("_codecs", "_operator", "_io", "_collections"):
            continue
        names.add(m)
    for extra in req.get("extra", []):
        try:
            importlib.import_module(extra)
        except BaseException:  # noqa: BLE001
            pass
    for m in list(sys.modules):
        if m.split(".")[0] in ("torch", "numpy", "joblib", "sklearn", "scipy", "collections", "json",
                               "argparse", "pathlib", "datetime", "enum", "dataclasses", "typing",
                               "functools", "itertools", "fractions", "decimal", "uuid", "re"):
            names.add(m)
    out = []
    for m in sorted(names):
        if m.split(".")[0] in SKIP_MODULES:
            continue
        try:
            mod = importlib.import_module(m)
        except BaseException:  # noqa: BLE001
            continue
        try:
            items = list(vars(mod).items())
        except Exception:  # noqa: BLE001
            continue
        for n, obj in items:
            if n.startswith("__"):
                continue
            try:
                if getattr(obj, "__module__", None) != m and not (isinstance(obj, type(sys))):
                    # re-exports: keep only a few, defined elsewhere
                    if not (callable(obj) and zlib.crc32(f"{m}.{n}".encode()) % 7 == 0):
                        continue
                if isinstance(obj, type(sys)):
                    continue
                if inspect.isclass(obj):
                    kind = "class"
                    if issubclass(obj, enum.Enum):
                        kind = "enum"
                    elif dataclasses.is_dataclass(obj):
                        kind = "dataclass"
                    elif issubclass(obj, BaseException):
                        kind = "exception"
                    own_new = next((f"{k.__module__}.{k.__qualname__}" for k in obj.__mro__
                                    if "__new__" in k.__dict__), None)
                    own_setstate = any("__setstate__" in k.__dict__ for k in obj.__mro__[:-1])
                    has_dict = "__dict__" in dir(obj) or any("__dict__" in k.__dict__ for k in obj.__mro__)
                    out.append({"module": m, "name": n, "kind": kind, "new": own_new,
                                "setstate": own_setstate, "has_dict": bool(has_dict),
                                "finalizer": _has_del(obj), "native": _is_pybind11(obj),
                                "container": [a for a in ("append", "extend", "add", "__setitem__")
                                              if hasattr(obj, a)]})
                elif callable(obj):
                    try:
                        sig = inspect.signature(obj)
                        req_params = [p.name for p in sig.parameters.values()
                                      if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
                        nparams = len(sig.parameters)
                    except Exception:  # noqa: BLE001
                        req_params, nparams = None, None
                    out.append({"module": m, "name": n, "kind": "function", "required": req_params,
                                "nparams": nparams})
                elif isinstance(obj, (int, str, float, bytes)) and not isinstance(obj, bool):
                    out.append({"module": m, "name": n, "kind": "value"})
            except BaseException:  # noqa: BLE001
                continue
    sys.stdout = REAL_STDOUT
    # sorted: module dicts built from sets have hash-randomised order
    out.sort(key=lambda e: (e["module"], e["name"], e["kind"]))
    return {"ok": True, "vocab": out, "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                                                    "numpy": np.__version__, "joblib": joblib.__version__}}


def main():
    os.makedirs(WORK, exist_ok=True)
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: children cannot ptrace/poke the server
    except Exception:  # noqa: BLE001
        pass
    stdin = sys.stdin.buffer
    REAL_STDOUT.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    REAL_STDOUT.flush()
    for line in stdin:
        try:
            req = json.loads(line)
            if req["op"] == "quit":
                break
            if req["op"] == "load":
                rep = handle_load(req)
            elif req["op"] == "vocab":
                pid = os.fork()
                r = None
                if pid == 0:
                    # in a child: importing a hundred modules must not change the server
                    try:
                        rep = handle_vocab(req)
                        with open("/tmp/vocab.json", "w") as f:
                            json.dump(rep, f)
                    finally:
                        os._exit(0)
                os.waitpid(pid, 0)
                kill_strays()
                with open("/tmp/vocab.json") as f:
                    rep = json.load(f)
                os.unlink("/tmp/vocab.json")
                _ = r
            else:
                rep = {"ok": False, "error": "unknown op"}
        except Exception as e:  # noqa: BLE001
            rep = {"ok": False, "error": traceback.format_exc()[-2000:], "repr": repr(e)}
        REAL_STDOUT.write(json.dumps(rep, default=str) + "\n")
        REAL_STDOUT.flush()


if __name__ == "__main__":
    main()
