"""Find the ``modelguard`` executable that the wheel installed (or the one named by
``$MODELGUARD_BIN``)."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

__all__ = ["find_modelguard_bin", "BinaryNotFoundError"]


class BinaryNotFoundError(FileNotFoundError):
    """No ``modelguard`` executable was found in any place a wheel install puts it."""


def _candidates() -> list[Path]:
    exe = "modelguard" + (sysconfig.get_config_var("EXE") or "")
    places: list[Path] = []
    # The environment's scripts folder (pip install into a venv or the system).
    places.append(Path(sysconfig.get_path("scripts")))
    # A venv built on a base interpreter that has the package.
    places.append(Path(sysconfig.get_path("scripts", vars={"base": sys.base_prefix})))
    # pip install --prefix: <prefix>/lib/pythonX.Y/site-packages/modelguard -> <prefix>/bin
    here = Path(__file__).resolve().parent
    for parent in here.parents:
        if parent.name == "lib" or parent.name == "Lib":
            places.append(parent.parent / ("Scripts" if os.name == "nt" else "bin"))
            break
    # pip install --target DIR: DIR/modelguard and DIR/bin
    places.append(here.parent / "bin")
    # pip install --user
    user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        places.append(Path(sysconfig.get_path("scripts", scheme=user_scheme)))
    return [p / exe for p in places]


def find_modelguard_bin() -> str:
    """The path of the ``modelguard`` executable.

    ``$MODELGUARD_BIN`` wins (a system install, or a development build); otherwise the places
    where installing the wheel puts it, in the order pip uses them. The PATH is not searched:
    the executable must be the one that came with this package, not whatever is first on PATH.
    """
    override = os.environ.get("MODELGUARD_BIN")
    if override:
        if not os.access(override, os.X_OK):
            raise BinaryNotFoundError(f"$MODELGUARD_BIN={override!r} is not an executable file")
        return override
    tried = _candidates()
    for path in tried:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise BinaryNotFoundError(
        "the modelguard executable was not found; looked in: "
        + ", ".join(str(p) for p in tried)
        + " (set $MODELGUARD_BIN to use another build)"
    )
