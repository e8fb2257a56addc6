"""Pair collation: partner layout, exact hashtag share per side, fallbacks, padding, determinism and resuming.
Run: PYTHONPATH=. python -m pytest tests/model/test_collate.py -q"""

from __future__ import annotations

import pytest
import torch

from notellm.data.schema import Note
from notellm.model.collate import PairCollator, collate_for_embedding
from notellm.model.prompts import IGNORE_INDEX


def _full_notes(n: int) -> list[Note]:
    return [
        Note(f"n{i}", f"title {i}", f"content number {i} " * (i % 5 + 1), ("tag-a", "tag-b"), "site/sub")
        for i in range(n)
    ]


def test_layout_partners_and_exact_hashtag_share(builder, tokenizer):
    notes = _full_notes(20)
    pairs = [(notes[i], notes[i + 10]) for i in range(10)]  # B = 10
    batch = PairCollator(builder, hashtag_ratio=0.4, seed=7)(pairs)
    assert batch.input_ids.shape[0] == 20 and batch.num_pairs == 10
    for side in (0, 1):
        assert sum(t == "hashtag" for t in batch.tasks[side * 10 : side * 10 + 10]) == 4  # floor(0.4 * 10)
    for row in range(20):  # row i holds pair i side A, row i + B its partner
        text = tokenizer.decode(batch.input_ids[row][batch.attention_mask[row].bool()])
        expected = pairs[row % 10][row // 10]
        assert f'"title": "{expected.title}"' in text
        assert batch.input_ids[row, batch.emb_pos[row] + 1] == builder.emb_id


def test_share_is_floor(builder):
    pairs = [(a, a) for a in _full_notes(7)]
    batch = PairCollator(builder, hashtag_ratio=0.4)(pairs)
    assert [batch.tasks[:7].count("hashtag"), batch.tasks[7:].count("hashtag")] == [2, 2]  # floor(2.8)
    assert set(PairCollator(builder, hashtag_ratio=0.0)(pairs).tasks) == {"category"}
    assert set(PairCollator(builder, hashtag_ratio=1.0)(pairs).tasks) == {"hashtag"}


def test_fallbacks(builder, notes):
    no_tags, no_cat = notes[4], notes[5]
    neither = Note("z", "Bare", "Nothing else.", (), "")
    batch = PairCollator(builder, hashtag_ratio=1.0)([(no_tags, no_cat), (neither, no_tags)])
    assert batch.tasks == ("category", "none", "hashtag", "category")
    none_row = batch.tasks.index("none")
    assert (batch.labels[none_row] == IGNORE_INDEX).all()
    assert batch.input_ids[none_row, batch.emb_pos[none_row] + 1] == builder.emb_id


def test_right_padding_and_masks(builder, notes):
    pairs = [(notes[0], notes[1]), (notes[2], notes[3])]
    batch = PairCollator(builder)(pairs)
    lengths = batch.attention_mask.sum(1)
    for row in range(4):
        n = int(lengths[row])
        assert batch.attention_mask[row, :n].all() and not batch.attention_mask[row, n:].any()
        assert (batch.input_ids[row, n:] == builder.pad_id).all()
        assert (batch.labels[row, n:] == IGNORE_INDEX).all()
        assert batch.labels[row, n - 1] == builder.eos_id  # every sequence ends with its supervised EOS
    moved = batch.to("cpu")
    assert torch.equal(moved.input_ids, batch.input_ids) and moved.tasks == batch.tasks


def test_deterministic_and_resumable(builder):
    notes = _full_notes(16)
    pairs = [(notes[i], notes[i + 8]) for i in range(8)]
    a, b = PairCollator(builder, seed=3), PairCollator(builder, seed=3)
    first = [a(pairs) for _ in range(3)]
    assert all(torch.equal(x.input_ids, y.input_ids) for x, y in zip(first, [b(pairs) for _ in range(3)]))
    assert any(first[0].tasks != x.tasks for x in first[1:])  # batches differ from one another
    state = a.state_dict()
    resumed = PairCollator(builder, seed=0)
    resumed.load_state_dict(state)
    assert torch.equal(a(pairs).labels, resumed(pairs).labels)
    assert torch.equal(PairCollator(builder, seed=3).collate(pairs, 1).input_ids, first[1].input_ids)
    assert len({PairCollator(builder, seed=s).collate(pairs, 0).tasks for s in range(5)}) > 1  # the seed matters


def test_collate_for_embedding():
    ids, mask, last = collate_for_embedding([[5, 6, 7], [8], [9, 10]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert last.tolist() == [2, 0, 1]
    with pytest.raises(ValueError):
        collate_for_embedding([[1], []], pad_id=0)


def test_bad_arguments(builder):
    with pytest.raises(ValueError, match="hashtag_ratio"):
        PairCollator(builder, hashtag_ratio=1.5)
    with pytest.raises(ValueError, match="empty"):
        PairCollator(builder)([])
