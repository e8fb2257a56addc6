"""Gradient caching equals the plain path; the modes lora / top_n train only what they should.

Run: PYTHONPATH=. python -m pytest tests/train/test_step_and_modes.py -q -p no:cacheprovider
"""

from __future__ import annotations

import pytest
import torch
from train_toy import TOPICS

from notellm.data.schema import Note
from notellm.model.collate import PairCollator
from notellm.model.notellm import NoteLLM, NoteLLMConfig
from notellm.train.config import TrainArgs
from notellm.train.modes import apply_mode
from notellm.train.step import grad_cache_step, plain_step, sub_batches, supervised_tokens


def _model(backbone_dir) -> NoteLLM:
    return NoteLLM.from_backbone(NoteLLMConfig(backbone=str(backbone_dir), emb_dim=16))


def _pairs(n: int) -> list[tuple[Note, Note]]:
    topics = list(TOPICS.items())
    out = []
    for i in range(n):
        topic, words = topics[i % len(topics)]
        a = Note(f"a{i}", f"{words[0]} {words[i % 6]}", " ".join(words * (1 + i % 3)), tuple(words[:2]), f"{topic}/x")
        b = Note(f"b{i}", f"{words[1]} {words[2]}", " ".join(words[::-1]), tuple(words[2:4]), f"{topic}/y")
        out.append((a, b))
    return out


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("gcl,alpha", [(True, 0.01), (True, 0.0), (False, 0.01)])
def test_grad_cache_equals_plain(tiny_backbone_dir, gcl, alpha):
    model = _model(tiny_backbone_dir)
    batch = PairCollator(model.prompt_builder, hashtag_ratio=0.5, seed=3).collate(_pairs(6), 0)
    plain = plain_step(model, model, batch, gcl, alpha, lambda loss: loss.backward())
    reference = _grads(model)
    model.zero_grad(set_to_none=True)
    cached = grad_cache_step(model, model, batch, gcl, alpha, lambda loss: loss.backward(), pairs_per_chunk=4)
    got = _grads(model)
    assert plain.keys() == cached.keys()
    for key in plain:
        assert cached[key] == pytest.approx(plain[key], rel=1e-5)
    assert reference.keys() == got.keys() and len(got) > 5
    assert ("tau" in got) == gcl
    for name, ref in reference.items():  # fp32 sums in another order: compare at the tensor's own scale
        torch.testing.assert_close(got[name], ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()), msg=name)


def test_sub_batches_keep_partner_layout(tiny_backbone_dir):
    model = _model(tiny_backbone_dir)
    batch = PairCollator(model.prompt_builder, seed=1).collate(_pairs(5), 0)
    chunks = sub_batches(batch, 2)
    assert [c.num_pairs for c in chunks] == [2, 2, 1]
    torch.testing.assert_close(chunks[1].emb_pos, batch.emb_pos[[2, 3, 7, 8]])
    assert sum(supervised_tokens(c) for c in chunks) == supervised_tokens(batch)
    assert supervised_tokens(batch) == model(batch).n_label_tokens


def _changed_after_one_step(model, args: TrainArgs) -> set[str]:
    apply_mode(model, args)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=1.0)
    batch = PairCollator(model.prompt_builder, seed=0).collate(_pairs(4), 0)
    plain_step(model, model, batch, args.gcl, args.alpha, lambda loss: loss.backward())
    optimizer.step()
    return {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}


def test_mode_top_n_trains_only_top_layers(tiny_backbone_dir):
    model = _model(tiny_backbone_dir)
    changed = _changed_after_one_step(model, TrainArgs(mode="top_n", top_n_layers=1))
    assert "proj.weight" in changed and "tau" in changed
    assert any(".layers.1." in n for n in changed) and any(n.endswith("model.norm.weight") for n in changed)
    assert not any(".layers.0." in n or "embed_tokens" in n for n in changed)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == changed


def test_mode_lora_trains_only_adapters(tiny_backbone_dir):
    model = _model(tiny_backbone_dir)
    changed = _changed_after_one_step(model, TrainArgs(mode="lora", lora_r=4))
    assert {"proj.weight", "tau"} <= changed
    others = changed - {"proj.weight", "tau"}
    assert others and all("lora_" in n for n in others)
    assert any("q_proj.lora_B" in n for n in others) and any("down_proj.lora_B" in n for n in others)
    assert all("lora_" in n or n in ("proj.weight", "tau") for n, p in model.named_parameters() if p.requires_grad)


def test_gcl_off_freezes_head(tiny_backbone_dir):
    model = _model(tiny_backbone_dir)
    changed = _changed_after_one_step(model, TrainArgs(mode="full", gcl=False))
    assert "tau" not in changed and "proj.weight" not in changed and changed
