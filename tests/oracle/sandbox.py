"""The isolated runner: a bubblewrap sandbox holding a fork server (worker.py).

Isolation (each layer independent of the loaders being honest):
  * bubblewrap: new user, pid, network (no interface but lo, down), IPC, UTS and cgroup
    namespaces (--unshare-all), all capabilities dropped, --die-with-parent, --new-session,
    an empty environment;
  * the filesystem: only system folders (/usr, /lib*, /bin, a few files of /etc), the Python
    installation and the venv are mounted, all read-only; /tmp is a private tmpfs and the only
    writable place; the checkout, /root, /work and /home are not mounted at all;
  * the worker script and the candidate bytes enter through a read-only staging folder and the
    request pipe; the candidate is written into the tmpfs;
  * per load: a forked child with RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE and no core; a wall-clock
    timeout kills its process group; after every candidate every other process in the sandbox's
    pid namespace is killed and the tmpfs is compared with a snapshot (writes are reported);
  * the host kills the whole sandbox (and restarts it) when a reply does not come in time.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_VENV = os.path.join(REPO, "target", "venv-python")

ALL_LOADERS = ["pickle", "pickle_py", "torch", "torch_trace", "torch_wo", "joblib", "numpy", "numpy_trace"]


class SandboxError(RuntimeError):
    pass


def bwrap_path() -> str:
    p = shutil.which("bwrap")
    if not p:
        raise SandboxError("bubblewrap (bwrap) is not installed: apt-get install -y bubblewrap")
    return p


def python_dirs(venv: str) -> tuple[str, list[str]]:
    """The venv's interpreter and the folders it needs (the venv and its base installation)."""
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        raise SandboxError(f"no Python venv at {venv}")
    real = os.path.realpath(py)
    base = os.path.dirname(os.path.dirname(real))  # .../versions/3.11.7 or /usr
    dirs = [os.path.realpath(venv)]
    if not base.startswith("/usr"):
        dirs.append(base)
    return py, dirs


ETC_FILES = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
             "/etc/nsswitch.conf", "/etc/host.conf", "/etc/alternatives"]


def bwrap_argv(venv: str, staging: str, tmpfs_mb: int = 256) -> list[str]:
    py, dirs = python_dirs(venv)
    argv = [bwrap_path(), "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "PYTHONHASHSEED", "0",
            "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "MKL_NUM_THREADS", "1",
            "--setenv", "TORCH_HOME", "/tmp/torch", "--setenv", "NUMBA_DISABLE_JIT", "1",
            "--hostname", "oracle"]
    for d in ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin"]:
        if os.path.lexists(d):
            argv += ["--ro-bind", d, d] if not os.path.islink(d) else ["--symlink", os.readlink(d), d]
    for f in ETC_FILES:
        if os.path.exists(f):
            argv += ["--ro-bind", f, f]
    for d in dirs:
        if d == "/tmp" or d.startswith("/tmp/"):
            # A checkout under /tmp (a CI clone) would be hidden by the sandbox's own /tmp: the
            # venv is bound at a fixed place instead (a venv runs from wherever it is found).
            argv += ["--ro-bind", d, "/opt/venv"]
            py = "/opt/venv/bin/python"
        else:
            argv += ["--ro-bind", d, d]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(tmpfs_mb << 20), "--tmpfs", "/tmp",
             "--ro-bind", staging, "/opt/oracle",
             # the root of the new mount tree is itself a tmpfs (mount points are made on it):
             # read-only too, so /tmp (and /dev, which the worker watches) are the only writable places
             "--remount-ro", "/",
             "--chdir", "/tmp", "--", py, "-I", "/opt/oracle/worker.py"]
    return argv


class Sandbox:
    """A running sandbox (fork server). Not thread-safe; one per job."""

    def __init__(self, venv: str = DEFAULT_VENV, reply_timeout: float = 120.0):
        self.venv = venv
        self.reply_timeout = reply_timeout
        self.proc: subprocess.Popen | None = None
        self.staging = tempfile.mkdtemp(prefix="oracle-staging-")
        shutil.copy(os.path.join(HERE, "worker.py"), os.path.join(self.staging, "worker.py"))
        os.chmod(self.staging, 0o755)
        self.restarts = 0

    def start(self):
        argv = bwrap_argv(self.venv, self.staging)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        ready = self._read_line(180.0)
        if not ready or not json.loads(ready).get("ready"):
            self.kill()
            raise SandboxError("the sandbox worker did not start")

    def _read_line(self, timeout: float) -> str | None:
        assert self.proc and self.proc.stdout
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buf = getattr(self, "_buf", b"")
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self._buf = buf
                return None
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self._buf = b""
                return None
            buf += chunk
        line, _, rest = buf.partition(b"\n")
        self._buf = rest
        return line.decode()

    def request(self, req: dict, timeout: float | None = None) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc and self.proc.stdin
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.kill()
            self.restarts += 1
            self.start()
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        line = self._read_line(timeout or self.reply_timeout)
        if line is None:
            self.kill()
            self.restarts += 1
            return {"ok": False, "error": "sandbox: no reply in time (killed and restarted)"}
        return json.loads(line)

    def load(self, name: str, data: bytes, loaders: list[str], timeout: float = 20.0) -> dict:
        req = {"op": "load", "name": name, "data": base64.b64encode(data).decode(), "loaders": loaders,
               "timeout": timeout}
        return self.request(req, timeout=timeout * len(loaders) + 30)

    def kill(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                pass
            self.proc = None
            self._buf = b""

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                assert self.proc.stdin
                self.proc.stdin.write(b'{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except Exception:  # noqa: BLE001
                pass
        self.kill()
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()


def ensure_bubblewrap() -> None:
    """Install bubblewrap from Debian when it is missing and we are root."""
    if shutil.which("bwrap"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "bubblewrap"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not shutil.which("bwrap"):
        raise SandboxError("bubblewrap is missing (apt-get install -y bubblewrap)")


if __name__ == "__main__":
    # smoke test: python tests/oracle/sandbox.py FILE [loaders...]
    path = sys.argv[1]
    loaders = sys.argv[2:] or ALL_LOADERS
    with Sandbox() as sb:
        with open(path, "rb") as f:
            print(json.dumps(sb.load(os.path.basename(path), f.read(), loaders), indent=1))
