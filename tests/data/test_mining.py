"""Pair mining (method §3) against hand-computed scores and a brute-force exact reference.

PYTHONPATH=. python -m pytest tests/data/test_mining.py -q
"""

from __future__ import annotations

from fractions import Fraction

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from notellm.data.mining import MiningConfig, mine_pairs, mine_pairs_with_stats

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _log(rows: list[tuple[str, str, int]], **extra) -> pd.DataFrame:
    """(user, note, seconds after T0) rows -> an events frame."""
    df = pd.DataFrame(rows, columns=["user_id", "note_id", "t"])
    df["timestamp"] = T0 + pd.to_timedelta(df.pop("t"), unit="s")
    df["action"] = extra.get("action", "click")
    df["weight"] = extra.get("weight", 1.0)
    return df


def _notes(ids, categories=None) -> pd.DataFrame:
    ids = list(ids)
    return pd.DataFrame({"note_id": ids, "category": categories or ["c"] * len(ids)})


def _as_dict(pairs: pd.DataFrame) -> dict[tuple[str, str], float]:
    return {(a, b): s for a, b, s in pairs[["note_id_a", "note_id_b", "score"]].itertuples(index=False)}


# u1: A B C   (N=3)      u2: A B   (N=2)      u3: B A B   (N=2)      u4: A B A B   (N=2)
PLANTED = [
    ("u1", "A", 0),
    ("u1", "B", 1),
    ("u1", "C", 2),
    ("u2", "A", 0),
    ("u2", "B", 50),
    ("u3", "B", 0),
    ("u3", "A", 1),
    ("u3", "B", 2),
    ("u4", "A", 0),
    ("u4", "B", 1),
    ("u4", "A", 2),
    ("u4", "B", 3),
]


def test_hand_computed_scores():
    """s(A→B) = Σ_u 1/N_u, one vote per (user, A, B), no self pairs, window 10.

    u1 (N=3): A→B, A→C, B→C                  each 1/3
    u2 (N=2): A→B                            1/2
    u3 (N=2): B→A (0→1), A→B (1→2); B→B skipped        1/2 each
    u4 (N=2): A→B at 0→1, 0→3, 2→3 counts once; B→A (1→2) once       1/2 each
    s(A→B) = 1/3 + 1/2 + 1/2 + 1/2 = 11/6;  s(B→A) = 1/2 + 1/2 = 1;  s(A→C) = s(B→C) = 1/3.
    """
    pairs = mine_pairs(_log(PLANTED), _notes("ABC"), MiningConfig(lower=0.0, upper=30.0))
    assert _as_dict(pairs) == pytest.approx(
        {("A", "B"): 11 / 6, ("A", "C"): 1 / 3, ("B", "A"): 1.0, ("B", "C"): 1 / 3}
    )
    assert list(pairs["note_id_a"]) == ["A", "A", "B", "B"]  # sorted by source, then score descending
    assert list(pairs["note_id_b"]) == ["B", "C", "A", "C"]


def test_bounds_window_and_gap():
    """lower=0.4 drops the 1/3 pairs; upper=1.5 drops A→B (11/6).

    window=1 keeps only adjacent events: u1 loses A→C, so s(A→C) is absent.
    max_gap=10s with no window: u2's A→B (50 s apart) stops counting: s(A→B) = 1/3 + 1/2 + 1/2 = 4/3.
    """
    assert _as_dict(mine_pairs(_log(PLANTED), _notes("ABC"), MiningConfig(lower=0.4, upper=1.5))) == {("B", "A"): 1.0}
    adjacent = _as_dict(mine_pairs(_log(PLANTED), _notes("ABC"), MiningConfig(window=1, lower=0.0)))
    assert ("A", "C") not in adjacent and adjacent[("B", "C")] == pytest.approx(1 / 3)
    gap = _as_dict(mine_pairs(_log(PLANTED), _notes("ABC"), MiningConfig(window=None, max_gap="10s", lower=0.0)))
    assert gap[("A", "B")] == pytest.approx(4 / 3)


