"""Training pairs and the distributed, seeded, resumable batch sampler.

Choices:
- The plan is a pure function of (seed, epoch): a seeded permutation of the pair indices, cut into GLOBAL batches of
  `batch_pairs × world_size` pairs; rank r takes slice r. Every rank computes the same plan, so no communication is
  needed, ranks never see the same pair in a step, and resuming only needs the micro-batch index (the data position
  saved in a checkpoint).
- No duplicates (the idea of sentence-transformers' NoDuplicatesBatchSampler, re-implemented): while filling a
  global batch, a pair whose note is already in the batch is deferred to the next batch instead of becoming a false
  in-batch negative (a note scored against its own copy). Deferred pairs keep their order. A tail that cannot fill a
  whole batch is dropped for that epoch (every rank needs an equal batch for the all-gather); the next epoch's new
  permutation covers it. Cost is linear in the number of pairs unless a few hub notes own a large share of all
  pairs (then each batch re-scans the deferred ones).
- Epochs repeat with a new permutation when `max_steps` asks for more micro-batches than one epoch holds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from notellm.data.schema import NOTE_ID_A, NOTE_ID_B, SPLIT, Note


@dataclass
class PairData:
    """Notes by id and the (a, b) note-id pairs of one split."""

    notes: dict[str, Note]
    pairs: list[tuple[str, str]]


def pairs_from_frame(frame, notes: dict[str, Note], source: str) -> list[tuple[str, str]]:
    """(note_id_a, note_id_b) tuples from a pairs DataFrame; every id must be a known note (error names the row)."""
    for column in (NOTE_ID_A, NOTE_ID_B):
        if column not in frame.columns:
            raise ValueError(f"{source}: pairs table has no column {column!r} (columns: {list(frame.columns)})")
    pairs = []
    for row, (a, b) in enumerate(zip(frame[NOTE_ID_A].astype(str), frame[NOTE_ID_B].astype(str), strict=True)):
        for note_id in (a, b):
            if note_id not in notes:
                raise ValueError(f"{source}: row {row}: note id {note_id!r} is not in the notes table")
        pairs.append((a, b))
    return pairs


def load_pair_data(data_dir: str | Path, split: str) -> PairData:
    """Notes and the pairs of `split` from a data folder written by the data commands."""
    from notellm.data.store import frame_to_notes, load_notes, load_pairs

    data_dir = Path(data_dir)
    notes_frame = load_notes(data_dir)
    notes = frame_to_notes(notes_frame)
    if not isinstance(notes, dict):
        notes = {note.note_id: note for note in notes}
    frame = load_pairs(data_dir, split)
    if SPLIT in frame.columns:
        frame = frame[frame[SPLIT] == split]
    return PairData(notes=notes, pairs=pairs_from_frame(frame, notes, f"{data_dir} ({split} pairs)"))


def pair_lengths(data: PairData, builder) -> list[int]:
    """Per pair, the token length of its longer note's embedding prompt (what padding a batch up to costs)."""
    note_ids = {i for pair in data.pairs for i in pair}
    length = {i: len(builder.embedding_only_sequence(data.notes[i]).input_ids) for i in sorted(note_ids)}
    return [max(length[a], length[b]) for a, b in data.pairs]


