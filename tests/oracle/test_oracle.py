"""The oracle's own judgement, on hand-made pickles whose behaviour under CPython is known:
the tracer must see the call, the planted attribute, the class restore method; and must see
nothing unmodelled in a real state dict. Ground truth comes from the real loaders in the
sandbox, never from modelguard."""

from __future__ import annotations

import os
import random
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import check  # noqa: E402
import gen  # noqa: E402
import pk  # noqa: E402
from registry import Registry  # noqa: E402
from sandbox import Sandbox, ensure_bubblewrap  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
REG = Registry()


@pytest.fixture(scope="module")
def sb():
    ensure_bubblewrap()
    s = Sandbox()
    s.start()
    yield s
    s.close()


def run(sb, data, container="pickle", loaders=None):
    loaders = loaders or gen.LOADERS[container]
    rep = sb.load("c" + gen.EXT[container], data, loaders, timeout=20)
    assert rep["ok"], rep
    level, obs = check.required_level(rep["results"], REG)
    return rep["results"], level, {o.category for o in obs if o.level > 0}


def emitter(proto=2):
    return pk.Emitter(proto, random.Random(0))


def test_real_checkpoint_is_clean(sb):
    with open(os.path.join(REPO, "tests", "fixtures", "models", "sd_sequential.pt"), "rb") as f:
        data = f.read()
    res, level, cats = run(sb, data, "torchzip")
    assert level == 0, cats
    assert res["torch"]["raised"] is None
    assert "0.weight" in res["torch"]["tensors"]
    assert res["torch"]["tensors"] == res["torch_wo"]["tensors"] == res["torch_trace"]["tensors"]


@pytest.mark.parametrize("proto", [0, 1, 2, 4])
def test_planted_setstate_is_a_call(sb, proto):
    e = emitter(proto)
    gen.emit_instance(e, random.Random(0), {"module": "argparse", "name": "Namespace"},
                      how="reconstructor" if proto < 2 else "newobj")
    e.dict_of([(lambda: e.lit("__setstate__"), lambda: e.glob("builtins", "len"))])
    e.op("BUILD")
    e.lit("abc")
    e.op("BUILD")
    res, level, cats = run(sb, pk.encode(e.stop()), "pickle", ["pickle", "pickle_py"])
    # len("abc") returned 3 and replaced nothing: the load succeeds, the call happened
    assert res["pickle"]["raised"] is None and res["pickle_py"]["raised"] is None
    assert level == 2 and "planted" in cats


def test_appends_on_planted_extend(sb):
    e = emitter(2)
    gen.emit_reduce_noargs(e, "collections", "OrderedDict")
    e.dict_of([(lambda: e.lit("extend"), lambda: e.glob("builtins", "print"))])
    e.op("BUILD")
    e.mark()
    e.lit("hello")
    e.op("APPENDS")
    _, level, cats = run(sb, pk.encode(e.stop()), "pickle", ["pickle", "pickle_py"])
    assert level == 2 and "planted" in cats


def test_newobj_without_args_is_a_restore(sb):
    assert REG.use("json.decoder", "JSONDecoder") is None  # an installed class the machine does not model
    e = emitter(2)
    e.glob("json.decoder", "JSONDecoder")
    e.tuple_of([])
    e.op("NEWOBJ")
    _, level, cats = run(sb, pk.encode(e.stop()), "pickle", ["pickle_py"])
    assert level == 1 and "restore-new" in cats


def test_reduce_with_args_is_a_call(sb):
    e = emitter(2)
    e.glob("os.path", "join")
    e.lit(("a", "b"))
    e.op("REDUCE")
    res, level, cats = run(sb, pk.encode(e.stop()), "pickle", ["pickle", "pickle_py"])
    assert res["pickle"]["raised"] is None
    assert level == 2 and "call" in cats


def test_reference_only_is_an_import(sb):
    assert REG.use("json.decoder", "JSONDecoder") is None
    e = emitter(4)
    e.glob("json.decoder", "JSONDecoder")
    _, level, cats = run(sb, pk.encode(e.stop()), "pickle", ["pickle", "pickle_py"])
    assert level == 1 and cats == {"import"}


def test_modelled_rebuild_is_clean(sb):
    e = emitter(2)
    e.op("EMPTY_DICT")
    e.lit("w")
    gen.emit_tensor(e)
    e.op("SETITEM")
    res, level, cats = run(sb, gen.torch_zip(pk.encode(e.stop())), "torchzip")
    assert level == 0, cats
    assert res["torch"]["tensors"]["w"]["shape"] == [2, 3]
    assert res["torch"]["tensors"]["w"]["dtype"] == "torch.float32"


def test_legacy_stream_loads(sb):
    e = emitter(2)
    e.op("EMPTY_DICT")
    e.lit("w")
    gen.CONTAINER[0] = "legacy"
    try:
        gen.emit_tensor(e, key="2", shape=(3,), stride=(1,))
    finally:
        gen.CONTAINER[0] = "torchzip"
    e.op("SETITEM")
    res, level, _ = run(sb, gen.legacy_stream(pk.encode(e.stop())), "legacy")
    assert res["torch"]["raised"] is None, res["torch"]["raised"]
    assert res["torch"]["tensors"]["w"]["dtype"] == "torch.int64"


