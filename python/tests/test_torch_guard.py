"""guard_torch_load: torch.load under the guard returns what torch.load(weights_only=True)
returns for state dicts (ground truth: real torch, unguarded), refuses everything else, and
puts torch.load back afterwards."""

from __future__ import annotations

import collections
import io
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import FILE_CASES, FIXTURES, case_id

import modelguard

ORIGINAL_LOAD = torch.load


def assert_identical(got: Any, want: Any) -> None:
    """Same type, keys in the same order, equal tensors (dtype, shape, bytes), same Parameter
    wrapping and requires_grad, same _metadata."""
    if isinstance(want, torch.Tensor):
        assert type(got) is type(want)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.requires_grad == want.requires_grad
        assert got.resolve_conj().resolve_neg().contiguous().reshape(-1).view(torch.uint8).equal(want.resolve_conj().resolve_neg().contiguous().reshape(-1).view(torch.uint8))
        return
    assert type(got) is type(want)
    assert list(got) == list(want)
    for k in want:
        assert_identical(got[k], want[k])
    assert getattr(got, "_metadata", None) == getattr(want, "_metadata", None)


def flat_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def reference(case: dict[str, Any]) -> Any:
    """What torch itself returns for a committed fixture: weights_only=True, or for the files
    its restricted unpickler cannot read (protocols 4/5: opcodes it lacks), the full unpickler
    the manifest names as the reference. These are our generator's benign files; the guard
    reads them as the tensors they are, where weights_only=True would have refused."""
    path = FIXTURES / case["input"]
    try:
        return ORIGINAL_LOAD(path, weights_only=True)
    except Exception:
        if case.get("reference") == "torch.load(weights_only=False)":
            return ORIGINAL_LOAD(path, weights_only=False)
        return None


TORCH_CASES = [c for c in FILE_CASES if c["format"].startswith("torch")]


@pytest.mark.parametrize("case", TORCH_CASES, ids=case_id)
def test_guarded_torch_load_matches_weights_only(case: dict[str, Any]) -> None:
    path = FIXTURES / case["input"]
    want = reference(case)
    with modelguard.guard_torch_load():
        if want is not None and (flat_state_dict(want) or isinstance(want, torch.Tensor)):
            assert_identical(torch.load(path), want)
            assert_identical(torch.serialization.load(path, weights_only=True, mmap=True), want)
        else:
            # Nested checkpoints, whole modules, TorchScript: torch would return (or refuse)
            # Python objects; the guard refuses rather than guess.
            with pytest.raises(modelguard.ModelguardError) as e:
                torch.load(path)
            assert not isinstance(e.value, modelguard.UnsafeModelError)
    assert torch.load is ORIGINAL_LOAD


def test_the_expected_cases_are_flat(tmp_path: Path) -> None:
    # Guard against the test above silently taking the "refuse" branch for everything.
    flat = [c["case"] for c in TORCH_CASES if flat_state_dict(reference(c))]
    assert {"sd_sequential", "all_dtypes", "tied", "views", "zip_proto5", "zip_big_endian"} <= set(flat)
    # ...and for the refusing branch: {"step": int} beside the tensors is not a state dict.
    assert "legacy_stream" not in flat


def test_parameters_tensors_and_metadata_round_trip(tmp_path: Path) -> None:
    lin = torch.nn.Linear(3, 2)
    sd = {"w": torch.nn.Parameter(torch.randn(2, 3)), "b": torch.nn.Parameter(torch.zeros(2), requires_grad=False), "x": torch.arange(4)}
    cases = {
        "params.pt": sd,
        "linear.pt": lin.state_dict(keep_vars=True),
        "module_sd.pt": torch.nn.Sequential(lin, torch.nn.BatchNorm1d(2)).state_dict(),
        "bare.pt": torch.arange(6).reshape(2, 3).t(),
    }
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
    for name in cases:
        want = ORIGINAL_LOAD(tmp_path / name, weights_only=True)
        with modelguard.guard_torch_load():
            got = torch.load(tmp_path / name)
        assert_identical(got, want)
    with modelguard.guard_torch_load():
        got = torch.load(tmp_path / "params.pt")
    assert isinstance(got["w"], torch.nn.Parameter) and got["w"].requires_grad
    assert isinstance(got["b"], torch.nn.Parameter) and not got["b"].requires_grad
    assert not isinstance(got["x"], torch.nn.Parameter)


