"""Slow: the real packaged backbones (conversion on first use, then a fast cached load).
Run: PYTHONPATH=. python -m pytest tests/model/test_real_backbones.py -q -m slow"""

from __future__ import annotations

import numpy as np
import pytest

from notellm.data.schema import Note

pytestmark = pytest.mark.slow


def test_smollm2_converts_then_loads_fast():
    """Converted once, then loaded from the cache: a second resolve + load rewrites nothing (checked by the files,
    not by a stopwatch, so the test holds on a loaded machine)."""
    from notellm.model.backbone import load_causal_lm, resolve_backbone

    path = resolve_backbone("smollm2-135m")  # converts on first use (~30-60 s), else returns the cache
    assert (path / "model.safetensors").is_file() and (path / "notellm_backbone.json").is_file()
    stamp = [(f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(path.iterdir())]
    assert resolve_backbone("smollm2-135m") == path
    model = load_causal_lm(path)
    assert [(f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(path.iterdir())] == stamp
    assert model.config.hidden_size == 576 and model.config.num_hidden_layers == 30


def test_smollm2_notellm_embeds_and_generates():
    from notellm.model.notellm import NoteLLM, NoteLLMConfig

    model = NoteLLM.from_backbone(NoteLLMConfig())
    notes = [
        Note("1", "How do I brew a stout?", "Roasted barley, which yeast?", ("brewing",), "beer"),
        Note("2", "Stout brewing yeast", "Which yeast for an imperial stout?", ("yeast",), "beer"),
        Note("3", "What is a qubit?", "Qubit versus classical bit.", ("qubit",), "quantumcomputing"),
    ]
    vectors = model.embed(notes)
    assert vectors.shape == (3, 128) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    out = model.generate_category(notes[:1], constrained=True, categories=["beer", "coffee", "quantumcomputing"])
    assert out[0] in {"beer", "coffee", "quantumcomputing"}


def test_gemma3_chinese_prompt_with_bos():
    from notellm.model.notellm import NoteLLM, NoteLLMConfig
    from notellm.model.prompts import PromptConfig

    model = NoteLLM.from_backbone(NoteLLMConfig(backbone="gemma3-270m", prompt=PromptConfig(language="zh")))
    builder, tok = model.prompt_builder, model.tokenizer
    note = Note("z1", "自制咖啡的方法", "如何在家用法压壶做咖啡？", ("咖啡", "手冲"), "美食/咖啡")
    ids = builder.embedding_ids(note)
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1  # Gemma wants BOS; pieces add none
    assert tok.decode(ids[1:]).endswith("，压缩为一个词：“")
    assert model.embed([note]).shape == (1, 128)
    assert model.generate_category([note], constrained=True, categories=["美食/咖啡", "旅行"])[0] in {
        "美食/咖啡",
        "旅行",
    }
