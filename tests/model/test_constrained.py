"""ListConstraint against brute force: on a small hand-made token language, the allowed tokens after every prefix
are exactly the next tokens of some valid output, and every valid output reads back as its items.
Run: PYTHONPATH=. python -m pytest tests/model/test_constrained.py -q"""

from __future__ import annotations

import itertools

import pytest

from notellm.model.constrained import ListConstraint

PAD, EOS, SEP, END = 0, 5, 9, 7
ITEMS = ["a", "ab", "b", "abc"]
FIRST = [[1], [1, 2], [3], [1, 2, 4]]  # "ab" and "abc" extend "a": prefixes of each other
NEXT = [[SEP] + ids for ids in FIRST]
END_IDS = [END, EOS]


def _language(k: int) -> dict[tuple[int, ...], list[str]]:
    """Every valid output (token tuple) -> its items: 1..k distinct items, separator-joined, then end + EOS."""
    out = {}
    for n in range(1, k + 1):
        for combo in itertools.permutations(range(len(ITEMS)), n):
            ids = FIRST[combo[0]] + [t for i in combo[1:] for t in NEXT[i]] + END_IDS
            out[tuple(ids)] = [ITEMS[i] for i in combo]
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
def test_allowed_tokens_equal_brute_force(k):
    constraint = ListConstraint(ITEMS, FIRST, NEXT, END_IDS, k=k, pad_id=PAD)
    language = _language(k)
    prefixes = {seq[:i] for seq in language for i in range(len(seq))}
    for prefix in prefixes:
        expected = sorted({seq[len(prefix)] for seq in language if seq[: len(prefix)] == prefix})
        assert constraint.allowed(list(prefix)) == expected, prefix
    for seq, items in language.items():
        assert constraint.allowed(list(seq)) == [PAD]
        assert constraint.result(list(seq) + [PAD, PAD]) == (items, True)
    assert constraint.allowed([3, SEP, 3]) == [PAD]  # "b" twice is not in the language: nothing fits


def test_prefix_fn_caches_and_matches_allowed():
    import torch

    constraint = ListConstraint(ITEMS, FIRST, NEXT, END_IDS, k=2, pad_id=PAD)
    fn = constraint.prefix_fn(prompt_len=2)
    prompt = [8, 8]
    for seq in _language(2):
        for i in range(len(seq)):
            ids = torch.tensor(prompt + list(seq[:i]))
            assert fn(0, ids) == constraint.allowed(list(seq[:i]))


def test_result_of_an_unfinished_output_keeps_completed_items():
    constraint = ListConstraint(ITEMS, FIRST, NEXT, END_IDS, k=3, pad_id=PAD)
    assert constraint.result([3, SEP, 1, 2]) == (["b", "ab"], False)  # "ab" complete, may still become "abc"
    assert constraint.result([3, SEP]) == (["b"], False)
    assert constraint.result([]) == ([], False)


def test_bad_construction():
    with pytest.raises(ValueError, match="at least one"):
        ListConstraint([], [], [], END_IDS, k=1, pad_id=PAD)
    with pytest.raises(ValueError, match="distinct"):
        ListConstraint(["a", "a"], [[1], [1]], None, END_IDS, k=1, pad_id=PAD)
    with pytest.raises(ValueError, match="k must"):
        ListConstraint(ITEMS, FIRST, NEXT, END_IDS, k=0, pad_id=PAD)
    with pytest.raises(ValueError, match="one token sequence per item"):
        ListConstraint(ITEMS, FIRST, None, END_IDS, k=2, pad_id=PAD)
    with pytest.raises(ValueError, match="no tokens"):
        ListConstraint(["a"], [[]], None, END_IDS, k=1, pad_id=PAD)
