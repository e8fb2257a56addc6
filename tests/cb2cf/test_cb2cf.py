"""CB2CF on planted structure: behaviour groups that content features only hint at."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from notellm.cb2cf import CB2CF, CB2CFConfig, co_engaged, evaluate_cold_start, itemcf_pairs, pair_loss, train_cb2cf
from notellm.cb2cf.coldstart import retrieval_metrics


def test_itemcf_pairs_hand_computed():
    # users: u1 {A,B,C}, u2 {A,B}, u3 {B,C}, u4 {A} ; D has one user (below the exposure threshold)
    ev = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u2", "u3", "u3", "u4", "u4", "u5"],
            "note_id": ["A", "B", "C", "A", "B", "B", "C", "A", "A", "D"],
        }
    )
    row_of = {"A": 0, "B": 1, "C": 2, "D": 3}
    p = itemcf_pairs(ev, row_of, min_users=2, top_k=5, similarity="count")
    got = {(a, b): s for a, b, s in p.itertuples(index=False)}
    # co(A,B) = 2 (u1,u2), co(A,C) = 1, co(B,C) = 2 ; D excluded
    assert got == {(0, 1): 2, (0, 2): 1, (1, 0): 2, (1, 2): 2, (2, 1): 2, (2, 0): 1}
    cos = itemcf_pairs(ev, row_of, min_users=2, top_k=1)
    # n_A = 3, n_B = 3, n_C = 2: cos(A,B) = 2/3, cos(A,C) = 1/√6, cos(B,C) = 2/√6 -> top-1 of A is B, of C is B
    top = {a: (b, s) for a, b, s in cos.itertuples(index=False)}
    assert top[0] == (1, pytest.approx(2 / 3)) and top[2] == (1, pytest.approx(2 / math.sqrt(6)))


def test_pair_loss_is_bce_on_half_one_plus_cos():
    cfg = CB2CFConfig(dim=2)
    za = torch.tensor([[1.0, 0.0, 1.0]]) / math.sqrt(2)  # u = e1
    zb = torch.tensor([[0.0, 1.0, 1.0]]) / math.sqrt(2)  # u = e2, cos 0 -> p = 0.5
    assert float(pair_loss(za, zb, torch.ones(1))) == pytest.approx(math.log(2))
    model = CB2CF(4, cfg)
    z = model(torch.randn(5, 4))
    assert z.shape == (5, 3) and torch.allclose((z * z).sum(1), torch.ones(5))  # ‖[u,1]/√2‖ = 1


def _planted(n_groups=4, per=40, d=24, seed=0):
    """Content = a weak group signal + noise; behaviour = users engage only inside one group."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(n_groups), per)
    signal = rng.normal(size=(n_groups, d))
    text = 0.6 * signal[group] + rng.normal(size=(len(group), d))
    ids = [f"n{i}" for i in range(len(group))]
    rows = []
    for u in range(200):
        g = u % n_groups
        for n in rng.choice(np.flatnonzero(group == g), size=6, replace=False):
            rows.append((f"u{u}", ids[n]))
    return text.astype(np.float32), ids, pd.DataFrame(rows, columns=["user_id", "note_id"]), group


def test_training_learns_behaviour_groups_and_roundtrips(tmp_path):
    text, ids, events, group = _planted()
    row_of = {n: i for i, n in enumerate(ids)}
    pairs = itemcf_pairs(events, row_of, min_users=2, top_k=10)
    cfg = CB2CFConfig(hidden=64, dim=16, epochs=10, batch_size=128, lr=3e-3, seed=0)
    model, log = train_cb2cf(text, pairs, cfg, progress=False)
    assert log.epoch_loss[-1] < log.epoch_loss[0]
    emb = model.embed(text)
    same = (group[:, None] == group[None, :]) & ~np.eye(len(group), dtype=bool)
    sims = emb @ emb.T
    content = text / np.linalg.norm(text, axis=1, keepdims=True)
    gap_learned = sims[same].mean() - sims[~same].mean()
    gap_content = (content @ content.T)[same].mean() - (content @ content.T)[~same].mean()
    assert gap_learned > gap_content + 0.2
    model.save(tmp_path / "m")
    again = CB2CF.load(tmp_path / "m")
    assert np.allclose(again.embed(text), emb, atol=1e-6)
    aug = again.embed(text[:3], augmented=True)
    assert aug.shape == (3, 17) and np.allclose(aug[:, -1], 1 / math.sqrt(2), atol=1e-6)


def test_image_features_are_concatenated():
    text, ids, events, _ = _planted(per=10)
    image = np.random.default_rng(1).normal(size=(len(ids), 5)).astype(np.float32)
    pairs = itemcf_pairs(events, {n: i for i, n in enumerate(ids)}, min_users=2)
    model, _ = train_cb2cf(text, pairs, CB2CFConfig(hidden=16, dim=8, epochs=1), image=image, progress=False)
    assert model.tower[0].normalized_shape == (text.shape[1] + 5,)
    assert model.embed(text, image).shape == (len(ids), 8)
    with pytest.raises(ValueError, match="image_dim=5"):
        model.embed(text)


def test_cold_start_beats_content_on_planted_data():
    text, ids, events, _ = _planted(per=80)
    cfg = CB2CFConfig(
        hidden=64, dim=16, epochs=8, batch_size=128, lr=3e-3, min_users=2, dropout=0.3, weight_decay=1e-2
    )
    res = evaluate_cold_start(text, ids, events, cfg, cold_frac=0.15, ks=(10, 40), progress=False)
    assert res.n_cold == round(len(co_engaged(events, {n: i for i, n in enumerate(ids)})) * 0.15)
    assert res.metrics["cb2cf"]["auc"] > res.metrics["content"]["auc"] + 0.05
    assert res.metrics["cb2cf"]["recall@40"] > res.metrics["content"]["recall@40"]


def test_retrieval_metrics_hand_computed():
    unit = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    # query 0: order 1, 2, 3 ; truth {2}: recall@1 0, recall@2 1 ; AUC: 2 beats 3, loses to 1 -> 0.5
    m = retrieval_metrics(unit, [0], [{2}], (1, 2))
    assert m == {"recall@1": 0.0, "recall@2": 1.0, "auc": 0.5}


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        CB2CF.load(tmp_path)
    with pytest.raises(ValueError, match="pairs must be"):
        train_cb2cf(np.zeros((3, 2)), np.zeros((0, 2)), progress=False)
    with pytest.raises(ValueError, match="pair rows must be in"):
        train_cb2cf(np.zeros((3, 2)), np.array([[0, 5]]), progress=False)
    with pytest.raises(ValueError, match="dropout"):
        CB2CFConfig(dropout=1.0)