def test_top_t_breaks_ties_by_note_id():
    """One user (N=4) reads S then X, B, M: three pairs tie at 1/4; t=2 keeps the two smallest ids, B and M."""
    log = _log([("u", "S", 0), ("u", "X", 1), ("u", "B", 2), ("u", "M", 3)])
    pairs = mine_pairs(log, _notes("SXBM"), MiningConfig(top_t=2, lower=0.0))
    assert pairs[pairs["note_id_a"] == "S"]["note_id_b"].tolist() == ["B", "M"]


def test_symmetric_actions_and_weights():
    """symmetric: u1 A→B and u2 B→A are one unordered pair each: s({A,B}) = 1/2 + 1/2 = 1 in both directions.

    actions=["like"] keeps only u1's events. use_weights: contribution = weight(B) / N_u = 3 / 2.
    """
    log = _log([("u1", "A", 0), ("u1", "B", 1), ("u2", "B", 0), ("u2", "A", 1)])
    log.loc[:1, "action"] = "like"
    log.loc[1, "weight"] = 3.0
    sym = _as_dict(mine_pairs(log, _notes("AB"), MiningConfig(symmetric=True)))
    assert sym == pytest.approx({("A", "B"): 1.0, ("B", "A"): 1.0})
    liked = _as_dict(mine_pairs(log, _notes("AB"), MiningConfig(actions=["like"])))
    assert liked == pytest.approx({("A", "B"): 0.5})
    weighted = _as_dict(mine_pairs(log, _notes("AB"), MiningConfig(use_weights=True)))
    assert weighted == pytest.approx({("A", "B"): 1.5, ("B", "A"): 0.5})


def test_balance_per_combination_is_capped_and_seeded():
    rng = np.random.default_rng(0)
    notes = _notes([f"n{i}" for i in range(40)], ["x" if i < 20 else "y" for i in range(40)])
    rows = [(f"u{u}", f"n{n}", t) for u in range(30) for t, n in enumerate(rng.choice(40, 6, replace=False))]
    cfg = MiningConfig(lower=0.0, balance_per_combination=5, seed=1)
    pairs, stats = mine_pairs_with_stats(_log(rows), notes, cfg)
    cat = dict(zip(notes["note_id"], notes["category"], strict=True))
    combos = pd.Series([cat[a] + cat[b] for a, b in zip(pairs["note_id_a"], pairs["note_id_b"], strict=True)])
    assert combos.value_counts().to_dict() == {"xx": 5, "xy": 5, "yx": 5, "yy": 5}
    assert stats["cut_by_balance"] > 0
    assert mine_pairs(_log(rows), notes, cfg).equals(pairs)
    assert not mine_pairs(_log(rows), notes, MiningConfig(lower=0.0, balance_per_combination=5, seed=2)).equals(pairs)


def test_events_on_unknown_notes_are_ignored_and_counted():
    pairs, stats = mine_pairs_with_stats(
        _log([("u", "A", 0), ("u", "Z", 1), ("u", "B", 2)]), _notes("AB"), MiningConfig(lower=0.0)
    )
    assert stats["events_unknown_note"] == 1
    assert _as_dict(pairs) == pytest.approx({("A", "B"): 0.5})


def test_config_loads_through_the_project_config_machinery():
    from notellm.config import load_config

    cfg = load_config(MiningConfig, overrides=["window=5", "max_gap=7d", "actions=view,click", "top_t=3"])
    assert (cfg.window, cfg.max_gap, cfg.actions, cfg.top_t) == (5, "7d", ["view", "click"], 3)
    assert cfg.max_gap_ns() == 7 * 24 * 3600 * 10**9


def test_config_checks():
    with pytest.raises(ValueError, match="window and/or max_gap"):
        MiningConfig(window=None)
    with pytest.raises(ValueError, match="not a duration"):
        MiningConfig(max_gap="soon")
    with pytest.raises(ValueError, match="lower <= upper"):
        MiningConfig(lower=2, upper=1)


