"""Constrained decoding over a closed vocabulary: categories (one item) and hashtags (up to k distinct items).

The output a NoteLLM is trained to generate is `prefix item₁ sep item₂ … end EOS` (prompts.py). `ListConstraint`
is the automaton of exactly that language with every item drawn from a closed set: token tries of the items as
they open the output (`" artificial-intelligence"`) and as they follow the separator (`", machine-learning"`),
then the end mark and EOS. Greedy decoding through transformers' `prefix_allowed_tokens_fn` can then only spell
known categories / hashtags, so the "illusory" rate is 0 by construction, and the result is read off the automaton
(which items were completed), not parsed back from text.

- Items are distinct: a completed item cannot be chosen again, and a branch whose every item is used is closed.
- At most `k` items; after the k-th only the end mark is allowed. An item that is a prefix of another ("c" and
  "c++") is still reachable: both "finish here" and "go on" stay open, the automaton keeps every reading.
- Each item is tokenised on its own (behind its separator). Byte-level BPE tokenisers split at the separator, so
  this equals the training tokenisation of the joined string, except where the item's last punctuation merges with
  the end mark or separator ("c++," is one pre-token); there the constraint spells the same text in other tokens.
- If generation stops before EOS (max_new_tokens), the completed items so far are returned: all are in the set.

Hand-written: transformers' `Constraint` classes force phrases to appear, they do not restrict output to a set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

_END_ITEM = -1  # the `below` mark of end-trie nodes: never "used", so the end branch is always open


@dataclass(eq=False)
class _Node:
    children: dict[int, _Node] = field(default_factory=dict)
    item: int | None = None  # the item whose token sequence ends here
    below: set[int] = field(default_factory=set)  # items whose sequences pass through (or end at) this node
    done: bool = False  # end trie: EOS reached


def _trie(sequences: list[list[int]], items: list[int]) -> _Node:
    root = _Node()
    for item, ids in zip(items, sequences):
        node = root
        node.below.add(item)
        for token in ids:
            node = node.children.setdefault(token, _Node())
            node.below.add(item)
        node.item = item
    return root


# A reading of the tokens so far: the node reached and the items completed before it.
_State = tuple[_Node, tuple[int, ...]]


class ListConstraint:
    """Up to `k` distinct items of a closed set, joined by the separator and closed by the end mark + EOS.

    Args:
        items: The item strings (category "l1/l2" or hashtag), in a fixed order; duplicates are not allowed.
        first_ids: Per item, its token ids when it opens the output (output prefix + item).
        next_ids: Per item, its token ids after a previous item (separator + item); unused when k = 1.
        end_ids: The end mark's token ids followed by EOS.
        k: The most items one output may hold.
        pad_id: Returned as the only allowed token once the output is finished (or if nothing fits).
    """

    def __init__(self, items: list[str], first_ids: list[list[int]], next_ids: list[list[int]] | None,
                 end_ids: list[int], k: int, pad_id: int) -> None:
        if not items:
            raise ValueError("constrained decoding needs at least one item (category or hashtag)")
        if len(set(items)) != len(items):
            raise ValueError("constrained decoding: items must be distinct")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if len(first_ids) != len(items) or (k > 1 and (next_ids is None or len(next_ids) != len(items))):
            raise ValueError("constrained decoding: one token sequence per item is needed")
        for name, ids in [("end", end_ids), *((f"item {items[i]!r}", s) for i, s in enumerate(first_ids))]:
            if not ids:
                raise ValueError(f"constrained decoding: {name} has no tokens")
        self.items, self.k, self.pad_id = list(items), k, pad_id
        order = list(range(len(items)))
        self._first = _trie(first_ids, order)
        self._next = _trie(next_ids, order) if k > 1 else None
        self._end = _trie([end_ids], [_END_ITEM])
        node = self._end
        while node.children:
            node = next(iter(node.children.values()))
        node.done = True
        self.max_item_len = max(len(ids) for ids in first_ids)
        self.end_len = len(end_ids)

    # --- the automaton -----------------------------------------------------------------------------------------
    def _open(self, node: _Node, used: tuple[int, ...]) -> bool:
        return any(item not in used for item in node.below)

    def _after_item(self, used: tuple[int, ...]) -> list[_State]:
        """The readings right after an item completes: another item (if k allows) or the end mark."""
        states: list[_State] = []
        if self._next is not None and len(used) < self.k and self._open(self._next, used):
            states.append((self._next, used))
        states.append((self._end, used))
        return states

    def start(self) -> list[_State]:
        return [(self._first, ())]

    def advance(self, states: list[_State], token: int) -> list[_State]:
        out: dict[tuple[int, tuple[int, ...]], _State] = {}
        for node, used in states:
            child = node.children.get(token)
            if child is None or not self._open(child, used):
                continue
            out[(id(child), used)] = (child, used)
            if child.item is not None and child.item != _END_ITEM and child.item not in used:
                for state in self._after_item(used + (child.item,)):
                    out[(id(state[0]), state[1])] = state
        return list(out.values())

    def walk(self, generated: list[int]) -> list[_State]:
        states = self.start()
        for token in generated:
            states = self.advance(states, token)
            if not states:
                break
        return states

    def allowed_from(self, states: list[_State]) -> list[int]:
        if any(node.done for node, _ in states):
            return [self.pad_id]
        tokens = {token for node, used in states for token, child in node.children.items() if self._open(child, used)}
        return sorted(tokens) if tokens else [self.pad_id]

    # --- public ------------------------------------------------------------------------------------------------
    def allowed(self, generated: list[int]) -> list[int]:
        """Token ids allowed after `generated` (the tokens produced so far, prompt excluded)."""
        return self.allowed_from(self.walk(generated))

    def result(self, generated: list[int]) -> tuple[list[str], bool]:
        """(the items `generated` spells, whether it reached EOS). Tokens after EOS are ignored.

        If EOS was never reached (generation ran out of tokens), the items completed so far are returned.
        """
        states, best, finished = self.start(), (), False
        for token in generated:
            states = self.advance(states, token)
            if not states:
                break
            done = [used for node, used in states if node.done]
            if done:
                best, finished = done[0], True
                break
            best = max((used for _, used in states), key=len)
        return [self.items[i] for i in best], finished

    def prefix_fn(self, prompt_len: int) -> Callable[[int, torch.Tensor], list[int]]:
        """A `prefix_allowed_tokens_fn` for a left-padded batch whose prompts all have width `prompt_len`.

        Readings are cached per generated prefix, so each decoding step advances by one token instead of
        replaying the whole output.
        """
        cache: dict[tuple[int, ...], list[_State]] = {(): self.start()}

        def fn(batch_id: int, input_ids: torch.Tensor) -> list[int]:
            generated = tuple(input_ids[prompt_len:].tolist())
            states = cache.get(generated)
            if states is None:
                parent = cache.get(generated[:-1])
                states = self.advance(parent, generated[-1]) if parent is not None else self.walk(list(generated))
                cache[generated] = states
            return self.allowed_from(states)

        return fn
