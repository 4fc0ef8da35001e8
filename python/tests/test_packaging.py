"""The package as installed: the wheel's executable is the one found (not whatever is on PATH),
it is typed, and the two pyproject.toml files (python/ for pip, the root for pre-commit) agree."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from conftest import REPO

import modelguard


def test_the_wheel_executable_is_used() -> None:
    assert "MODELGUARD_BIN" not in os.environ
    exe = Path(modelguard.find_modelguard_bin())
    assert exe.parent == Path(sysconfig.get_path("scripts"))
    out = subprocess.run([sys.executable, "-m", "modelguard", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"modelguard {modelguard.__version__}"


def test_versions_agree() -> None:
    cargo = tomllib.loads((REPO / "Cargo.toml").read_text())
    assert modelguard.__version__ == cargo["package"]["version"]


def test_typed() -> None:
    assert (Path(modelguard.__file__).parent / "py.typed").is_file()


def test_the_two_pyprojects_agree() -> None:
    sub = tomllib.loads((REPO / "python/pyproject.toml").read_text())
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert sub["build-system"] == root["build-system"]
    # The paths differ by where each file sits, and must name the same things.
    assert (REPO / "python" / sub["project"].pop("readme")).samefile(REPO / root["project"].pop("readme"))
    assert (REPO / "python" / sub["tool"]["maturin"].pop("manifest-path")).resolve() == (
        REPO / root["tool"]["maturin"].pop("manifest-path")
    ).resolve()
    assert root["tool"]["maturin"].pop("python-source") == "python"
    assert sub["project"] == root["project"]
    assert sub["tool"] == root["tool"]


def test_bad_override_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELGUARD_BIN", "/nonexistent/modelguard")
    with pytest.raises(modelguard.BinaryNotFoundError, match="MODELGUARD_BIN"):
        modelguard.find_modelguard_bin()
