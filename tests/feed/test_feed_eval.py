"""Feed evaluation on a planted world: 4 topics, users who stay in one topic, relevance favouring one sub-cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from notellm.feed import FeedConfig, evaluate_feeds, plot_frontier, split_users


def _world(n_topics=4, per_topic=30, d=16, n_users=40, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_topics, d)) * 3
    topic = np.repeat(np.arange(n_topics), per_topic)
    emb = centres[topic] + rng.normal(size=(len(topic), d))
    ids = [f"n{i}" for i in range(len(topic))]
    notes = pd.DataFrame(
        {
            "note_id": ids,
            "title": ids,
            "content": ids,
            "category": [f"c{t}" for t in topic],
            "hashtags": [[f"t{t}", f"x{i % 3}"] for i, t in enumerate(topic)],
        }
    )
    rows = []
    for u in range(n_users):
        t = u % n_topics
        for j, n in enumerate(rng.choice(np.flatnonzero(topic == t), size=8, replace=False)):
            rows.append((f"u{u}", ids[n], pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=j), "click", 1.0))
    events = pd.DataFrame(rows, columns=["user_id", "note_id", "timestamp", "action", "weight"])
    return notes, events, emb.astype(np.float32), ids


def test_split_users_is_a_time_split():
    notes, events, emb, ids = _world()
    events = events.sample(frac=1.0, random_state=1)  # order must not matter
    users = split_users(events, {n: i for i, n in enumerate(ids)}, history_frac=0.5, min_notes=4, max_users=None)
    assert len(users) == 40
    u0 = events[events.user_id == "u0"].sort_values("timestamp").note_id.map({n: i for i, n in enumerate(ids)})
    first = next(u for u in users if u.user_id == "u0")
    assert first.history.tolist() == u0.tolist()[:4] and first.later.tolist() == u0.tolist()[4:]


def test_evaluate_feeds_frontier_and_matching(tmp_path):
    notes, events, emb, ids = _world()
    cfg = FeedConfig(
        feed_size=8,
        n_candidates=40,
        max_users=0,
        window=4,
        metric_window=4,
        match_relevance=0.8,
        grids={"mmr": [1.0, 0.5, 0.2], "dpp": [0.9, 0.5], "ssd": [0.0, 4.0], "ssd_star": [1.0, 0.3]},
    )
    res = evaluate_feeds(notes, events, emb, ids, cfg, progress=False)
    f = res.frontier.set_index(["method", "value"])
    none = res.frontier[res.frontier.method == "none"].iloc[0]
    assert none.score_ratio == pytest.approx(1.0) and none.ndcg == pytest.approx(1.0)
    # λ = 1 / θ = 1 / γ = 0 are the relevance order: identical metrics to 'none'
    for key in [("mmr", 1.0), ("ssd_star", 1.0), ("ssd", 0.0)]:
        assert f.loc[key, "ilad"] == pytest.approx(none.ilad)
    # more diversity weight: more diverse, less relevant
    assert f.loc[("mmr", 0.2), "ilad"] > none.ilad and f.loc[("mmr", 0.2), "score_ratio"] < 1.0
    assert f.loc[("ssd_star", 0.3), "ilad"] > none.ilad
    assert res.n_users == 40 and 0 < res.pool_later_hits <= 4
    matched = res.matched.set_index("method")
    assert "mmr" in matched.index and matched.loc["mmr", "ndcg"] == pytest.approx(0.8)
    assert (tmp_path / "out" / "feed_eval.json").parent.exists() is False
    res.save(tmp_path / "out")
    png = plot_frontier(res, tmp_path / "out" / "frontier.png")
    assert png.stat().st_size > 10_000 and (tmp_path / "out" / "feed_eval.json").is_file()


def test_bad_config_and_inputs():
    notes, events, emb, ids = _world()
    with pytest.raises(ValueError, match="n_candidates"):
        FeedConfig(feed_size=20, n_candidates=10)
    with pytest.raises(ValueError, match="grids: unknown method 'foo'"):
        FeedConfig(grids={"foo": [1.0]})
    with pytest.raises(ValueError, match="does not match"):
        evaluate_feeds(notes, events, emb[:5], ids, FeedConfig(), progress=False)
    with pytest.raises(ValueError, match="no user has >= 50"):
        evaluate_feeds(notes, events, emb, ids, FeedConfig(min_notes=50), progress=False)


def test_matched_interpolates_between_bracketing_points():
    from notellm.feed.evaluate import _matched

    frontier = pd.DataFrame(
        [
            {"method": "none", "param": "", "value": np.nan, "ndcg": 1.0, "ilad": 0.5},
            {"method": "mmr", "param": "lam", "value": 1.0, "ndcg": 1.0, "ilad": 0.5},
            {"method": "mmr", "param": "lam", "value": 0.5, "ndcg": 0.9, "ilad": 0.6},
            {"method": "mmr", "param": "lam", "value": 0.1, "ndcg": 0.7, "ilad": 0.9},
            {"method": "dpp", "param": "theta", "value": 0.5, "ndcg": 0.99, "ilad": 0.55},
        ]
    )
    m = _matched(frontier, "ndcg", 0.8).set_index("method")
    # halfway between (0.9, 0.6, λ 0.5) and (0.7, 0.9, λ 0.1)
    assert m.loc["mmr", "ilad"] == pytest.approx(0.75) and m.loc["mmr", "value"] == pytest.approx(0.3)
    assert "dpp" not in m.index  # its grid never reaches 0.8
