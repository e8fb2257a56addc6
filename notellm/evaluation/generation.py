"""Generation metrics of docs/method.md §5.3: category Acc / illusory rate, hashtag BLEU-4 and ROUGE-1/2/L F1.

Choices (documented because the official code gets BLEU's reference shape wrong):
- Text is segmented first: jieba for text containing CJK characters, lower-cased word/punctuation tokens
  otherwise; the tokens are space-joined and handed to sacrebleu with `tokenize="none"`, and to rouge-score with
  the same segmenter as its tokenizer (rouge-score's default tokenizer drops every non-ASCII character).
- The hypothesis is the generated hashtags joined by spaces; the reference is the note's own hashtags joined by
  spaces: ONE reference string per note. sacrebleu's `sentence_bleu(hyp, [ref])` and `corpus_bleu(hyps, [refs])`
  (a list of reference *streams*, one stream here) are therefore called in the shape sacrebleu documents.
- `bleu4` is the mean of per-note sentence BLEU (sacrebleu's default `exp` smoothing), as the paper averages per
  sample; `bleu4_corpus` is corpus BLEU. Notes with no reference hashtags are skipped; an empty prediction scores 0.
- Category accuracy is exact match after whitespace/case normalisation; the illusory rate is the share of generated
  categories outside the closed category set.
- Beyond the paper, hashtags are also scored as tags (case-insensitive exact match): `tag_precision` (share of
  generated tags that are among the note's own), `tag_recall` (share of the note's tags generated), both
  micro-averaged, and, given the known vocabulary, `tag_ill`: the share of generated tags outside it.
"""

from __future__ import annotations

import re

import numpy as np

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def segment(text: str) -> list[str]:
    """Tokens of `text`: jieba words for CJK text, lower-cased word/punctuation tokens otherwise."""
    text = text.strip()
    if not text:
        return []
    if _CJK.search(text):
        import jieba

        jieba.setLogLevel(60)  # silence its "building prefix dict" chatter
        return [w.strip().lower() for w in jieba.lcut(text) if w.strip()]
    return [w.lower() for w in _WORD.findall(text)]


class _SegmentTokenizer:
    """rouge-score tokenizer protocol (`tokenize(text) -> list[str]`) backed by `segment`."""

    def tokenize(self, text: str) -> list[str]:
        return segment(text)


def _normalise(text: str) -> str:
    """Categories and tags compare after whitespace/case normalisation."""
    return " ".join(text.strip().lower().split())


def category_metrics(predicted: list[str], truth: list[str], categories: list[str]) -> dict[str, float]:
    """Acc (exact match) and Ill (share outside the category set), both in [0, 1]."""
    if len(predicted) != len(truth):
        raise ValueError(f"category_metrics: {len(predicted)} predictions but {len(truth)} references")
    if not predicted:
        return {"acc": float("nan"), "ill": float("nan"), "n": 0}
    known = {_normalise(c) for c in categories}
    pred = [_normalise(p) for p in predicted]
    acc = float(np.mean([p == _normalise(t) for p, t in zip(pred, truth)]))
    ill = float(np.mean([p not in known for p in pred]))
    return {"acc": acc, "ill": ill, "n": len(pred)}


def per_note_scores(predicted_categories: list[str], true_categories: list[str], predicted_tags: list[list[str]],
                    true_tags: list[list[str]]) -> dict[str, np.ndarray]:
    """Per note: category hit (0/1), and tag hits / generated tags / reference tags (for micro P and R as ratios of
    sums), the bootstrap's input for generation intervals (`bootstrap.ratio_intervals`)."""
    cat = np.array([_normalise(p) == _normalise(t) for p, t in zip(predicted_categories, true_categories)], float)
    hits, n_pred, n_true = [], [], []
    for pred_tags, ref_tags in zip(predicted_tags, true_tags):
        pred, ref = {_normalise(t) for t in pred_tags}, {_normalise(t) for t in ref_tags}
        hits.append(len(pred & ref)), n_pred.append(len(pred)), n_true.append(len(ref))
    return {"category_hit": cat, "tag_hits": np.array(hits, float), "tags_generated": np.array(n_pred, float),
            "tags_true": np.array(n_true, float)}


def tag_metrics(predicted: list[list[str]], truth: list[list[str]], vocabulary: list[str] | None = None) -> dict:
    """Exact-tag precision and recall (micro) and, with a vocabulary, the illusory share of generated tags."""
    hits = n_pred = n_true = 0
    for pred_tags, ref_tags in zip(predicted, truth):
        pred, ref = {_normalise(t) for t in pred_tags}, {_normalise(t) for t in ref_tags}
        hits, n_pred, n_true = hits + len(pred & ref), n_pred + len(pred), n_true + len(ref)
    out = {"tag_precision": hits / n_pred if n_pred else float("nan"),
           "tag_recall": hits / n_true if n_true else float("nan")}
    if vocabulary is not None:
        known = {_normalise(t) for t in vocabulary}
        generated = [_normalise(t) for tags in predicted for t in tags]
        out["tag_ill"] = float(np.mean([t not in known for t in generated])) if generated else float("nan")
    return out


def hashtag_metrics(predicted: list[list[str]], truth: list[list[str]],
                    vocabulary: list[str] | None = None) -> dict[str, float]:
    """BLEU-4 (sentence mean and corpus) and ROUGE-1/2/L F1 of generated vs reference hashtags, in [0, 1], plus
    `tag_metrics` (exact tags; the illusory share when `vocabulary` is given)."""
    import sacrebleu
    from rouge_score import rouge_scorer

    if len(predicted) != len(truth):
        raise ValueError(f"hashtag_metrics: {len(predicted)} predictions but {len(truth)} references")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=_SegmentTokenizer())
    hyps, refs, bleu, r1, r2, rl = [], [], [], [], [], []
    for pred_tags, ref_tags in zip(predicted, truth):
        ref = " ".join(segment(" ".join(ref_tags)))
        if not ref:
            continue
        hyp = " ".join(segment(" ".join(pred_tags)))
        hyps.append(hyp)
        refs.append(ref)
        if not hyp:
            bleu.append(0.0), r1.append(0.0), r2.append(0.0), rl.append(0.0)
            continue
        bleu.append(sacrebleu.sentence_bleu(hyp, [ref], tokenize="none").score / 100.0)
        rouge = scorer.score(ref, hyp)  # (target, prediction)
        r1.append(rouge["rouge1"].fmeasure)
        r2.append(rouge["rouge2"].fmeasure)
        rl.append(rouge["rougeL"].fmeasure)
    tags = tag_metrics(predicted, truth, vocabulary)
    if not refs:
        return {"bleu4": float("nan"), "bleu4_corpus": float("nan"), "rouge1": float("nan"),
                "rouge2": float("nan"), "rougeL": float("nan"), "n": 0, **tags}
    corpus = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none").score / 100.0
    return {
        "bleu4": float(np.mean(bleu)),
        "bleu4_corpus": float(corpus),
        "rouge1": float(np.mean(r1)),
        "rouge2": float(np.mean(r2)),
        "rougeL": float(np.mean(rl)),
        "n": len(refs),
        **tags,
    }
