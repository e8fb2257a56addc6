"""Category Acc/Ill and hashtag BLEU/ROUGE against hand-computed values.

Run: PYTHONPATH=. python -m pytest tests/evaluation/test_generation.py -q
"""

from __future__ import annotations

import math

import pytest

from notellm.evaluation.generation import category_metrics, hashtag_metrics, segment


def test_category_acc_and_illusory():
    """3 predictions: one exact (case/space-insensitive), one wrong but known, one invented."""
    m = category_metrics(["Beer ", "coffee", "tea"], ["beer", "beer", "ai"], ["beer", "coffee", "ai"])
    assert m["acc"] == pytest.approx(1 / 3)
    assert m["ill"] == pytest.approx(1 / 3)


def test_rouge_hand_computed():
    """hyp = [beer brewing hops], ref = [beer hops].

    ROUGE-1: overlap 2, P = 2/3, R = 1, F = 0.8.  ROUGE-2: hyp bigrams (beer brewing), (brewing hops); ref bigram
    (beer hops): overlap 0.  ROUGE-L: LCS = beer hops = 2 -> F = 0.8.
    """
    m = hashtag_metrics([["beer", "brewing", "hops"]], [["beer", "hops"]])
    assert m["rouge1"] == pytest.approx(0.8)
    assert m["rouge2"] == pytest.approx(0.0)
    assert m["rougeL"] == pytest.approx(0.8)


def test_bleu_exact_match_and_empty():
    """An identical 4+-token prediction has BLEU 1; an empty one scores 0; an empty reference is skipped."""
    m = hashtag_metrics([["a", "b", "c", "d", "e"], [], ["x"]], [["a", "b", "c", "d", "e"], ["q"], []])
    assert m["n"] == 2
    assert m["bleu4"] == pytest.approx(0.5)  # (1 + 0) / 2
    assert m["rouge1"] == pytest.approx(0.5)


def test_bleu_known_value():
    """hyp 'a b c d x' vs ref 'a b c d e': precisions 4/5, 3/4, 2/3, 1/2, BP = 1.

    BLEU = (4/5 * 3/4 * 2/3 * 1/2) ** (1/4) = 0.2 ** 0.25.
    """
    m = hashtag_metrics([["a b c d x"]], [["a b c d e"]])
    assert m["bleu4"] == pytest.approx(0.2**0.25, abs=1e-4)
    assert m["bleu4_corpus"] == pytest.approx(0.2**0.25, abs=1e-4)


def test_chinese_is_segmented_with_jieba():
    """rouge-score's default tokenizer would drop all Chinese; with jieba the identical tags score 1."""
    assert len(segment("我喜欢喝咖啡")) >= 2
    m = hashtag_metrics([["咖啡拉花", "手冲咖啡"]], [["咖啡拉花", "手冲咖啡"]])
    assert m["rouge1"] == pytest.approx(1.0)
    assert not math.isnan(m["bleu4"])


def test_tag_metrics_hand_computed():
    from notellm.evaluation.generation import tag_metrics

    pred = [["Beer", "hops", "ale"], ["coffee"], []]
    truth = [["beer", "hops"], ["espresso", "grind"], ["tea"]]
    m = tag_metrics(pred, truth, vocabulary=["beer", "hops", "coffee", "espresso"])
    assert m["tag_precision"] == 2 / 4  # beer, hops of {beer, hops, ale, coffee}
    assert m["tag_recall"] == 2 / 5
    assert m["tag_ill"] == 1 / 4  # "ale" is unknown
    assert "tag_ill" not in tag_metrics(pred, truth)
    assert hashtag_metrics(pred, truth)["tag_recall"] == 2 / 5
