"""Issue #13 case 10: save_pretrained replaces a model folder atomically; a crash mid-save keeps the old model."""

from __future__ import annotations

import pytest
import torch

from notellm.atomicdir import writing_folder
from notellm.model.notellm import NoteLLM, NoteLLMConfig


def test_a_save_that_dies_midway_leaves_the_old_model_loadable(tiny_backbone_dir, tmp_path, monkeypatch):
    cfg = NoteLLMConfig(backbone=str(tiny_backbone_dir), emb_dim=16)
    old = NoteLLM.from_backbone(cfg)
    folder = tmp_path / "model"
    old.save_pretrained(folder)
    new = NoteLLM.from_backbone(cfg)
    with torch.no_grad():
        for p in new.parameters():
            p.add_(1.0)

    import safetensors.torch

    def dies(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing the head")

    monkeypatch.setattr(safetensors.torch, "save_file", dies)
    with pytest.raises(KeyboardInterrupt):
        new.save_pretrained(folder)
    monkeypatch.undo()
    loaded = NoteLLM.from_pretrained(folder)
    for (name, a), b in zip(old.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no half-written folder left behind
    new.save_pretrained(folder)  # and a complete save replaces it
    torch.testing.assert_close(NoteLLM.from_pretrained(folder).proj.weight, new.proj.weight)


def test_writing_folder_swaps_and_cleans_up(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with writing_folder(final) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (final / "old.txt").exists()  # readers see the old folder until the block ends
    assert [p.name for p in final.iterdir()] == ["new.txt"] and [p.name for p in tmp_path.iterdir()] == ["out"]
