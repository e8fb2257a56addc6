"""Collation: related-note pairs -> one right-padded `Batch` of 2B sequences; note id lists -> embedding batches.

Layout (docs/method.md §4.2): rows [A_1..A_B, B_1..B_B], so row i and row i+B are partners. Each note sequence is
used once, for both its embedding (GCL) and its generation loss (CSFT).

Choices made here:
- Task mix: per side exactly floor(r * B) notes get the hashtag prompt, the rest the category prompt (the code's
  collator). A note picked for the hashtag prompt without hashtags falls back to the category prompt; a note
  without a category falls back to the hashtag prompt; a note with neither gets an embedding-only sequence
  (labels all -100), so it still serves the contrastive loss. Fallbacks make the realised share differ from r
  when data lacks fields; `Batch.tasks` records what each row got.
- Determinism and resuming: the randomness of batch k (task choice, hashtag sampling) comes from an RNG seeded by
  (seed, k) only. `__call__` numbers batches with an internal counter (saved by `state_dict`); pass
  `batch_index=` to `collate` directly when batches are built out of order (DataLoader workers).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from notellm.data.schema import Note
from notellm.model.prompts import IGNORE_INDEX, NotePromptBuilder, TrainingSequence


@dataclass
class Batch:
    """A training batch of 2B note sequences; rows i and i+B are related notes.

    Attributes:
        input_ids: (2B, T) token ids, right padded.
        attention_mask: (2B, T) 1 on real tokens, 0 on padding.
        labels: (2B, T) target ids on output tokens + end mark + EOS, -100 elsewhere (HF convention: not shifted).
        emb_pos: (2B,) position whose last-layer hidden state is the note embedding (the token before [EMB]).
        tasks: per row "category" | "hashtag" | "none".
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    emb_pos: torch.Tensor
    tasks: tuple[str, ...] = ()

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            labels=self.labels.to(device),
            emb_pos=self.emb_pos.to(device),
            tasks=self.tasks,
        )

    @property
    def num_pairs(self) -> int:
        return self.input_ids.shape[0] // 2


def pad_sequences(seqs: list[TrainingSequence], pad_id: int) -> Batch:
    """Right-pad training sequences into a Batch (pad label -100, attention 0)."""
    if not seqs:
        raise ValueError("cannot collate an empty list of sequences")
    width = max(len(s.input_ids) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)  # (2B, T)
    labels = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)  # (2B, T)
    attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)  # (2B, T)
    for row, seq in enumerate(seqs):
        n = len(seq.input_ids)
        input_ids[row, :n] = torch.tensor(seq.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(seq.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
    emb_pos = torch.tensor([s.emb_pos for s in seqs], dtype=torch.long)  # (2B,)
    return Batch(input_ids, attention_mask, labels, emb_pos, tuple(s.task for s in seqs))


class PairCollator:
    """Turns a list of B (note, related note) pairs into a `Batch` of 2B sequences.

    Args:
        builder: The prompt builder (tokenizer + template).
        hashtag_ratio: r, the share of notes per side given the hashtag prompt (paper: 0.4).
        seed: Base seed; batch k uses an RNG derived from (seed, k).
    """

    def __init__(self, builder: NotePromptBuilder, hashtag_ratio: float = 0.4, seed: int = 0) -> None:
        if not 0.0 <= hashtag_ratio <= 1.0:
            raise ValueError(f"hashtag_ratio must be in [0, 1], got {hashtag_ratio}")
        self.builder = builder
        self.hashtag_ratio = hashtag_ratio
        self.seed = seed
        self.batch_index = 0  # number of batches produced by __call__ so far

    def rng(self, batch_index: int) -> random.Random:
        """The RNG of batch `batch_index`: a function of (seed, batch_index) only."""
        state = np.random.SeedSequence([self.seed, batch_index]).generate_state(2)
        return random.Random(int(state[0]) << 32 | int(state[1]))

    def _sequence(self, note: Note, want_hashtag: bool, rng: random.Random) -> TrainingSequence:
        has_tags = any(tag.strip() for tag in note.hashtags)
        has_category = bool(note.category_levels)
        if want_hashtag and has_tags or not has_category and has_tags:
            return self.builder.training_sequence(note, "hashtag", rng)
        if has_category:
            return self.builder.training_sequence(note, "category", rng)
        return self.builder.embedding_only_sequence(note)

    def collate(self, pairs: list[tuple[Note, Note]], batch_index: int) -> Batch:
        """Build batch number `batch_index` (deterministic given the collator's seed)."""
        if not pairs:
            raise ValueError("cannot collate an empty list of pairs")
        rng = self.rng(batch_index)
        n = len(pairs)
        n_hashtag = int(self.hashtag_ratio * n)  # floor(r * B), per side
        seqs: list[TrainingSequence] = []
        for side in (0, 1):
            hashtag_rows = set(rng.sample(range(n), n_hashtag))
            for row, pair in enumerate(pairs):
                seqs.append(self._sequence(pair[side], row in hashtag_rows, rng))
        return pad_sequences(seqs, self.builder.pad_id)

    def __call__(self, pairs: list[tuple[Note, Note]]) -> Batch:
        batch = self.collate(pairs, self.batch_index)
        self.batch_index += 1
        return batch

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "batch_index": self.batch_index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])
        self.batch_index = int(state["batch_index"])


def collate_for_embedding(id_lists: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad embedding inputs.

    Returns:
        input_ids (N, T), attention_mask (N, T) and last_pos (N,), the index of each row's last real token.
    """
    if not id_lists or any(len(ids) == 0 for ids in id_lists):
        raise ValueError("collate_for_embedding needs a non-empty list of non-empty id lists")
    width = max(len(ids) for ids in id_lists)
    input_ids = torch.full((len(id_lists), width), pad_id, dtype=torch.long)  # (N, T)
    attention_mask = torch.zeros((len(id_lists), width), dtype=torch.long)  # (N, T)
    for row, ids in enumerate(id_lists):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    last_pos = torch.tensor([len(ids) - 1 for ids in id_lists], dtype=torch.long)  # (N,)
    return input_ids, attention_mask, last_pos
