"""``load``, ``load_numpy`` and ``scan``: a model file in, tensors (or a report) out, with the
parsing done by the jailed executable and the loading by ``safetensors``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ._version import __version__
from ._cli import EXIT_ERROR, check_fail_on, convert, run_json
from ._errors import ModelguardError
from ._report import Report

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["load", "load_numpy", "load_torch_file", "scan", "converted", "cache_dir", "sha256_file", "write_atomically"]


def cache_dir() -> Path:
    """Where conversions are kept: ``$MODELGUARD_CACHE``, else ``$XDG_CACHE_HOME/modelguard``,
    else ``~/.cache/modelguard``."""
    if os.environ.get("MODELGUARD_CACHE"):
        return Path(os.environ["MODELGUARD_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "modelguard" if xdg else Path.home() / ".cache" / "modelguard"


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomically(path: Path, text: str) -> None:
    """Write through a unique temporary file and a rename (threads and processes may race)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _check_same_input(report: dict[str, Any], sha: str, src: Path) -> None:
    # The executable hashes the very bytes its jail parsed; a file replaced between our hash
    # and its read must not be cached (or returned) under the old hash.
    if report.get("input_sha256") not in (None, sha):
        raise ModelguardError(f"{src}: the file changed while it was being converted", report)


@contextlib.contextmanager
def converted(
    path: str | os.PathLike[str],
    *,
    fail_on: str = "high",
    sandbox: str | None = None,
    cache: bool = True,
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The safetensors conversion of ``path`` and its report, for the duration of the block.

    With ``cache`` the file is kept in ``cache_dir()`` under the input's sha256 (and the tool
    version and ``fail_on``), so a second load of the same bytes does not convert again.
    Raises ``UnsafeModelError`` when refused, ``ModelguardError`` on any other failure.
    """
    src = Path(path)
    if not src.exists():
        raise ModelguardError(f"{src}: no such file")
    if src.is_dir():
        raise ModelguardError(
            f"{src} is a folder; use from_pretrained_safely() for Hugging Face folders"
        )
    check_fail_on(fail_on)
    if not cache:
        with tempfile.TemporaryDirectory(prefix="modelguard-") as tmp:
            out = Path(tmp) / "model.safetensors"
            report = convert(src, out, fail_on=fail_on, sandbox=sandbox)
            yield out, report
        return
    sha = sha256_file(src)
    key = hashlib.sha256(f"{sha}|{__version__}|{fail_on}".encode()).hexdigest()[:32]
    root = cache_dir()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    out, meta = root / f"{key}.safetensors", root / f"{key}.json"
    found: dict[str, Any] | None = None
    if out.is_file() and meta.is_file():
        with contextlib.suppress(OSError, ValueError):
            found = json.loads(meta.read_text())
    if found is not None and found.get("input_sha256") == sha:
        yield out, found
        return
    report = convert(src, out, fail_on=fail_on, sandbox=sandbox)
    _check_same_input(report, sha, src)
    # The report last: a report on disk means its output is complete.
    write_atomically(meta, json.dumps(report))
    yield out, report


def load(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    *,
    fail_on: str = "high",
    sandbox: str | None = None,
    cache: bool = True,
) -> dict[str, torch.Tensor]:
    """Load the tensors of a checkpoint (``.pt``/``.pth``/``.bin``/``.ckpt``, TorchScript,
    pickle, numpy, joblib) without running any of its code.

    The file is converted to safetensors by the jailed ``modelguard`` executable and loaded
    with ``safetensors.torch``. Names are flattened with ``.`` (``model.0.weight``), exactly as
    ``modelguard convert`` names them. Raises ``UnsafeModelError`` (with ``.findings``) when the
    file is refused and ``ModelguardError`` on any other failure.
    """
    with converted(path, fail_on=fail_on, sandbox=sandbox, cache=cache) as (out, _):
        return load_torch_file(out, device)


def load_torch_file(path: Path, device: str | torch.device) -> dict[str, torch.Tensor]:
    """``safetensors.torch.load_file``, plus the ``meta`` device (shapes and dtypes only),
    which transformers asks for and safetensors does not take."""
    from safetensors.torch import load_file

    if str(device) == "meta":
        return {k: v.to("meta") for k, v in load_file(path, device="cpu").items()}
    return load_file(path, device=str(device))


# safetensors dtypes numpy has no type for.
_NOT_IN_NUMPY = {"BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2"}


def load_numpy(
    path: str | os.PathLike[str],
    *,
    fail_on: str = "high",
    sandbox: str | None = None,
    cache: bool = True,
) -> dict[str, np.ndarray]:
    """Like ``load``, but numpy arrays (torch is not needed). Raises ``ModelguardError`` for
    tensors numpy cannot hold (bfloat16, float8), naming them, rather than changing them."""
    from safetensors.numpy import load_file

    with converted(path, fail_on=fail_on, sandbox=sandbox, cache=cache) as (out, report):
        odd = [(t["name"], t["dtype"]) for t in report.get("tensors", []) if t["dtype"] in _NOT_IN_NUMPY]
        if odd:
            listed = ", ".join(f"{n} ({d})" for n, d in odd[:5])
            raise ModelguardError(
                f"{path}: numpy has no dtype for {listed}; use modelguard.load() (torch)", report
            )
        return load_file(out)


def scan(
    *paths: str | os.PathLike[str],
    fail_on: str | None = None,
    sandbox: str | None = None,
) -> Report:
    """Scan files and folders (recursively) by content, in the jail. Never raises for
    findings: the ``Report`` says what was found (``report.ok``, ``report.findings``). Raises
    ``ModelguardError`` only when the scanner produced no report at all."""
    if not paths:
        raise TypeError("scan() needs at least one path")
    args = ["scan", "--format", "json"]
    if fail_on is not None:  # otherwise modelguard.toml's, else high
        args += ["--fail-on", check_fail_on(fail_on)]
    if sandbox is not None:
        args += ["--sandbox", sandbox]
    args += [os.fspath(p) for p in paths]
    code, doc, stderr = run_json(args)
    if doc is None:
        raise ModelguardError(stderr or f"modelguard scan exited with {code} and no report")
    report = Report.from_json(doc)
    if report.exit_code != code and code != EXIT_ERROR:
        raise ModelguardError(f"modelguard scan exited with {code} but reported {report.exit_code}")
    return report