def test_file_objects_devices_and_meta() -> None:
    path = FIXTURES / "models/sd_sequential.pt"
    want = ORIGINAL_LOAD(path, weights_only=True)
    with modelguard.guard_torch_load():
        with open(path, "rb") as f:
            assert_identical(torch.load(f), want)
        assert_identical(torch.load(io.BytesIO(path.read_bytes()), map_location="cpu"), want)
        assert_identical(torch.load(str(path), map_location=torch.device("cpu")), want)
        meta = torch.load(path, map_location="meta")
        assert all(t.device.type == "meta" for t in meta.values())
        assert [(k, t.shape, t.dtype) for k, t in meta.items()] == [(k, t.shape, t.dtype) for k, t in want.items()]
        with pytest.raises(modelguard.ModelguardError, match="map_location"):
            torch.load(path, map_location=lambda storage, loc: storage)
        with pytest.raises(modelguard.ModelguardError, match="pickle_module"):
            torch.load(path, pickle_module=__import__("pickle"))


def test_transformers_load_state_dict_goes_through_the_guard() -> None:
    from transformers.modeling_utils import load_state_dict

    path = FIXTURES / "models/hf_single/pytorch_model.bin"
    want = load_state_dict(str(path))
    calls = []
    with modelguard.guard_torch_load():
        real = modelguard._torch_guard._load_path

        def counting(*a: Any, **k: Any) -> Any:
            calls.append(a[0])
            return real(*a, **k)

        modelguard._torch_guard._load_path = counting  # type: ignore[assignment]
        try:
            got = load_state_dict(str(path))
        finally:
            modelguard._torch_guard._load_path = real  # type: ignore[assignment]
    assert calls, "transformers did not call the guarded torch.load"
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k].equal(want[k]), k


@pytest.mark.usefixtures("no_marker_created")
def test_references_taken_before_the_guard_are_still_restricted() -> None:
    from torch import load as early_reference

    evil = FIXTURES / "malicious/files/t01_os_system_proto4.pkl"
    with modelguard.guard_torch_load():
        # TORCH_FORCE_WEIGHTS_ONLY_LOAD: torch's own restricted unpickler even when the caller
        # asks for weights_only=False.
        with pytest.raises(Exception, match="(?i)weights.only|unsupported global"):
            early_reference(evil, weights_only=False)


def test_guards_nest_and_restore(tmp_path: Path) -> None:
    outer = modelguard.guard_torch_load()
    assert torch.load is not ORIGINAL_LOAD
    with modelguard.guard_torch_load(fail_on="critical"):
        assert torch.load is not ORIGINAL_LOAD
    assert torch.load is not ORIGINAL_LOAD, "the inner guard must not undo the outer one"
    outer.restore()
    outer.restore()  # idempotent
    assert torch.load is ORIGINAL_LOAD and torch.serialization.load is ORIGINAL_LOAD

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(3):
                with modelguard.guard_torch_load():
                    torch.load(FIXTURES / "models/tied.pt")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert torch.load is ORIGINAL_LOAD


def test_ordered_dict_type_is_kept() -> None:
    with modelguard.guard_torch_load():
        got = torch.load(FIXTURES / "models/sd_sequential.pt")
    assert type(got) is collections.OrderedDict
    assert got._metadata == ORIGINAL_LOAD(FIXTURES / "models/sd_sequential.pt", weights_only=True)._metadata


@pytest.mark.parametrize("sandbox", ["native", "wasi", "both"])
def test_every_sandbox_reports_the_same_layout(sandbox: str) -> None:
    # The layout crosses from the jailed parser (or the WASI guest) to the host like the rest
    # of the report; each sandbox must give the guard the same answer.
    path = FIXTURES / "models/sd_sequential.pt"
    with modelguard.guard_torch_load(sandbox=sandbox, cache=False):
        got = torch.load(path)
    assert_identical(got, ORIGINAL_LOAD(path, weights_only=True))
    with modelguard.guard_torch_load(sandbox=sandbox, cache=False), pytest.raises(modelguard.ModelguardError):
        torch.load(FIXTURES / "models/training_checkpoint.pth")
