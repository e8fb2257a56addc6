"""Embedding-space health on planted spaces; generation baselines that recover planted tags; the report's words."""

from __future__ import annotations

import json

import numpy as np
import pytest

from notellm.evaluation.generation_baselines import diversity, knn_vote, most_frequent
from notellm.evaluation.health import embedding_health
from notellm.evaluation.results import GenerationReport, GenerationRow, build_table


def test_collapsed_space_is_flagged_and_an_isotropic_one_is_not():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=32)
    collapsed = direction + 0.05 * rng.normal(size=(300, 32))  # every note near one direction
    h = embedding_health(collapsed)
    assert h.mean_random_cosine > 0.9 and h.collapsed and h.effective_rank < 6
    iso = embedding_health(rng.normal(size=(300, 32)))
    assert abs(iso.mean_random_cosine) < 0.05 and not iso.collapsed and iso.effective_rank > 25
    assert iso.far_rank == 100 and iso.top1_score > iso.far_score and iso.gap > h.gap


def test_health_far_neighbour_in_a_small_pool_and_bad_input():
    x = np.eye(4)
    h = embedding_health(x)
    assert h.far_rank == 3 and h.top1_score == 0.0 and h.mean_random_cosine == 0.0
    assert h.effective_rank == pytest.approx(4.0)
    with pytest.raises(ValueError, match="at least two"):
        embedding_health(np.ones((1, 3)))


def test_knn_vote_recovers_planted_tags_exactly():
    """Three clusters of training notes, each with its own tags (plus one noisy note); queries near a cluster
    centre get exactly that cluster's tags, in vote order."""
    rng = np.random.default_rng(1)
    centres = np.eye(3, 8) * 5
    tags = [["a1", "a2"], ["b1", "b2", "b3"], ["c1"]]
    train, labels = [], []
    for c, t in zip(centres, tags):
        for _ in range(6):
            train.append(c + 0.1 * rng.normal(size=8))
            labels.append(list(t))
    labels[0] = ["a1", "a2", "noise"]  # one note with an extra tag: outvoted
    train = np.array(train)
    train /= np.linalg.norm(train, axis=1, keepdims=True)
    queries = centres + 0.1 * rng.normal(size=(3, 8))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    out = knn_vote(queries, train, labels, k=2, neighbours=6)
    assert [set(o) for o in out] == [{"a1", "a2"}, {"b1", "b2"}, {"c1"}]
    assert knn_vote(queries, train, [[t[0]] for t in labels], k=1, neighbours=6) == [["a1"], ["b1"], ["c1"]]
    with pytest.raises(ValueError, match="label lists"):
        knn_vote(queries, train, labels[:-1], k=2)


def test_most_frequent_and_diversity_hand_computed():
    train = [["x", "y"], ["y", "z"], ["y", "x"], ["w"]]
    assert most_frequent(train, 2) == ["y", "x"]  # y on 3 notes, x on 2
    assert most_frequent([["b"], ["a"]], 1) == ["a"]  # ties by name
    d = diversity([["a", "b"], ["b", "a"], ["c"], ["a", "b"]])
    assert d["distinct_per_note"] == 3 / 4 and d["modal_share"] == 3 / 4 and d["modal_list"] == ["a", "b"]


def test_report_words_collapse_verdicts_and_the_modal_list(tmp_path):
    from notellm.report.metrics import COLD, DataSummary, RunMeta, RunMetrics
    from notellm.report.render import write_report, write_report_from_file

    hits = [0] * 150 + [60] * 150
    misses = [60] * 300
    raw = {"SentenceBERT": {"paper": {"ks": [1, 10], "greater": misses, "ties": [0] * 300, "pool_size": 200,
                                      "n_candidates": 199, "query_digest": "q"}},
           "NoteLLM": {"paper": {"ks": [1, 10], "greater": hits, "ties": [0] * 300, "pool_size": 200,
                                 "n_candidates": 199, "query_digest": "q"}}}
    rng = np.random.default_rng(0)
    health = {"NoteLLM": embedding_health(np.ones(16) + 0.01 * rng.normal(size=(50, 16))),
              "SentenceBERT": embedding_health(rng.normal(size=(50, 16)))}
    table = build_table("cold", "test pool", raw, health=health)
    row = GenerationRow(model="NoteLLM", decoding="constrained greedy", category={"acc": 0.5, "ill": 0.0, "n": 4},
                        hashtags={"tag_recall": 0.1}, diversity=diversity([["a", "b"]] * 3 + [["c"]]))
    base = GenerationRow(model="most frequent (training notes)", decoding="baseline", category={"acc": 0.25, "n": 4},
                         hashtags={"tag_recall": 0.2}, diversity=diversity([["a", "b"]] * 4))
    metrics = RunMetrics(meta=RunMeta(title="t"), data=DataSummary(notes=10, events=0, pairs={}, pool_size=5),
                         tables={COLD: table}, generation=GenerationReport(notes=4, vocabulary=3, tags_reachable=1.0,
                                                                           rows=[row, base]))
    md, _ = write_report(metrics, tmp_path)
    text = md.read_text()
    assert "NoteLLM: better than SentenceBERT in Avg (paper rule; +50.00 points" in text
    assert "**NoteLLM: collapsed embedding space.**" in text and "SentenceBERT: collapsed" not in text
    assert "gives 75% of the notes the same tag list (a, b)" in text
    assert "Best baseline by tag recall: most frequent (training notes)" in text
    assert " ± " in text and "bands: 95% bootstrap intervals" not in text  # the plot title is in the PNG
    (tmp_path / "metrics.json").write_text(json.dumps(metrics.to_dict()))  # round trip through the JSON contract
    md2, _ = write_report_from_file(tmp_path / "metrics.json", tmp_path / "again")
    assert md2.read_text() == text
    (tmp_path / "old.json").write_text(json.dumps({"meta": {}, "retrieval": {}}))
    with pytest.raises(ValueError, match="report contract"):
        write_report_from_file(tmp_path / "old.json", tmp_path / "old")