def brute_force(rows, cfg: MiningConfig) -> dict[tuple[str, str], Fraction]:
    """The rule written as plainly as possible, in exact fractions."""
    gap = cfg.max_gap_ns()
    scores: dict[tuple[str, str], Fraction] = {}
    users = sorted({u for u, _, _ in rows})
    for user in users:
        seq = sorted([(t, i, n) for i, (u, n, t) in enumerate(rows) if u == user])
        n_u = len({n for _, _, n in seq})
        votes = set()
        for i in range(len(seq)):
            for j in range(i + 1, len(seq)):
                if cfg.window is not None and j - i > cfg.window:
                    break
                if gap is not None and (seq[j][0] - seq[i][0]) * 10**9 > gap:
                    break
                a, b = seq[i][2], seq[j][2]
                if a != b:
                    votes.add((min(a, b), max(a, b)) if cfg.symmetric else (a, b))
        for pair in votes:
            scores[pair] = scores.get(pair, Fraction(0)) + Fraction(1, n_u)
    if cfg.symmetric:
        scores.update({(b, a): s for (a, b), s in list(scores.items())})
    kept = {p: s for p, s in scores.items() if Fraction(cfg.lower) <= s <= Fraction(cfg.upper)}
    out = {}
    for a in sorted({a for a, _ in kept}):
        ranked = sorted(((-s, b) for (x, b), s in kept.items() if x == a))[: cfg.top_t]
        out.update({(a, b): -neg for neg, b in ranked})
    return out


event_rows = st.lists(
    st.tuples(st.sampled_from(["u0", "u1", "u2", "u3"]), st.sampled_from(list("ABCDEFG")), st.integers(0, 30)),
    min_size=0,
    max_size=40,
)
window_and_gap = st.sampled_from([(1, None), (2, None), (3, None), (None, "3s"), (None, "10s"), (2, "3s"), (3, "10s")])
configs = st.builds(
    lambda wg, **kw: MiningConfig(window=wg[0], max_gap=wg[1], **kw),
    wg=window_and_gap,
    lower=st.sampled_from([0.0, 0.25, 0.5]),
    upper=st.sampled_from([0.75, 1.5, 30.0]),
    top_t=st.integers(1, 4),
    symmetric=st.booleans(),
    chunk_events=st.sampled_from([1, 3, 1000]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=event_rows, cfg=configs)
def test_matches_brute_force_and_invariants(rows, cfg):
    notes = _notes("ABCDEFG")
    pairs = mine_pairs(_log(rows), notes, cfg)
    expected = brute_force(rows, cfg)
    got = _as_dict(pairs)
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(float(value), abs=1e-9)
    assert (pairs["note_id_a"] != pairs["note_id_b"]).all()  # no self pairs
    assert pairs["score"].between(cfg.lower, cfg.upper).all()
    assert (pairs.groupby("note_id_a").size() <= cfg.top_t).all()
    assert mine_pairs(_log(rows), notes, cfg).equals(pairs)  # deterministic
    rechunked = mine_pairs(_log(rows), notes, MiningConfig(**{**cfg.__dict__, "chunk_events": 7}))
    pd.testing.assert_frame_equal(rechunked, pairs)  # chunking never changes the result
    if len({(u, t) for u, _, t in rows}) == len(rows):  # no ties in time: file order is irrelevant
        shuffled = _log(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)
        pd.testing.assert_frame_equal(mine_pairs(shuffled, notes, cfg), pairs)


def test_top_t_key_sort_and_two_key_fallback_agree():
    """Scores near 1e9 make the (row, -score) int64 key overflow, which switches to the two-key sort."""
    from notellm.data.mining import _top_t

    rng = np.random.default_rng(0)
    row = np.sort(rng.integers(0, 40, 400)).astype(np.int32)
    for scale in (1.0, 1e9):
        score = np.round(rng.integers(1, 6, 400) * scale / 4, 9)
        top = _top_t(row, score, 3)
        expected = [i for r in range(40) for i in sorted(np.flatnonzero(row == r), key=lambda i: (-score[i], i))[:3]]
        assert top.tolist() == expected
