"""Constrained category decoding: a prefix tree over the token ids of the known categories.

Used through transformers' `prefix_allowed_tokens_fn`, so greedy decoding can only ever spell one of the categories
(the paper's "illusory" rate is then 0 by construction). Every path ends with EOS, so a category that is a prefix of
another ("beer" vs "beer/brewing") is still reachable. Hand-written: it is a dict-of-dicts walk with no library
equivalent in transformers (its `Constraint` classes force phrases to appear, they do not restrict to a set).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class CategoryTrie:
    """Prefix tree of token-id sequences, each ending in EOS and mapped back to its category string.

    Args:
        sequences: category string -> token ids (output + end mark + EOS), as the prompt builder makes them.
        eos_id: The EOS id that ends every sequence.
        pad_id: Returned for finished or off-tree rows so they stay finished.
    """

    def __init__(self, sequences: dict[str, list[int]], eos_id: int, pad_id: int) -> None:
        if not sequences:
            raise ValueError("constrained decoding needs at least one category")
        self.eos_id = eos_id
        self.pad_id = pad_id
        self.root: dict[int, dict] = {}
        self.leaves: dict[tuple[int, ...], str] = {}
        for category, ids in sequences.items():
            if not ids or ids[-1] != eos_id:
                raise ValueError(f"category {category!r}: token ids must end with EOS ({eos_id})")
            node = self.root
            for token in ids:
                node = node.setdefault(token, {})
            self.leaves[tuple(ids)] = category
        self.max_len = max(len(ids) for ids in sequences.values())

    def allowed(self, generated: list[int]) -> list[int]:
        """Token ids allowed after `generated` (the tokens produced so far, prompt excluded)."""
        node = self.root
        for token in generated:
            child = node.get(token)
            if child is None:  # finished (EOS then padding) or impossible: keep emitting padding
                return [self.pad_id]
            node = child
        return list(node) if node else [self.pad_id]

    def lookup(self, generated: list[int]) -> str | None:
        """The category spelled by `generated` (up to and including EOS), or None if it is not a full path."""
        if self.eos_id in generated:
            generated = generated[: generated.index(self.eos_id) + 1]
        return self.leaves.get(tuple(generated))

    def prefix_fn(self, prompt_len: int) -> Callable[[int, torch.Tensor], list[int]]:
        """A `prefix_allowed_tokens_fn` for a left-padded batch whose prompts all have width `prompt_len`."""

        def fn(batch_id: int, input_ids: torch.Tensor) -> list[int]:
            return self.allowed(input_ids[prompt_len:].tolist())

        return fn