def test_generator_is_reproducible():
    vocab = gen.Vocab([{"module": "json", "name": "dumps", "kind": "function", "required": ["obj"]},
                       {"module": "json.decoder", "name": "JSONDecoder", "kind": "class", "has_dict": True,
                        "new": "builtins.object", "container": []}], REG)
    a = [gen.make(7, i, vocab) for i in range(40)]
    b = [gen.make(7, i, vocab) for i in range(40)]
    assert [x.data() for x in a] == [x.data() for x in b]
    assert len({x.data() for x in a}) > 20
    for x in a:
        if x.ops and x.ops[0][0] != "RAW":
            assert pk.decode(pk.encode(x.ops)) == x.ops


# --------------------------------------------------------------------------------------------
# the known corpus and the real checkpoints: the tracer sees every payload fire, and nothing
# unmodelled in a real checkpoint
# --------------------------------------------------------------------------------------------

CORPUS_LOADERS = {"pickle.load": ["pickle", "pickle_py"], "torch.load(weights_only=False)": ["torch", "torch_trace"],
                  "joblib.load": ["joblib"], "numpy.load(allow_pickle=True)": ["numpy", "numpy_trace"]}
FIRED = {"event-process", "event-file-write", "event-exec", "event-network", "event-ctypes", "tmpfs-write"}


def _corpus():
    import json
    with open(os.path.join(REPO, "tests", "fixtures", "malicious", "manifest.json")) as f:
        return [c for c in json.load(f) if c["loader"] in CORPUS_LOADERS]


@pytest.mark.parametrize("case", _corpus(), ids=lambda c: c["case"])
def test_every_corpus_payload_is_seen_firing(sb, case):
    """verify.py proved each payload fires under its loader; the oracle must see it fire (an
    audit event or the marker written into the tmpfs), not merely guess from the globals."""
    with open(os.path.join(REPO, "tests", "fixtures", "malicious", case["file"]), "rb") as f:
        data = f.read()
    rep = sb.load(os.path.basename(case["file"]), data, CORPUS_LOADERS[case["loader"]], timeout=30)
    assert rep["ok"], rep
    level, obs = check.required_level(rep["results"], REG)
    assert level == 2
    assert {o.category for o in obs if o.level == 2} & FIRED, [o.as_json() for o in obs if o.level == 2]


@pytest.mark.parametrize("flag,at_least", [("finalizer", 50), ("native", 400)])
def test_every_gadget_class_in_the_vocabulary_scans_malicious(sb, tmp_path, flag, at_least):
    """finalizer: a class with __del__ runs it on whatever state the pickle restored, once the
    instance is freed (check.py: level 2). native: a pybind11 class instantiated by
    cls.__new__(cls) has no C++ object, and lookups on it act on uninitialised memory
    (torch.ScriptModule segfaults on APPEND: loader-crash). The machine sees neither, so every
    such class the introspected vocabulary holds must be graded high by the registry. Ground
    truth: the classes' own MROs in the sandbox's libraries."""
    import json
    import subprocess
    import run as oracle_run
    classes = [e for e in oracle_run.load_vocab(sb) if e.get(flag)]
    assert len(classes) > at_least, len(classes)
    for i, e in enumerate(classes):
        data = b"\x80\x02c" + e["module"].encode() + b"\n" + e["name"].encode() + b"\n)\x81."
        (tmp_path / f"{i:04d}.pkl").write_bytes(data)
    binary = os.path.join(REPO, "target", "release", "modelguard")
    out = subprocess.run([binary, "scan", "--format", "json", str(tmp_path)], capture_output=True, text=True)
    report = json.loads(out.stdout)
    by_file = {os.path.basename(f["path"]): f["verdict"] for f in report["files"]}
    missed = [f"{e['module']}.{e['name']}: {by_file.get(f'{i:04d}.pkl')}"
              for i, e in enumerate(classes) if by_file.get(f"{i:04d}.pkl") != "malicious"]
    assert not missed, missed


REAL = ["sd_sequential.pt", "tied.pt", "views.pt", "zip_proto4.pt", "zip_proto5.pt", "lightning.ckpt",
        "training_checkpoint.pth", "numpy_in_torch_p2.pt", "all_dtypes.pt", "zip_big_endian.pt", "zip_deflated.pt",
        "legacy_stream.pt", "legacy_tar.pt", "plain_pickle.pkl", "joblib/dict.joblib", "joblib/list_compress0.joblib",
        "npy/f64_fortran.npy", "npy/be_i4.npy", "npy/f16_scalar.npy"]


@pytest.mark.parametrize("name", REAL)
def test_real_checkpoints_need_nothing_unmodelled(sb, name):
    """Real checkpoints (torch TAR extraction into a temp dir and numpy's header parse
    included) require level 0, and their loaders return tensors."""
    with open(os.path.join(REPO, "tests", "fixtures", "models", name), "rb") as f:
        data = f.read()
    container = ("torchzip" if data[:2] == b"PK" else "joblib" if name.endswith(".joblib")
                 else "npy" if name.endswith(".npy") else "pickle" if name.endswith(".pkl") else "legacy")
    rep = sb.load(os.path.basename(name), data, gen.LOADERS[container], timeout=30)
    assert rep["ok"], rep
    level, obs = check.required_level(rep["results"], REG)
    assert level == 0, [o.as_json() for o in obs if o.level]
    prim = rep["results"][gen.PRIMARY[container]]
    assert prim["raised"] is None and prim["tensors"], prim
