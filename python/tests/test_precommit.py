"""The `modelguard-scan` pre-commit hook, run by the real pre-commit in a temporary git
repository: a commit adding a malicious pickle is blocked with the finding shown, a clean
checkpoint passes.

The hook is installed from the wheel under test (``$MODELGUARD_WHEEL``) through a ``local``
repo whose fields are read from our ``.pre-commit-hooks.yaml``, so the manifest itself is what
runs. ``test_try_repo`` installs this repository the way users do (``pip install .`` at its
root, a full Rust build); it runs in CI, or with ``MODELGUARD_SLOW_TESTS=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FIXTURES, REPO

HOOKS: list[dict[str, Any]] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path / "pre-commit-home"))
    r = tmp_path / "work"
    r.mkdir()
    assert git(r, "init", "-q").returncode == 0
    shutil.copy(FIXTURES / "models/sd_sequential.pt", r / "good.pt")
    shutil.copy(FIXTURES / "malicious/files/t01_os_system_proto4.pkl", r / "bad.pkl")
    (r / "notes.txt").write_text("not a model\n")
    return r


def wheel() -> str:
    w = os.environ.get("MODELGUARD_WHEEL")
    if not w:
        if os.environ.get("CI"):
            pytest.fail("CI must set MODELGUARD_WHEEL (tests/run.sh does)")
        pytest.skip("MODELGUARD_WHEEL is not set (tests/run.sh sets it to the wheel it built)")
    return w


def test_the_manifest_declares_the_scan_hook() -> None:
    (hook,) = [h for h in HOOKS if h["id"] == "modelguard-scan"]
    assert hook["entry"] == "modelguard scan" and hook["language"] == "python"
    import re

    files = re.compile(hook["files"])
    for name in ["a.pt", "b.PTH", "c.bin", "d.ckpt", "e.pkl", "f.joblib", "g.npz", "h.safetensors"]:
        assert files.search(name), name
    for name in ["a.py", "b.txt", "pt.md"]:
        assert not files.search(name), name


@pytest.mark.usefixtures("no_marker_created")
def test_a_commit_of_a_malicious_pickle_is_blocked(repo: Path) -> None:
    (hook,) = [dict(h) for h in HOOKS if h["id"] == "modelguard-scan"]
    hook["additional_dependencies"] = [wheel()]
    config = {"repos": [{"repo": "local", "hooks": [hook]}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    install = subprocess.run([*PRE_COMMIT, "install"], cwd=repo, capture_output=True, text=True)
    assert install.returncode == 0, install.stderr

    assert git(repo, "add", ".pre-commit-config.yaml", "good.pt", "notes.txt").returncode == 0
    ok = git(repo, "commit", "-q", "-m", "clean model")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "modelguard scan (model files)" in ok.stdout + ok.stderr

    assert git(repo, "add", "bad.pkl").returncode == 0
    blocked = git(repo, "commit", "-q", "-m", "malicious model")
    out = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, out
    assert "MG001" in out and "os.system" in out, out
    assert git(repo, "log", "--format=%s").stdout.split("\n")[0] == "clean model"

    run = subprocess.run(
        [*PRE_COMMIT, "run", "modelguard-scan", "--files", "good.pt", "notes.txt"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.usefixtures("no_marker_created")
def test_try_repo(repo: Path) -> None:
    if not (os.environ.get("CI") or os.environ.get("MODELGUARD_SLOW_TESTS")):
        pytest.skip("builds the whole crate through pip; set MODELGUARD_SLOW_TESTS=1 (CI runs it)")
    if not (REPO / ".git").exists():
        pytest.skip("needs the git checkout of this repository")
    env = dict(os.environ)
    # Reuse the build cache (pre-commit builds in a clone of its own).
    env.setdefault("CARGO_TARGET_DIR", str(REPO / "target"))
    run = subprocess.run(
        [*PRE_COMMIT, "try-repo", str(REPO), "modelguard-scan", "--files", "bad.pkl", "good.pt"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "MG001" in out, out