def test_readme_tables_from_metrics_json_reuse_the_report_sections(tmp_path):
    from typer.testing import CliRunner

    from notellm.cli import build_app
    from notellm.report.metrics import COLD, FULL, DataSummary, RunMeta, RunMetrics

    raw = {name: {"paper": {"ks": [1, 10], "greater": greater, "ties": [0] * 300, "pool_size": 200,
                            "n_candidates": 199, "query_digest": "q"}}
           for name, greater in (("SentenceBERT", [60] * 300), ("NoteLLM", [0] * 150 + [60] * 150))}
    row = GenerationRow(model="NoteLLM", decoding="constrained pmi λ=1", category={"acc": 0.5, "ill": 0.0, "n": 4},
                        hashtags={"tag_recall": 0.1}, diversity=diversity([["a", "b"]] * 3 + [["c"]]),
                        intervals={"acc": [0.25, 0.75]})
    metrics = RunMetrics(meta=RunMeta(title="t", command="notellm quickstart --budget 6", loadavg_start="1.0"),
                         data=DataSummary(notes=10, events=0, pairs={}, pool_size=5),
                         tables={COLD: build_table("cold", "test pool", raw),
                                 FULL: build_table("full", "full corpus", raw)},
                         generation=GenerationReport(notes=4, vocabulary=3, tags_reachable=1.0, rows=[row]))
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics.to_dict()))
    result = CliRunner().invoke(build_app(), ["report", str(path), "--readme"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.startswith("Run: `notellm quickstart --budget 6`")
    assert "#### Cold notes (test pool)" in text and "#### Full corpus" in text and "#### Generation (%)" in text
    assert text.count("NoteLLM: better than SentenceBERT in Avg (paper rule; +50.00 points") == 2  # both tables
    assert "| NoteLLM | constrained pmi λ=1 | 50.00 ± 25.00 |" in text
    assert "![" not in text and "\n## " not in text  # no plots; headings one level below the README's sections
    assert not (tmp_path / "report.md").exists()  # printed, not written
    bad = CliRunner().invoke(build_app(), ["report", str(tmp_path / "none.json"), "--readme"])
    assert bad.exit_code == 1 and "not found" in bad.output


def test_generation_intervals_over_notes():
    from notellm.evaluation.bootstrap import BootstrapConfig, ratio_intervals
    from notellm.evaluation.generation import per_note_scores

    per = per_note_scores(["a", "B ", "c", "d"], ["a", "b", "x", "y"], [["t1", "t2"], [], ["t3"], ["t4"]],
                          [["t1"], ["t9"], ["T3"], ["t5", "t6"]])
    assert per["category_hit"].tolist() == [1, 1, 0, 0]
    assert per["tag_hits"].tolist() == [1, 0, 1, 0]
    assert per["tags_generated"].sum() == 4 and per["tags_true"].sum() == 5
    ci = ratio_intervals({"p": per["tag_hits"], "r": per["tag_hits"]},
                         {"p": per["tags_generated"], "r": per["tags_true"]}, BootstrapConfig())
    assert 0.0 <= ci["p"][0] <= 2 / 4 <= ci["p"][1] <= 1.0 and 0.0 <= ci["r"][0] <= 2 / 5 <= ci["r"][1] <= 1.0
    # a planted accuracy: 70 hits in 100 notes, the interval covers 0.7 and excludes 0.5
    hits = np.array([1.0] * 70 + [0.0] * 30)
    lo, hi = ratio_intervals({"acc": hits}, {"acc": np.ones(100)}, BootstrapConfig())["acc"]
    assert lo < 0.7 < hi and lo > 0.5
