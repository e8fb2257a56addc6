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
                    true_tags: list[list[str]], categories: list[str] | None = None,
                    vocabulary: list[str] | None = None) -> dict[str, np.ndarray]:
    """Per note: category hit (0/1), and tag hits / generated tags / reference tags (for micro P and R as ratios of
    sums), the bootstrap's input for generation intervals (`bootstrap.ratio_intervals`). Given the closed sets,
    also `category_ill` (0/1: outside `categories`), `tags_unknown` / `tags_listed` (generated tags outside
    `vocabulary` / all generated tags, as `tag_metrics` counts them)."""
    cat = np.array([_normalise(p) == _normalise(t) for p, t in zip(predicted_categories, true_categories)], float)
    hits, n_pred, n_true = [], [], []
    for pred_tags, ref_tags in zip(predicted_tags, true_tags):
        pred, ref = {_normalise(t) for t in pred_tags}, {_normalise(t) for t in ref_tags}
        hits.append(len(pred & ref)), n_pred.append(len(pred)), n_true.append(len(ref))
    out = {"category_hit": cat, "tag_hits": np.array(hits, float), "tags_generated": np.array(n_pred, float),
           "tags_true": np.array(n_true, float)}
    if categories is not None:
        known = {_normalise(c) for c in categories}
        out["category_ill"] = np.array([_normalise(p) not in known for p in predicted_categories], float)
    if vocabulary is not None:
        known = {_normalise(t) for t in vocabulary}
        out["tags_unknown"] = np.array([sum(_normalise(t) not in known for t in tags) for tags in predicted_tags],
                                       float)
        out["tags_listed"] = np.array([len(tags) for tags in predicted_tags], float)
    return out


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


def hashtag_per_note(predicted: list[list[str]], truth: list[list[str]]) -> dict[str, np.ndarray]:
    """Per note (n,): sentence BLEU-4 and ROUGE-1/2/L F1 (0 for a note without reference tags) and `has_reference`
    (0/1): the means over notes with references are Σ score / Σ has_reference, the bootstrap's ratio input."""
    import sacrebleu
    from rouge_score import rouge_scorer

    if len(predicted) != len(truth):
        raise ValueError(f"hashtag_metrics: {len(predicted)} predictions but {len(truth)} references")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=_SegmentTokenizer())
    out = {k: np.zeros(len(predicted)) for k in ("bleu4", "rouge1", "rouge2", "rougeL", "has_reference")}
    for i, (pred_tags, ref_tags) in enumerate(zip(predicted, truth)):
        ref = " ".join(segment(" ".join(ref_tags)))
        if not ref:
            continue
        out["has_reference"][i] = 1.0
        hyp = " ".join(segment(" ".join(pred_tags)))
        if not hyp:
            continue  # an empty prediction scores 0
        out["bleu4"][i] = sacrebleu.sentence_bleu(hyp, [ref], tokenize="none").score / 100.0
        rouge = scorer.score(ref, hyp)  # (target, prediction)
        out["rouge1"][i], out["rouge2"][i], out["rougeL"][i] = (rouge[k].fmeasure for k in ("rouge1", "rouge2",
                                                                                           "rougeL"))
    return out


def hashtag_metrics(predicted: list[list[str]], truth: list[list[str]],
                    vocabulary: list[str] | None = None) -> dict[str, float]:
    """BLEU-4 (sentence mean and corpus) and ROUGE-1/2/L F1 of generated vs reference hashtags, in [0, 1], plus
    `tag_metrics` (exact tags; the illusory share when `vocabulary` is given)."""
    import sacrebleu

    per = hashtag_per_note(predicted, truth)
    kept = per["has_reference"] > 0
    tags = tag_metrics(predicted, truth, vocabulary)
    if not kept.any():
        return {"bleu4": float("nan"), "bleu4_corpus": float("nan"), "rouge1": float("nan"),
                "rouge2": float("nan"), "rougeL": float("nan"), "n": 0, **tags}
    hyps = [" ".join(segment(" ".join(p))) for p, k in zip(predicted, kept) if k]
    refs = [" ".join(segment(" ".join(t))) for t, k in zip(truth, kept) if k]
    corpus = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none").score / 100.0
    return {**{k: float(per[k][kept].mean()) for k in ("bleu4", "rouge1", "rouge2", "rougeL")},
            "bleu4_corpus": float(corpus), "n": int(kept.sum()), **tags}
