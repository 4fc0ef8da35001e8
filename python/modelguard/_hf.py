"""``from_pretrained_safely``: a Hugging Face folder of pickled weights in, a folder that
``from_pretrained(..., use_safetensors=True)`` loads out."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ._cli import check_fail_on, convert, run_convert
from ._errors import ModelguardError
from ._load import cache_dir, sha256_file, write_atomically
from ._version import __version__

__all__ = ["from_pretrained_safely"]

_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")


def from_pretrained_safely(
    repo: str | os.PathLike[str],
    *,
    fail_on: str = "high",
    sandbox: str | None = None,
) -> Path:
    """The path of a safetensors version of a Hugging Face model, for
    ``AutoModel.from_pretrained(path, use_safetensors=True)``.

    ``repo`` is a local folder (``pytorch_model.bin``, or shards with
    ``pytorch_model.bin.index.json``) or, when no such folder exists, a repo id
    ``org/name[@rev]`` of the local Hugging Face cache. The weights are converted in the jail;
    configuration and tokenizer files are copied beside them (never ``*.py``, so remote code
    stays out). Folders go to ``cache_dir()/hf/<digest of the folder's files>``, cache repos to
    ``models--org--name/modelguard/<commit>/``. A folder that already holds safetensors weights
    and no pickled ones is returned as it is. Raises ``UnsafeModelError`` when refused.
    """
    check_fail_on(fail_on)
    folder = Path(os.fspath(repo))
    if not folder.exists() and isinstance(repo, str) and not os.path.isabs(repo):
        done = run_convert(["--hf-cache", repo], folder, fail_on=fail_on, sandbox=sandbox)
        return Path(done["output"])
    if not folder.is_dir():
        raise ModelguardError(f"{folder} is not a folder")
    has_pickles = any((folder / n).is_file() for n in _WEIGHTS)
    if not has_pickles:
        if any((folder / n).is_file() for n in _SAFETENSORS):
            return folder
        raise ModelguardError(f"{folder} holds neither {_WEIGHTS[0]} nor {_WEIGHTS[1]}")
    out = cache_dir() / "hf" / _folder_key(folder, fail_on)
    marker = out.with_suffix(".json")
    if out.is_dir() and marker.is_file():
        return out
    out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        report = convert(folder, out, fail_on=fail_on, sandbox=sandbox)
    except ModelguardError:
        if out.is_dir() and marker.is_file():
            return out  # another process converted the same folder meanwhile
        raise
    write_atomically(marker, json.dumps(report))
    return out


def _folder_key(folder: Path, fail_on: str) -> str:
    """A digest of every regular file's name and content (weights, configs, tokenizers), so
    that a changed file means a new conversion."""
    h = hashlib.sha256(f"{__version__}|{fail_on}".encode())
    for p in sorted(folder.iterdir()):
        if p.is_file():
            h.update(f"{p.name}\0{sha256_file(p)}\n".encode())
    return h.hexdigest()[:32]
