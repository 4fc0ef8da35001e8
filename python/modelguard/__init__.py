"""modelguard: load untrusted ML model files without running their code.

Every model byte is parsed by the ``modelguard`` executable that ships in this wheel, inside
its jail (namespaces, rlimits, Landlock and seccomp, or a WASI guest), with an allowlist-based
pickle machine of its own. Python only receives safetensors files, loaded by ``safetensors``.

- ``load(path)``: a checkpoint's tensors as ``torch.Tensor`` (``load_numpy`` for numpy);
- ``scan(*paths)``: what loading them with pickle would run, as a ``Report``;
- ``guard_torch_load()``: make ``torch.load`` in this process go through modelguard;
- ``from_pretrained_safely(repo)``: a Hugging Face folder (or cached repo) as safetensors.

Refused files raise ``UnsafeModelError`` (with ``.findings``); every other failure raises
``ModelguardError``.
"""

from ._binary import BinaryNotFoundError, find_modelguard_bin
from ._errors import ModelguardError, UnsafeModelError
from ._hf import from_pretrained_safely
from ._load import cache_dir, load, load_numpy, scan
from ._report import FileResult, Finding, Report
from ._torch_guard import TorchLoadGuard, guard_torch_load
from ._version import __version__

__all__ = [
    "BinaryNotFoundError",
    "FileResult",
    "Finding",
    "ModelguardError",
    "Report",
    "TorchLoadGuard",
    "UnsafeModelError",
    "__version__",
    "cache_dir",
    "find_modelguard_bin",
    "from_pretrained_safely",
    "guard_torch_load",
    "load",
    "load_numpy",
    "scan",
]
