"""The malicious corpus (tests/fixtures/malicious: every payload verified to fire under the
loader it targets) through every entry point of the Python API: each is refused with its
findings, and no payload ever runs (no marker file appears)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from conftest import FIXTURES, MALICIOUS, case_id

import modelguard


@pytest.mark.usefixtures("no_marker_created")
@pytest.mark.parametrize("case", MALICIOUS, ids=case_id)
def test_every_payload_is_refused_everywhere(case: dict[str, Any]) -> None:
    path = FIXTURES / "malicious" / case["file"]
    with pytest.raises(modelguard.UnsafeModelError) as e:
        modelguard.load(path)
    assert e.value.findings, "refused without findings"
    assert any(f.severity in ("high", "critical") for f in e.value.findings)
    with pytest.raises(modelguard.UnsafeModelError):
        modelguard.load_numpy(path, cache=False)
    with modelguard.guard_torch_load(), pytest.raises(modelguard.UnsafeModelError):
        torch.load(path)
    report = modelguard.scan(path)
    assert report.exit_code == 1 and report.findings


@pytest.mark.usefixtures("no_marker_created")
def test_the_whole_corpus_in_one_scan() -> None:
    report = modelguard.scan(FIXTURES / "malicious" / "files")
    assert report.exit_code == 1
    assert len(report.files) == len(MALICIOUS)
    assert all(f.verdict in ("malicious", "suspicious") for f in report.files), [
        (f.path, f.verdict) for f in report.files if f.verdict not in ("malicious", "suspicious")
    ]
