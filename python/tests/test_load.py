"""modelguard.load / load_numpy on every committed fixture, against the safetensors files the
fixture generator made with torch/numpy/joblib themselves (tests/fixtures/expected)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import FILE_CASES, FIXTURES, case_id
from safetensors.numpy import load_file as np_load_file
from safetensors.torch import load_file

import modelguard


def assert_same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        assert got[k].shape == want[k].shape, k
        # Byte equality: NaNs and -0.0 included, and dtypes torch.equal cannot compare (float8).
        assert got[k].resolve_conj().resolve_neg().contiguous().reshape(-1).view(torch.uint8).equal(want[k].resolve_conj().resolve_neg().contiguous().reshape(-1).view(torch.uint8)), k


@pytest.mark.parametrize("case", FILE_CASES, ids=case_id)
def test_load_gives_the_reference_tensors(case: dict[str, Any]) -> None:
    got = modelguard.load(FIXTURES / case["input"])
    assert_same(got, load_file(FIXTURES / case["expected"]))


@pytest.mark.parametrize("case", [c for c in FILE_CASES if c["format"] in ("npy", "npz")], ids=case_id)
def test_load_numpy_equals_numpy_load(case: dict[str, Any]) -> None:
    path = FIXTURES / case["input"]
    got = modelguard.load_numpy(path)
    want = np.load(path, allow_pickle=False)
    arrays = {"tensor": want} if isinstance(want, np.ndarray) else dict(want)
    if case["format"] == "npz":
        assert sorted(got) == sorted(arrays)
    for name, arr in arrays.items():
        key = name if case["format"] == "npz" else next(iter(got))
        # safetensors stores little-endian, C order: values and dtype kind/size are what count.
        assert got[key].shape == arr.shape
        assert got[key].dtype.newbyteorder("=") == arr.dtype.newbyteorder("=")
        np.testing.assert_array_equal(got[key], arr)


def test_load_numpy_refuses_dtypes_numpy_lacks() -> None:
    with pytest.raises(modelguard.ModelguardError, match="numpy has no dtype for .*BF16"):
        modelguard.load_numpy(FIXTURES / "models/all_dtypes.pt")


def test_load_numpy_of_a_torch_file() -> None:
    got = modelguard.load_numpy(FIXTURES / "models/sd_sequential.pt")
    want = np_load_file(FIXTURES / "expected/sd_sequential.safetensors")
    assert sorted(got) == sorted(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


def test_device_and_cache(private_cache: Path) -> None:
    path = FIXTURES / "models/sd_sequential.pt"
    first = modelguard.load(path, device="meta")
    assert all(t.device.type == "meta" for t in first.values())
    cached = sorted(private_cache.glob("*.safetensors"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    second = modelguard.load(path, device=torch.device("cpu"))
    assert cached[0].stat().st_mtime_ns == stamp, "the second load converted again"
    assert_same(second, load_file(FIXTURES / "expected/sd_sequential.safetensors"))


def test_without_cache_nothing_is_kept(private_cache: Path) -> None:
    modelguard.load(FIXTURES / "models/tied.pt", cache=False)
    assert list(private_cache.iterdir()) == []


def test_a_changed_file_is_converted_again(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(3)}, path)
    assert modelguard.load(path)["w"].sum() == 0
    torch.save({"w": torch.ones(3)}, path)
    assert modelguard.load(path)["w"].sum() == 3


def test_errors_are_modelguard_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"PK\x03\x04" + os.urandom(64))
    with pytest.raises(modelguard.ModelguardError) as e:
        modelguard.load(garbage)
    assert not isinstance(e.value, modelguard.UnsafeModelError)
    with pytest.raises(modelguard.ModelguardError):
        modelguard.load(tmp_path / "missing.pt")
    with pytest.raises(ValueError):
        modelguard.load(FIXTURES / "models/tied.pt", fail_on="severe")
    with pytest.raises(modelguard.ModelguardError, match="from_pretrained_safely"):
        modelguard.load(FIXTURES / "models/hf_single")


def test_scan_reports_clean_and_malicious_files() -> None:
    clean = modelguard.scan(FIXTURES / "models/sd_sequential.pt")
    assert clean.ok and clean.exit_code == 0 and clean.findings == []
    assert clean.files[0].verdict == "clean" and clean.files[0].format == "torch-zip"
    bad = modelguard.scan(FIXTURES / "malicious/files/t01_os_system_proto4.pkl")
    assert not bad.ok and bad.exit_code == 1
    assert {f.rule_id for f in bad.findings} >= {"MG001"}
    assert any(f.global_name == "os.system" for f in bad.findings)
    lenient = modelguard.scan(FIXTURES / "malicious/files/t01_os_system_proto4.pkl", fail_on="none")
    assert lenient.exit_code == 0 and lenient.findings
