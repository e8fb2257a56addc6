"""NoteLLM on the tiny random backbone: [EMB] init, loss and embedding equal naive HF computations, train/inference
embedding identity, save/load round trips (plain and LoRA), constrained decoding.
Run: PYTHONPATH=. python -m pytest tests/model/test_notellm.py -q"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from notellm.data.schema import Note
from notellm.model.collate import PairCollator
from notellm.model.notellm import NoteLLM, init_new_rows


def _batch(model, notes, ratio=0.4, seed=0):
    pairs = [(notes[i], notes[(i + 1) % len(notes)]) for i in range(len(notes))]
    return PairCollator(model.prompt_builder, hashtag_ratio=ratio, seed=seed)(pairs)


def test_emb_row_is_mean_of_old_rows(tiny_model, tokenizer):
    weight = tiny_model.causal_lm.get_input_embeddings().weight
    emb_id = tiny_model.prompt_builder.emb_id
    n_old = emb_id  # [EMB] is the first added token
    assert emb_id == len(tokenizer) - 1 and weight.shape[0] == len(tokenizer)
    torch.testing.assert_close(weight[emb_id], weight[:n_old].mean(0))
    assert tiny_model.causal_lm.get_output_embeddings().weight.data_ptr() == weight.data_ptr()  # tied head


def test_untied_head_rows_are_mean_too():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=50,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    init_new_rows(model, [50, 51], n_old=50)
    for w in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        assert w.shape[0] == 52
        torch.testing.assert_close(w[50], w[:50].mean(0))
        torch.testing.assert_close(w[51], w[:50].mean(0))
    assert not torch.equal(model.get_input_embeddings().weight[50], model.get_output_embeddings().weight[50])


def test_generation_loss_equals_full_logits_hf_loss(tiny_model, notes):
    batch = _batch(tiny_model, notes[:3], ratio=0.5)  # 6 rows, both prompt kinds
    out = tiny_model(batch)
    ref = tiny_model.causal_lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels)
    torch.testing.assert_close(out.generation_loss, ref.loss, rtol=1e-5, atol=1e-5)
    assert out.n_label_tokens == int((batch.labels[:, 1:] != -100).sum())
    # And by hand: token-level mean over every supervised token of the batch.
    logits = ref.logits[:, :-1].reshape(-1, ref.logits.shape[-1])
    manual = F.cross_entropy(logits, batch.labels[:, 1:].reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.generation_loss, manual, rtol=1e-5, atol=1e-5)
    out.generation_loss.backward()
    assert tiny_model.causal_lm.get_input_embeddings().weight.grad is not None


def test_embeddings_are_post_norm_state_before_emb(tiny_model, notes):
    batch = _batch(tiny_model, notes)
    out = tiny_model(batch, need_generation_loss=False)
    assert out.generation_loss is None and out.embeddings.shape == (2 * len(notes), 16)
    hs = tiny_model.causal_lm(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True
    ).hidden_states[-1]  # (2B, T, H) after the final norm
    pooled = hs[torch.arange(hs.shape[0]), batch.emb_pos]
    expected = F.normalize(pooled @ tiny_model.proj.weight.T, dim=-1)
    torch.testing.assert_close(out.embeddings, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.embeddings.norm(dim=-1), torch.ones(2 * len(notes)))
    assert math.isclose(tiny_model.logit_scale.item(), math.exp(3.0), rel_tol=1e-6)


def test_inference_embedding_equals_training_embedding(tiny_model, notes):
    """Category-prompt training rows and `embed` see identical prefixes, so they give the same vectors."""
    with_cat = [n for n in notes if n.category_levels]
    batch = _batch(tiny_model, with_cat, ratio=0.0)
    tiny_model.eval()
    with torch.no_grad():
        train_vecs = tiny_model(batch, need_generation_loss=False).embeddings[: len(with_cat)].numpy()
    np.testing.assert_allclose(tiny_model.embed(with_cat), train_vecs, atol=1e-5)


def test_embed_is_batch_and_order_invariant(tiny_model, notes):
    full = tiny_model.embed(notes, batch_size=32)
    assert full.dtype == np.float32 and full.shape == (len(notes), 16)
    np.testing.assert_allclose(tiny_model.embed(notes, batch_size=1), full, atol=1e-5)
    np.testing.assert_allclose(tiny_model.embed(notes[::-1], batch_size=4), full[::-1], atol=1e-5)
    np.testing.assert_allclose(tiny_model.embed(notes[2]), full[2:3], atol=1e-5)
    bf16 = tiny_model.embed(notes, autocast=True)
    assert np.all((bf16 * full).sum(1) > 0.98)  # bf16 autocast stays close to fp32
    assert tiny_model.training  # embed restores the training flag


def test_save_load_roundtrip_identical(tiny_model, notes, tmp_path):
    tiny_model.train()
    batch = _batch(tiny_model, notes)
    opt = torch.optim.SGD(tiny_model.parameters(), lr=0.5)
    out = tiny_model(batch)
    (out.generation_loss + out.embeddings.sum() + tiny_model.tau).backward()
    opt.step()  # trained weights, a moved tau: the round trip must carry all of them
    path = tiny_model.save_pretrained(tmp_path / "m")
    files = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    assert {"notellm.json", "notellm_head.safetensors", "backbone/config.json", "backbone/model.safetensors"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    loaded = NoteLLM.from_pretrained(path)
    assert loaded.prompt_builder.emb_id == tiny_model.prompt_builder.emb_id
    assert loaded.tau.item() == tiny_model.tau.item() != 3.0
    np.testing.assert_array_equal(loaded.embed(notes), tiny_model.embed(notes))
    assert loaded.generate_hashtags(notes[:3], max_new_tokens=4) == tiny_model.generate_hashtags(
        notes[:3], max_new_tokens=4
    )
    meta = loaded.metadata()
    assert meta["backbone"] == tiny_model.cfg.backbone and meta["emb_dim"] == 16
    assert meta["special_tokens"]["emb"] == {"token": "[EMB]", "id": tiny_model.prompt_builder.emb_id}


@pytest.mark.parametrize("merge", [True, False])
def test_lora_save_merged_or_adapter(tiny_model, notes, tmp_path, merge):
    from peft import LoraConfig, get_peft_model

    tiny_model.backbone = get_peft_model(
        tiny_model.backbone,
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    expected = tiny_model.embed(notes)
    path = tiny_model.save_pretrained(tmp_path / "lora", merge_lora=merge)
    assert (path / "adapter").is_dir() != merge
    loaded = NoteLLM.from_pretrained(path)
    np.testing.assert_allclose(loaded.embed(notes), expected, atol=1e-5)
    assert hasattr(tiny_model.backbone, "merge_and_unload")  # saving did not merge the live model


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="notellm.json"):
        NoteLLM.from_pretrained(tmp_path)
    (tmp_path / "notellm.json").write_text("{not json")
    with pytest.raises(ValueError, match="notellm.json"):
        NoteLLM.from_pretrained(tmp_path)


def test_generation_is_batch_invariant(tiny_model, notes):
    batched = tiny_model.generate_hashtags(notes[:4], k=5, max_new_tokens=6, batch_size=16)
    single = [tiny_model.generate_hashtags([n], k=5, max_new_tokens=6)[0] for n in notes[:4]]
    assert batched == single
    assert all(len(tags) <= 5 for tags in batched)


def test_constrained_category_never_leaves_the_set(tiny_model):
    categories = [
        "beer",
        "beer/brewing",
        "beer/tasting",
        "coffee",
        "coffee/espresso",
        "ai",
        "quantumcomputing/qubit",
        "matheducators",
        "cardano/staking",
        "genai/prompting",
        "a/b",
        "Ünïcode/çat",
    ]
    rng = random.Random(0)
    words = "brew yeast hop qubit espresso grind lesson token stake prompt model neural fraction bean".split()
    pool = [
        Note(
            f"r{i}",
            " ".join(rng.choices(words, k=4)),
            " ".join(rng.choices(words, k=rng.randint(3, 40))),
            tuple(rng.sample(words, 2)),
            "",
        )
        for i in range(32)
    ]
    with torch.no_grad():  # let attention/MLP outweigh the residual so different notes take different branches
        for layer in tiny_model.causal_lm.model.layers:
            layer.self_attn.o_proj.weight.mul_(10)
            layer.mlp.down_proj.weight.mul_(10)
    out = tiny_model.generate_category(pool, constrained=True, categories=categories, max_new_tokens=2)
    assert set(tiny_model.generate_category(pool[:3], constrained=True, categories=categories,
                                            scoring="beam")) <= set(categories)
    assert len(out) == len(pool) and set(out) <= set(categories)
    assert len(set(out)) >= 3  # different notes reach different leaves
    free = tiny_model.generate_category(pool[:4], max_new_tokens=6)
    assert all(isinstance(c, str) for c in free)
    with pytest.raises(ValueError, match="categories"):
        tiny_model.generate_category(pool[:1], constrained=True)


def test_category_constraint_walk(tiny_model):
    constraint = tiny_model.category_constraint(["beer", "beer/brewing"])
    b = tiny_model.prompt_builder
    beer, brewing = b.category_target_ids("beer"), b.category_target_ids("beer/brewing")
    assert beer[0] == brewing[0] and set(constraint.allowed([])) == {beer[0]}
    assert set(constraint.allowed(beer[:1])) == {beer[1], brewing[1]}
    assert constraint.allowed(beer) == [b.pad_id]  # finished
    assert constraint.result(beer + [b.pad_id]) == (["beer"], True)
    assert constraint.result(brewing) == (["beer/brewing"], True)
    assert constraint.result(beer[:-1]) == (["beer"], False)  # complete item, EOS not reached


def test_constrained_hashtags_stay_in_the_vocabulary(tiny_model, notes):
    vocabulary = ["c", "c++", "asp.net", "machine-learning", "brewing", "espresso", "yeast", "stout", "grinding",
                  "neural-networks", "Ünïcode", "c#"]
    with torch.no_grad():  # as above: make different notes take different branches
        for layer in tiny_model.causal_lm.model.layers:
            layer.self_attn.o_proj.weight.mul_(10)
            layer.mlp.down_proj.weight.mul_(10)
    out = tiny_model.generate_hashtags(notes, k=3, max_new_tokens=40, constrained=True, vocabulary=vocabulary)
    assert len(out) == len(notes)
    for tags in out:
        assert 1 <= len(tags) <= 3 and len(set(tags)) == len(tags) and set(tags) <= set(vocabulary)
    assert len({t for tags in out for t in tags}) >= 2
    beam = tiny_model.generate_hashtags(notes, k=3, max_new_tokens=40, constrained=True, vocabulary=vocabulary,
                                        scoring="beam")
    for tags in beam:  # the length-normalised beam walks the same automaton
        assert 1 <= len(tags) <= 3 and len(set(tags)) == len(tags) and set(tags) <= set(vocabulary)
    with pytest.raises(ValueError, match="scoring"):
        tiny_model.generate_hashtags(notes[:1], constrained=True, vocabulary=vocabulary, scoring="sample")
    short = tiny_model.generate_hashtags(notes, k=3, max_new_tokens=1, constrained=True, vocabulary=vocabulary)
    assert all(set(tags) <= set(vocabulary) for tags in short)  # cut short: only completed tags come back
    with pytest.raises(ValueError, match="vocabulary"):
        tiny_model.generate_hashtags(notes[:1], constrained=True)


def test_shared_prefix_embedding_equals_plain_path(tiny_model):
    """The prompt prefix computed once per batch (KV cache repeated per row) gives the plain path's embeddings."""
    from notellm.model.notellm import common_prefix_length

    notes = [Note(f"n{i}", f"title {i} " * (1 + i % 3), "words and more words " * (1 + i), ("tag",), "a/b")
             for i in range(7)]
    ids = [tiny_model.prompt_builder.embedding_ids(n) for n in notes]
    assert common_prefix_length(ids) >= 8  # the template's instruction
    shared = tiny_model.embed(notes, batch_size=4)  # the default path
    plain = tiny_model.embed_ids(ids, batch_size=4, share_prefix=False)
    assert (shared * plain).sum(axis=1).min() >= 0.9999
    assert common_prefix_length([[1, 2, 3], [1, 2]]) == 1  # each keeps at least its last token
