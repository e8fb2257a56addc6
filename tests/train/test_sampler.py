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


def _padding(sampler: PairBatchSampler, lengths: list[int]) -> int:
    """Padded token slots of one epoch: every pair padded up to its batch's longest pair."""
    return sum(max(lengths[i] for i in b) - lengths[i] for b in sampler.epoch_plan(0) for i in b)


def test_length_grouping_keeps_every_pair_and_cuts_padding():
    pairs = [(f"a{i}", f"b{i}") for i in range(64)]
    lengths = [10 + (i * 37) % 200 for i in range(64)]  # 10..209, scattered over the pair order
    plain = PairBatchSampler(pairs, batch_pairs=4, seed=5)
    grouped = PairBatchSampler(pairs, batch_pairs=4, seed=5, lengths=lengths, group_batches=16)
    used = sorted(i for b in grouped.epoch_plan(0) for i in b)
    assert used == list(range(64))  # the same pairs, each once
    # one window of 16 batches holds the whole epoch: the pairs are sorted by length, then cut in fours, so each
    # batch is four neighbours of the sorted order (brute force over the batches)
    by_length = sorted(range(64), key=lambda i: -lengths[i])
    assert sorted(map(sorted, grouped.epoch_plan(0))) == sorted(sorted(by_length[k:k + 4]) for k in range(0, 64, 4))
    assert _padding(grouped, lengths) < _padding(plain, lengths) / 5
    again = PairBatchSampler(pairs, batch_pairs=4, seed=5, lengths=lengths, group_batches=16)
    assert again.epoch_plan(0) == grouped.epoch_plan(0)  # deterministic in (seed, epoch)
    assert grouped.epoch_plan(1) != grouped.epoch_plan(0)
    frozen = PairBatchSampler(pairs, batch_pairs=4, shuffle=False, lengths=lengths)  # validation: file order kept
    assert frozen.epoch_plan(0)[0] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="lengths has 3 entries for 64 pairs"):
        PairBatchSampler(pairs, batch_pairs=4, lengths=[1, 2, 3])


def test_length_grouping_still_keeps_duplicates_out():
    pairs = _hub_pairs()
    lengths = [100 if "hub" in p else i for i, p in enumerate(pairs)]  # the hub's pairs all sort together
    sampler = PairBatchSampler(pairs, batch_pairs=4, world_size=2, seed=3, lengths=lengths)
    for batch in sampler.epoch_plan(0):
        notes = [n for i in batch for n in sampler.pairs[i]]
        assert len(notes) == len(set(notes))
