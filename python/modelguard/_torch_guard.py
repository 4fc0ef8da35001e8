"""``guard_torch_load()``: route every ``torch.load`` in the process through modelguard.

Existing code (``model.load_state_dict(torch.load(path))``, transformers' ``load_state_dict``,
``torch.hub``) keeps working unchanged, but the pickle is parsed by the jailed executable and
never by Python's unpickler. What comes back is what ``torch.load(path, weights_only=True)``
returns for a state dict: the same keys in the same order, equal tensors (dtype, shape,
values), ``OrderedDict`` with its ``_metadata`` when the file had them, ``nn.Parameter`` where
the file pickled one. Anything else (nested dicts, epochs, optimizer state, whole modules,
TorchScript) raises ``ModelguardError``: modelguard builds tensors only. Two differences are
documented: tensors come back contiguous and unaliased (tied weights are separate copies,
which ``load_state_dict`` copies anyway), and the saved device is not restored
(``map_location=None`` means CPU).
"""

from __future__ import annotations

import collections
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ._errors import ModelguardError
from ._load import converted, load_torch_file

__all__ = ["guard_torch_load", "TorchLoadGuard"]

_FORCE_ENV = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"


@dataclass(frozen=True)
class _Settings:
    fail_on: str
    sandbox: str | None
    cache: bool


class _Patch:
    """The process-wide patch, shared by every active guard (nested or in several threads);
    the originals come back when the last guard is restored."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.active: list[TorchLoadGuard] = []
        self.original: Callable[..., Any] | None = None
        self.saved_env: str | None = None

    def push(self, guard: TorchLoadGuard) -> None:
        import torch
        import torch.serialization

        with self.lock:
            if not self.active:
                self.original = torch.serialization.load
                self.saved_env = os.environ.get(_FORCE_ENV)
                torch.load = torch.serialization.load = _guarded_load
                # Callers that took a reference before the patch (`from torch import load`)
                # still get torch's restricted unpickler rather than the full one.
                os.environ[_FORCE_ENV] = "1"
            self.active.append(guard)

    def pop(self, guard: TorchLoadGuard) -> None:
        import torch
        import torch.serialization

        with self.lock:
            if guard not in self.active:
                return
            self.active.remove(guard)
            if not self.active and self.original is not None:
                torch.load = torch.serialization.load = self.original
                if self.saved_env is None:
                    os.environ.pop(_FORCE_ENV, None)
                else:
                    os.environ[_FORCE_ENV] = self.saved_env
                self.original = None

    def settings(self) -> _Settings:
        with self.lock:
            if not self.active:
                raise ModelguardError("guard_torch_load is not active")
            return self.active[-1].settings


_PATCH = _Patch()


class TorchLoadGuard:
    """An active guard. Use it as a context manager, or call ``restore()``."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        _PATCH.push(self)

    def restore(self) -> None:
        """Put ``torch.load`` back (once every other active guard is restored too)."""
        _PATCH.pop(self)

    def __enter__(self) -> TorchLoadGuard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()


def guard_torch_load(
    *, fail_on: str = "high", sandbox: str | None = None, cache: bool = True
) -> TorchLoadGuard:
    """Make ``torch.load`` (and ``torch.serialization.load``) go through modelguard.

    Works as a context manager (``with modelguard.guard_torch_load(): ...``) or as a call that
    stays in force until ``.restore()``. A refused file raises ``UnsafeModelError``; a file
    whose content is more than a state dict raises ``ModelguardError``.
    """
    return TorchLoadGuard(_Settings(fail_on, sandbox, cache))


def _guarded_load(
    f: Any,
    map_location: Any = None,
    pickle_module: Any = None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
    **pickle_load_args: Any,
) -> Any:
    # weights_only and mmap change nothing here: nothing is unpickled in Python either way, and
    # the tensors are read from a safetensors file.
    del weights_only, mmap
    if pickle_module is not None:
        raise ModelguardError("guard_torch_load: a custom pickle_module cannot be honoured")
    unknown = set(pickle_load_args) - {"encoding"}
    if unknown:
        raise ModelguardError(f"guard_torch_load: unsupported torch.load arguments {sorted(unknown)}")
    device = _device(map_location)
    settings = _PATCH.settings()
    if isinstance(f, (str, os.PathLike)):
        path = Path(os.fspath(f))
        if path.name.endswith(".safetensors"):
            return load_torch_file(path, device)
        return _load_path(path, device, settings)
    if hasattr(f, "read"):
        with tempfile.TemporaryDirectory(prefix="modelguard-") as tmp:
            copy = Path(tmp) / "stream"
            with open(copy, "wb") as out:
                shutil.copyfileobj(f, out, 1 << 20)
            return _load_path(copy, device, settings)
    raise ModelguardError(f"guard_torch_load: cannot load from {type(f).__name__}")


def _device(map_location: Any) -> str:
    if map_location is None:
        return "cpu"
    if isinstance(map_location, str):
        return map_location
    import torch

    if isinstance(map_location, torch.device):
        return str(map_location)
    raise ModelguardError(
        "guard_torch_load: map_location must be None, a device string or a torch.device "
        f"(got {type(map_location).__name__})"
    )


def _load_path(path: Path, device: str, settings: _Settings) -> Any:
    import torch

    with converted(
        path, fail_on=settings.fail_on, sandbox=settings.sandbox, cache=settings.cache
    ) as (out, report):
        fmt = report.get("format")
        layout = report.get("layout") or {}
        if fmt == "torchscript":
            raise ModelguardError(
                f"{path} is a TorchScript archive: torch.load(weights_only=True) refuses it too "
                "(modelguard.load() gives its tensors)",
                report,
            )
        root = layout.get("root")
        if root != "tensor" and not layout.get("flat_state_dict"):
            raise ModelguardError(
                f"{path} is not a flat state dict (its root is {root or fmt!r}, or it holds "
                "non-tensor values): modelguard only builds tensors, so it cannot return what "
                "torch.load would; modelguard.load() gives the tensors with flattened names",
                report,
            )
        tensors = load_torch_file(out, device)
        if root == "tensor":
            return tensors["tensor"]
        names = [t["name"] for t in report.get("tensors", [])]
        if sorted(names) != sorted(tensors):
            raise ModelguardError(f"{path}: the report and the converted file disagree", report)
        result: dict[str, Any] = collections.OrderedDict() if root == "OrderedDict" else {}
        params = layout.get("parameters") or {}
        for name in names:
            t = tensors[name]
            if name in params:
                t = torch.nn.Parameter(t, requires_grad=bool(params[name]))
            result[name] = t
        metadata = layout.get("state_dict_metadata")
        if metadata is not None:
            setattr(
                result,
                "_metadata",
                collections.OrderedDict((prefix, dict(fields)) for prefix, fields in metadata),
            )
        return result


