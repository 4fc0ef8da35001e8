"""Shared fixtures: the repo's committed model fixtures (made by real torch/numpy/joblib, see
tests/fixtures/generate.py) and the malicious corpus (tests/fixtures/malicious)."""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
CASES: list[dict[str, Any]] = json.loads((FIXTURES / "manifest.json").read_text())
MALICIOUS: list[dict[str, Any]] = json.loads((FIXTURES / "malicious" / "manifest.json").read_text())
FILE_CASES = [c for c in CASES if not (FIXTURES / c["input"]).is_dir() and not c["options"]]


def case_id(c: dict[str, Any]) -> str:
    return str(c.get("case"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own conversion cache (and never the user's)."""
    d = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MODELGUARD_CACHE", str(d))
    return d


def markers() -> set[str]:
    return set(glob.glob("/tmp/modelguard-marker-*"))


@pytest.fixture
def no_marker_created() -> Iterator[None]:
    """Fails the test if any malicious payload ran (each one creates a marker file)."""
    before = markers()
    yield
    created = markers() - before
    assert not created, f"a payload ran: {sorted(created)}"
