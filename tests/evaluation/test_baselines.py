"""BM25 and ItemCF on planted structure (checkerboard-style: relations only inside a topic).

Run: PYTHONPATH=. python -m pytest tests/evaluation/test_baselines.py -q
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from notellm.evaluation.itemcf import ItemCFScorer
from notellm.evaluation.lexical import BM25Scorer

TOPICS = {"beer": "hops malt yeast lager", "coffee": "espresso grinder roast crema", "quantum": "qubit gate entangle"}


def planted_notes(per_topic: int = 4) -> pd.DataFrame:
    rows = []
    for topic, words in TOPICS.items():
        w = words.split()
        for i in range(per_topic):
            rows.append({"note_id": f"{topic}:{i}", "title": f"{w[i % len(w)]} {topic}",
                         "content": f"{w[(i + 1) % len(w)]} {w[(i + 2) % len(w)]}", "hashtags": [],
                         "category": topic})
    return pd.DataFrame(rows)


def test_bm25_ranks_same_topic_first():
    notes = planted_notes()
    ids = notes["note_id"].tolist()
    scorer = BM25Scorer(notes, ids)
    scores = scorer.score(ids, ids)  # (12, 12)
    for i, q in enumerate(ids):
        s = scores[i].copy()
        s[i] = -np.inf
        best = ids[int(np.argmax(s))]
        assert best.split(":")[0] == q.split(":")[0], (q, best)
    # a note sharing no term with the query scores exactly 0
    assert scores[ids.index("beer:0"), ids.index("quantum:0")] == 0.0


def test_itemcf_cosine_hand_computed_and_cold_rule():
    """Users: u1 {a, b}, u2 {a, b, c}, u3 {c}.  |U_a| = 2, |U_b| = 2, |U_c| = 2.

    sim(a, b) = 2 / sqrt(2 * 2) = 1; sim(a, c) = 1 / sqrt(2 * 2) = 0.5; a cold note d scores 0 everywhere.
    """
    events = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2", "u2", "u3", "u1"],
                           "note_id": ["a", "b", "a", "b", "c", "c", "a"]})
    cf = ItemCFScorer(events)
    s = cf.score(["a", "d"], ["a", "b", "c", "d"])
    assert s[0].tolist() == pytest.approx([0.0, 1.0, 0.5, 0.0])
    assert s[1].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert cf.is_warm("a") and not cf.is_warm("d")


def test_itemcf_planted_groups():
    """Each user engages inside one topic only: every ItemCF neighbour shares the query's topic."""
    rng = np.random.default_rng(0)
    notes = [f"t{t}:{i}" for t in range(3) for i in range(5)]
    rows = []
    for u in range(60):
        t = u % 3
        for i in rng.choice(5, size=3, replace=False):
            rows.append({"user_id": f"u{u}", "note_id": f"t{t}:{i}"})
    cf = ItemCFScorer(pd.DataFrame(rows))
    scores = cf.score(notes, notes)
    for i, q in enumerate(notes):
        for j, c in enumerate(notes):
            if scores[i, j] > 0:
                assert q.split(":")[0] == c.split(":")[0]
