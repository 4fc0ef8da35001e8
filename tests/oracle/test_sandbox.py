"""The sandbox's isolation, proved with real loads of pickles that try to get out.

Each payload is a real pickle whose REDUCE calls a real function (os.system, open for writing,
os.remove, socket.connect ...); the assertions look at the host's filesystem and at what the
loader inside reported, never at modelguard.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pk  # noqa: E402
from sandbox import Sandbox, ensure_bubblewrap  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))


def reduce_pickle(module, name, args, proto=2) -> bytes:
    import random
    e = pk.Emitter(proto, random.Random(0))
    e.glob(module, name)
    e.lit(tuple(args))
    e.op("REDUCE")
    return pk.encode(e.stop())


def seq_pickle(calls, proto=2) -> bytes:
    """A tuple of several REDUCE results: every call runs, in order (errors stop the load)."""
    import random
    e = pk.Emitter(proto, random.Random(0))
    e.mark()
    for module, name, args in calls:
        e.glob(module, name)
        e.lit(tuple(args))
        e.op("REDUCE")
    e.op("TUPLE")
    return pk.encode(e.stop())


@pytest.fixture(scope="module")
def sb():
    ensure_bubblewrap()
    s = Sandbox()
    s.start()
    yield s
    s.close()


def load(sb, data, loaders=("pickle",)):
    rep = sb.load("c.pkl", data, list(loaders), timeout=20)
    assert rep["ok"], rep
    return rep["results"]


def test_control_the_payload_really_runs(sb):
    """A write inside the tmpfs succeeds and the harness notices it (so the tests below are
    not passing because nothing ever runs)."""
    res = load(sb, reduce_pickle("builtins", "open", ["/tmp/w/pickle/written-by-payload", "w"]))["pickle"]
    assert res["raised"] is None
    assert any(p.endswith("written-by-payload") for p in res["tmpfs_writes"]), res
    assert any(e["category"] == "file-write" for e in res["events"]), res["events"]


def test_write_outside_tmpfs_fails_and_host_untouched(sb, tmp_path):
    target = tmp_path / f"escape-{uuid.uuid4().hex}"
    repo_target = os.path.join(REPO, f"oracle-escape-{uuid.uuid4().hex}")
    for path in (str(target), repo_target, "/usr/oracle-escape", "/oracle-escape", "/root/oracle-escape",
                 "/opt/oracle/escape", "/proc/oracle-escape"):
        res = load(sb, reduce_pickle("builtins", "open", [path, "w"]))["pickle"]
        assert res["raised"] is not None, (path, res)
        assert ("Read-only file system" in res["raised"] or "No such file or directory" in res["raised"]
                or "Permission denied" in res["raised"]), res["raised"]
        assert not res["tmpfs_writes"], res
    assert not target.exists()
    assert not os.path.exists(repo_target)
    assert not os.path.exists("/usr/oracle-escape") and not os.path.exists("/oracle-escape")


def test_process_cannot_write_the_host_either(sb, tmp_path):
    """os.system runs (the audit hook sees it) but its shell only reaches the tmpfs."""
    target = tmp_path / "from-shell"
    cmd = f"touch {target}; touch /tmp/w/pickle/shell-was-here; echo x > {REPO}/oracle-shell"
    res = load(sb, reduce_pickle("os", "system", [cmd]))["pickle"]
    assert any(e["category"] == "process" for e in res["events"]), res["events"]
    assert not target.exists()
    assert not os.path.exists(os.path.join(REPO, "oracle-shell"))
    assert any(p.endswith("shell-was-here") for p in res["tmpfs_writes"]), res


def test_delete_fails(sb, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    for path in (str(victim), os.path.join(REPO, "README.md"), "/usr/bin/env"):
        res = load(sb, reduce_pickle("os", "remove", [path]))["pickle"]
        assert res["raised"] is not None, (path, res)
    assert victim.read_text() == "keep me"
    assert os.path.exists(os.path.join(REPO, "README.md"))
    assert os.path.exists("/usr/bin/env")


def test_checkout_and_secrets_are_not_visible(sb):
    """Only the venv's folder of the checkout is mounted; /etc holds a few loader files."""
    for path in (os.path.join(REPO, "README.md"), os.path.join(REPO, "src"), "/etc/shadow", "/etc/passwd",
                 "/home", "/root/.ssh", "/root/.cargo", os.path.join(REPO, ".git")):
        res = load(sb, reduce_pickle("os", "stat", [path]))["pickle"]
        assert res["raised"] is not None and "No such file or directory" in res["raised"], (path, res)
    # a checkout under /tmp is not even a mount point inside (its venv is bound at /opt/venv)
    listed = [] if REPO.startswith("/tmp/") else [("os", "listdir", [REPO])]
    res = load(sb, seq_pickle(listed + [("os", "listdir", ["/root"]), ("os", "listdir", ["/"])]))
    assert res["pickle"]["raised"] is None, res
    # what the loader returned is not reported, only its shape: list the tree from the host side
    # of the same argv instead
    from sandbox import bwrap_argv
    argv = " ".join(bwrap_argv(sb.venv, sb.staging))
    assert " /work " not in argv and f" {REPO} " not in argv and " /root " not in argv


def test_no_network(sb):
    """A listening socket on the host's loopback is unreachable from the sandbox."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    accepted = []
    srv.settimeout(5)

    def accept():
        try:
            c, _ = srv.accept()
            accepted.append(c)
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    data = seq_pickle([("socket", "create_connection", [("127.0.0.1", port), 3])])
    res = load(sb, data)["pickle"]
    t.join()
    srv.close()
    assert res["raised"] is not None, res
    assert not accepted
    assert any(e["category"] == "network" for e in res["events"]), res["events"]


def test_timeout_kills_the_load_and_strays(sb):
    """A load that never ends is killed; a process it moved out of its group (setsid) is killed too."""
    data = seq_pickle([("os", "system", ["setsid sleep 1000 & sleep 1000"])])
    rep = sb.load("c.pkl", data, ["pickle"], timeout=3)
    assert rep["ok"], rep
    assert rep["results"]["pickle"]["raised"] == "oracle: timeout"
    assert rep["strays"] >= 1
    # the sandbox still answers
    res = load(sb, reduce_pickle("builtins", "len", [[1, 2]]))["pickle"]
    assert res["raised"] is None


def test_memory_limit(sb):
    rep = sb.load("c.pkl", reduce_pickle("builtins", "bytearray", [16 << 30]), ["pickle"], timeout=20)
    assert rep["ok"], rep
    assert "MemoryError" in (rep["results"]["pickle"]["raised"] or ""), rep