class PairBatchSampler:
    """Global batches of pair indices, deterministic in (seed, epoch), sharded by rank.

    Args:
        pairs: (note_id_a, note_id_b) per pair index.
        batch_pairs: pairs per rank per micro-batch.
        world_size: number of processes; a global batch holds batch_pairs × world_size pairs.
        seed: base seed of the per-epoch permutations.
        no_duplicates: defer pairs whose notes already appear in the global batch.
        shuffle: permute per epoch (off for validation: the file order).
        lengths: a token length per pair (e.g. the longer note's prompt): when given (and shuffling), each window
            of `group_batches` global batches of the permutation is sorted by length before it is cut into batches,
            and the batches are then shuffled, so a batch holds pairs of similar length (less padding).
        group_batches: global batches per length-sorting window.
    """

    def __init__(
        self,
        pairs: list[tuple[str, str]],
        batch_pairs: int,
        world_size: int = 1,
        seed: int = 0,
        no_duplicates: bool = True,
        shuffle: bool = True,
        lengths: list[int] | None = None,
        group_batches: int = 50,
    ) -> None:
        if lengths is not None and len(lengths) != len(pairs):
            raise ValueError(f"lengths has {len(lengths)} entries for {len(pairs)} pairs")
        if group_batches < 1:
            raise ValueError(f"group_batches must be ≥ 1, got {group_batches}")
        self.lengths, self.group_batches = lengths, group_batches
        self.pairs = pairs
        self.batch_pairs = batch_pairs
        self.world_size = world_size
        self.seed = seed
        self.no_duplicates = no_duplicates
        self.shuffle = shuffle
        self._plan: tuple[int, list[list[int]]] = (-1, [])  # the newest epoch's plan only (memory)
        self._lengths: dict[int, int] = {}  # batches per epoch, for locating a micro-batch
        if len(self.epoch_plan(0)) == 0:
            raise ValueError(
                f"{len(pairs)} pairs cannot fill one global batch of {self.global_batch} pairs "
                f"(batch_pairs={batch_pairs} × {world_size} processes); lower train.batch_pairs"
            )

    @property
    def global_batch(self) -> int:
        return self.batch_pairs * self.world_size

    def epoch_plan(self, epoch: int) -> list[list[int]]:
        """The global batches (lists of pair indices) of `epoch`, computed once and cached."""
        if self._plan[0] != epoch:
            n = len(self.pairs)
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(n).tolist() if self.shuffle else list(range(n))
            if self.lengths is not None and self.shuffle:
                batches = self._cut(self._length_sorted(order))
                self._plan = (epoch, [batches[i] for i in rng.permutation(len(batches))])
            else:
                self._plan = (epoch, self._cut(order))
            self._lengths[epoch] = len(self._plan[1])
        return self._plan[1]

    def _length_sorted(self, order: list[int]) -> list[int]:
        """`order` with each window of `group_batches` global batches sorted by length, longest first (stable)."""
        window = self.global_batch * self.group_batches
        out: list[int] = []
        for start in range(0, len(order), window):
            out += sorted(order[start : start + window], key=lambda i: -self.lengths[i])
        return out

    def _cut(self, order: list[int]) -> list[list[int]]:
        size = self.global_batch
        if not self.no_duplicates:
            return [order[i : i + size] for i in range(0, len(order) - size + 1, size)]
        batches: list[list[int]] = []
        pending = deque(order)
        while len(pending) >= size:
            batch: list[int] = []
            seen: set[str] = set()
            deferred: list[int] = []
            while pending and len(batch) < size:
                index = pending.popleft()
                a, b = self.pairs[index]
                if a in seen or b in seen:
                    deferred.append(index)
                    continue
                batch.append(index)
                seen.update((a, b))
            pending.extendleft(reversed(deferred))  # deferred pairs go first into the next batch, in order
            if len(batch) < size:
                break
            batches.append(batch)
        return batches

    def batches_per_epoch(self, epoch: int = 0) -> int:
        if epoch not in self._lengths:
            self.epoch_plan(epoch)
        return self._lengths[epoch]

    def locate(self, micro: int) -> tuple[int, int]:
        """(epoch, batch index in that epoch) of the `micro`-th global batch of the run."""
        epoch = 0
        while micro >= self.batches_per_epoch(epoch):
            micro -= self.batches_per_epoch(epoch)
            epoch += 1
        return epoch, micro

    def global_indices(self, micro: int) -> list[int]:
        epoch, index = self.locate(micro)
        return self.epoch_plan(epoch)[index]

    def local_indices(self, micro: int, rank: int) -> list[int]:
        """The pair indices rank `rank` trains on in the `micro`-th micro-batch of the run."""
        batch = self.global_indices(micro)
        return batch[rank * self.batch_pairs : (rank + 1) * self.batch_pairs]
