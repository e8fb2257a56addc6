"""The pair sampler: deterministic, rank-disjoint, no duplicate note in a global batch, epochs continue.

Run: PYTHONPATH=. python -m pytest tests/train/test_sampler.py -q -p no:cacheprovider
"""

from __future__ import annotations

import pandas as pd
import pytest

from notellm.data.schema import Note
from notellm.train.data import PairBatchSampler, pairs_from_frame


def _hub_pairs() -> list[tuple[str, str]]:
    # note "hub" is in 10 of 40 pairs: a naive batch of 8 would often hold it twice
    return [("hub", f"n{i}") if i % 4 == 0 else (f"n{i}", f"m{i}") for i in range(40)]


def test_no_duplicate_note_in_a_global_batch():
    sampler = PairBatchSampler(_hub_pairs(), batch_pairs=4, world_size=2, seed=3)
    plan = sampler.epoch_plan(0)
    assert plan and all(len(batch) == 8 for batch in plan)
    for batch in plan:
        notes = [n for i in batch for n in sampler.pairs[i]]
        assert len(notes) == len(set(notes))
    used = [i for batch in plan for i in batch]
    assert len(used) == len(set(used))  # a pair is used at most once per epoch
    naive = PairBatchSampler(_hub_pairs(), batch_pairs=4, world_size=2, seed=3, no_duplicates=False)
    assert len(naive.epoch_plan(0)) == 5
    assert any(len({n for i in b for n in naive.pairs[i]}) < 16 for b in naive.epoch_plan(0))


def test_ranks_disjoint_and_deterministic():
    a = PairBatchSampler(_hub_pairs(), batch_pairs=4, world_size=2, seed=1)
    b = PairBatchSampler(_hub_pairs(), batch_pairs=4, world_size=2, seed=1)
    for micro in range(3):
        r0, r1 = a.local_indices(micro, 0), a.local_indices(micro, 1)
        assert len(r0) == len(r1) == 4 and not set(r0) & set(r1)
        assert r0 + r1 == a.global_indices(micro) == b.global_indices(micro)
    assert PairBatchSampler(_hub_pairs(), 4, 2, seed=2).global_indices(0) != a.global_indices(0)


def test_epochs_continue_with_a_new_permutation():
    sampler = PairBatchSampler(_hub_pairs(), batch_pairs=4, world_size=1, seed=0)
    n0 = sampler.batches_per_epoch(0)
    assert sampler.locate(n0) == (1, 0) and sampler.locate(n0 - 1) == (0, n0 - 1)
    assert sampler.global_indices(n0) != sampler.global_indices(0)
    assert sampler.locate(3 * n0 + 1)[0] >= 2


def test_too_few_pairs_and_unknown_ids_are_clear_errors():
    with pytest.raises(ValueError, match="lower train.batch_pairs"):
        PairBatchSampler([("a", "b")], batch_pairs=2)
    notes = {"a": Note("a", "t", "c"), "b": Note("b", "t", "c")}
    frame = pd.DataFrame({"note_id_a": ["a", "b"], "note_id_b": ["b", "zz"]})
    with pytest.raises(ValueError, match="pairs.parquet: row 1: note id 'zz'"):
        pairs_from_frame(frame, notes, "pairs.parquet")
