"""Embed a note pool with any `Encoder` into `NoteVectors`.

An `Encoder` is anything with `encode(notes) -> np.ndarray (n, d)`: NoteLLM on PyTorch (`NoteLLMEncoder`) or on
ONNX Runtime (`notellm.export.OnnxEncoder`), the zero-shot LLM baselines, SentenceBERT. It is the one embedding
contract: evaluation, `notellm embed`, the index builder and the service all embed through it, and
`inference/load.py` `load_encoder(path, runtime)` turns a saved model folder into one. `encode_notes` feeds it
length-sorted chunks (similar lengths pad less), shows progress, restores the original order and L2-normalises, so
every encoder's output is comparable by inner product (= cosine, docs/method.md §5.1).

Encoders may also say what they run on (`runtime`: torch / onnx, `precision`: fp32 / bf16 / int8); the
service reports it on /health.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from notellm.data.schema import Note
from notellm.retrieval.exact import l2_normalize
from notellm.retrieval.vectors import NoteVectors


@runtime_checkable
class Encoder(Protocol):
    """Maps notes to one embedding row each."""

    name: str

    def encode(self, notes: list[Note]) -> np.ndarray:  # (n, d)
        ...


def note_text(note: Note) -> str:
    """The plain text the non-NoteLLM baselines read: title, then content (hashtags excluded)."""
    return f"{note.title}\n{note.content}".strip()


def encode_notes(
    encoder: Encoder, notes: list[Note], chunk_size: int = 64, progress: bool = True, desc: str | None = None
) -> NoteVectors:
    """Embed `notes` in length-sorted chunks of `chunk_size`; returns unit-norm `NoteVectors` in input order."""
    if not notes:
        raise ValueError("encode_notes: no notes to embed")
    order = sorted(range(len(notes)), key=lambda i: len(notes[i].title) + len(notes[i].content))
    rows: list[np.ndarray | None] = [None] * len(notes)
    bar = tqdm(total=len(notes), desc=desc or f"embed ({getattr(encoder, 'name', 'encoder')})", disable=not progress,
               unit="note")
    for start in range(0, len(order), chunk_size):
        chunk = order[start : start + chunk_size]
        out = np.asarray(encoder.encode([notes[i] for i in chunk]), dtype=np.float32)  # (c, d)
        if out.shape[0] != len(chunk):
            raise ValueError(f"encoder {getattr(encoder, 'name', encoder)!r} returned {out.shape[0]} rows for "
                             f"{len(chunk)} notes")
        for i, row in zip(chunk, out):
            rows[i] = row
        bar.update(len(chunk))
    bar.close()
    return NoteVectors([n.note_id for n in notes], l2_normalize(np.stack(rows)))  # type: ignore[arg-type]


class NoteLLMEncoder:
    """Adapter: a trained `NoteLLM` (notellm.model) as an `Encoder` (its category-prompt embedding, docs/method.md §3).

    `precision="auto"` (notellm/precision.py) runs bf16 only where the hardware computes it natively, and then holds
    the backbone's weights in bf16 (no per-call autocast casts of fp32 weights); elsewhere fp32, because emulated
    bf16 on AVX2-only CPUs is ~6x slower than fp32. Note: casting changes `model` in place.
    """

    runtime = "torch"

    def __init__(self, model, name: str = "NoteLLM", batch_size: int = 32, precision: str = "auto") -> None:
        from notellm.precision import resolve_precision

        self.model, self.name, self.batch_size = model, name, batch_size
        self.choice = resolve_precision(precision, model.device.type, what=f"embed ({name})")
        model.hold_weights_in(self.choice.dtype)

    @property
    def precision(self) -> str:
        """What /health and reports show: bf16 (weights held in bf16) or fp32."""
        return self.choice.name

    def encode(self, notes: list[Note]) -> np.ndarray:
        out = self.model.embed(notes, batch_size=self.batch_size, progress=False)
        return np.asarray(out, dtype=np.float32)
