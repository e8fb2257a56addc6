"""BM25 baseline (bm25s) on title + content: the classic lexical I2I retriever.

The candidate pool is indexed once; each query note's own text is the query and `get_scores` returns its BM25 score
against every pool note. Tokenisation is the `segment` of `generation.py` (jieba for CJK, words otherwise), so the
baseline works on Chinese notes too. Notes sharing no term with the query all score 0 and rank as ties.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from notellm.data.schema import CONTENT, NOTE_ID, TITLE
from notellm.evaluation.generation import segment


class BM25Scorer:
    """`Scorer` over a fixed candidate pool; queries may be any note in `notes`."""

    def __init__(self, notes: pd.DataFrame, pool_ids: list[str], name: str = "BM25", k1: float = 1.5,
                 b: float = 0.75) -> None:
        import bm25s

        self.name = name
        frame = notes.set_index(notes[NOTE_ID].astype(str))
        titles, contents = frame[TITLE].fillna(""), frame[CONTENT].fillna("")
        self._text = {i: f"{t} {c}" for i, t, c in zip(frame.index, titles, contents)}
        self.pool_ids = [str(p) for p in pool_ids]
        self._col = {p: j for j, p in enumerate(self.pool_ids)}
        self.retriever = bm25s.BM25(k1=k1, b=b)
        corpus_tokens = [segment(self._text[p]) or ["\u2205"] for p in self.pool_ids]
        self.retriever.index(corpus_tokens, show_progress=False)

    def score(self, query_ids: list[str], candidate_ids: list[str]) -> np.ndarray:
        cols = np.array([self._col[c] for c in candidate_ids])
        out = np.zeros((len(query_ids), len(candidate_ids)), dtype=np.float32)  # (nq, nc)
        for i, q in enumerate(query_ids):
            tokens = [t for t in segment(self._text[str(q)]) if t in self.retriever.vocab_dict]
            if tokens:
                out[i] = self.retriever.get_scores(tokens)[cols]
        return out
