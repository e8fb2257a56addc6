"""Prior-calibrated (PMI) decoding: score a continuation by log p(y | note) − λ·log p(y | empty note).

Why: a briefly trained NoteLLM's constrained decoder gave the same generic tags to every note (#11). Greedy and
beam search maximise log p(y | note), and a weakly conditioned model puts most of that mass on the sequences it
likes for *any* note. Subtracting λ times the log-probability the same model gives the sequence for an empty note
(same prompt, blank title and content) removes that note-free preference; λ = 1 is pointwise mutual information
between note and output, λ = 0 is plain greedy. λ is chosen on validation notes (evaluation/harness.py).

The calibration works token by token, so greedy search on the calibrated scores maximises the calibrated sum one
step at a time. The prior runs as a second, smaller decoding pass beside the model's: the empty-note prompt once
per batch, then one token per row per step with its own key/value cache. Rows are matched to the cache by their
generated prefix, so beam search's reordering is followed too (`reorder_cache`); a prefix never seen is recomputed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import DynamicCache, LogitsProcessor


class PriorCalibration(LogitsProcessor):
    """A transformers `LogitsProcessor` that returns log_softmax(scores) − λ·log p_prior(next token | prefix).

    Args:
        causal_lm: The model that produced `scores` (the prior is the same model on another prompt).
        prior_ids: The prompt of an empty note (same task and template as the real prompts).
        prompt_width: Width of the (left-padded) real prompts: generated tokens start there.
        weight: λ ≥ 0; 0 leaves the scores' ranking unchanged.
    """

    def __init__(self, causal_lm, prior_ids: list[int], prompt_width: int, weight: float) -> None:
        if weight < 0:
            raise ValueError(f"prior weight λ must be >= 0, got {weight}")
        if not prior_ids:
            raise ValueError("the prior prompt is empty")
        self.lm, self.prior_ids, self.width, self.weight = causal_lm, list(prior_ids), prompt_width, weight
        self._cache: DynamicCache | None = None
        self._rows: dict[tuple[int, ...], int] = {}  # generated prefix -> its row in the cache
        self._logprobs: torch.Tensor | None = None  # (rows, V) prior next-token log-probs of the cached rows

    def _forward(self, ids: torch.Tensor, cache: DynamicCache) -> torch.Tensor:
        out = self.lm(input_ids=ids, cache=cache, use_cache=True)
        return F.log_softmax(out.logits[:, -1, :].float(), dim=-1)  # (b, V)

    def _restart(self, generated: torch.Tensor) -> torch.Tensor:
        """Prior log-probs computed from scratch for every row: empty-note prompt + the row's generated tokens."""
        prompt = torch.tensor(self.prior_ids, device=generated.device).expand(generated.shape[0], -1)
        self._cache = DynamicCache()
        return self._forward(torch.cat([prompt, generated], dim=1), self._cache)

    def prior(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(b, V) prior next-token log-probs for the rows of `input_ids` (b, width + g)."""
        generated = input_ids[:, self.width :]  # (b, g)
        keys = [tuple(row) for row in generated.tolist()]
        parents = [self._rows.get(key[:-1]) for key in keys] if generated.shape[1] else [None]
        if self._cache is None or not generated.shape[1] or any(p is None for p in parents):
            logprobs = self._restart(generated)
        else:
            self._cache.reorder_cache(torch.tensor(parents, device=input_ids.device))
            logprobs = self._forward(generated[:, -1:], self._cache)
        self._rows = {key: row for row, key in enumerate(keys)}
        return logprobs

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        calibrated = F.log_softmax(scores.float(), dim=-1)
        if self.weight:
            calibrated = calibrated - self.weight * self.prior(input_ids)
        # Tokens the constraint masked stay -inf (−inf − finite); the scores' dtype is kept for the caller.
        return calibrated.to(scores.dtype)
