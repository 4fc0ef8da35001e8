"""from_pretrained_safely: a Hugging Face folder of pickled weights (or a cached repo) becomes
a folder that transformers loads with use_safetensors=True, giving the same model: the logits
are compared with transformers loading the original pytorch_model*.bin itself."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES

import modelguard

COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def logits(folder: Path, **kw: object) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, **kw)
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([[1, 5, 9, 3, 7]])).logits


@pytest.mark.parametrize("name", ["hf_single", "hf_sharded"])
def test_same_logits_as_the_pickled_original(name: str, private_cache: Path) -> None:
    src = FIXTURES / "models" / name
    out = modelguard.from_pretrained_safely(src)
    assert out.is_relative_to(private_cache)
    files = sorted(p.name for p in out.iterdir())
    assert "config.json" in files
    assert not [f for f in files if f.endswith((".bin", ".py", ".pt"))], files
    want = logits(src, use_safetensors=False)
    got = logits(out, use_safetensors=True)
    assert torch.equal(got, want)
    # A second call finds the conversion instead of converting again.
    stamp = (out / files[-1]).stat().st_mtime_ns
    assert modelguard.from_pretrained_safely(src) == out
    assert (out / files[-1]).stat().st_mtime_ns == stamp


def test_a_changed_folder_is_converted_again(tmp_path: Path) -> None:
    src = tmp_path / "model"
    shutil.copytree(FIXTURES / "models/hf_single", src)
    first = modelguard.from_pretrained_safely(src)
    (src / "config.json").write_text((src / "config.json").read_text().replace('"n_head": 2', '"n_head": 4'))
    second = modelguard.from_pretrained_safely(src)
    assert first != second
    assert '"n_head": 4' in (second / "config.json").read_text()


def test_a_cached_repo_by_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = tmp_path / "hub"
    repo = hub / "models--tiny-org--tiny-gpt2"
    snap = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    snap.mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    for i, name in enumerate(["pytorch_model.bin", "config.json"]):
        shutil.copy(FIXTURES / "models/hf_single" / name, repo / "blobs" / f"blob{i}")
        os.symlink(f"../../blobs/blob{i}", snap / name)
    blobs = {p.name: p.read_bytes() for p in (repo / "blobs").iterdir()}
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    out = modelguard.from_pretrained_safely("tiny-org/tiny-gpt2")
    assert out == repo / "modelguard" / COMMIT
    assert torch.equal(logits(out, use_safetensors=True), logits(FIXTURES / "models/hf_single", use_safetensors=False))
    assert {p.name: p.read_bytes() for p in (repo / "blobs").iterdir()} == blobs


@pytest.mark.usefixtures("no_marker_created")
def test_a_malicious_folder_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "evil"
    src.mkdir()
    shutil.copy(FIXTURES / "malicious/files/pytorch_model.bin", src / "pytorch_model.bin")
    shutil.copy(FIXTURES / "models/hf_single/config.json", src / "config.json")
    with pytest.raises(modelguard.UnsafeModelError) as e:
        modelguard.from_pretrained_safely(src)
    assert e.value.findings
    assert not list((Path(os.environ["MODELGUARD_CACHE"]) / "hf").glob("*/*"))


def test_safetensors_folders_pass_through_and_others_are_errors(tmp_path: Path) -> None:
    st = tmp_path / "st"
    shutil.copytree(FIXTURES / "expected/hf_single", st)
    assert modelguard.from_pretrained_safely(st) == st
    with pytest.raises(modelguard.ModelguardError, match="holds neither"):
        modelguard.from_pretrained_safely(tmp_path)
    with pytest.raises(modelguard.ModelguardError, match="not in the Hugging Face cache"):
        modelguard.from_pretrained_safely("nobody/nothing")
