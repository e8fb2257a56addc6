"""Generation metrics merge notes decoded earlier (the quickstart's timing probe) instead of decoding them again."""

from __future__ import annotations

import pandas as pd
import pytest

from notellm.data import schema as S
from notellm.data.schema import Note
from notellm.evaluation.harness import SCORINGS, EvalContext, decode_generation, evaluate_generation

CATEGORIES = ["a/x", "b/y", "c/z"]


class RecordingModel:
    """Per-note outputs that depend only on the note and the decoder (as a real model's should), and a log of
    which notes each call was asked to decode."""

    def __init__(self) -> None:
        self.decoded: list[str] = []

    def generate_category(self, notes, constrained=False, categories=None, progress=False, **how):
        self.decoded += [n.note_id for n in notes]
        shift = len(how.get("scoring", "free")) + int(10 * how.get("prior_weight", 0))
        return [CATEGORIES[(int(n.note_id) + shift) % 3] if constrained else f"free {n.note_id}" for n in notes]

    def generate_hashtags(self, notes, k=5, constrained=False, vocabulary=None, progress=False, **how):
        tags = sorted(vocabulary) if constrained else ["t0", "t1", "t2", "t3"]
        shift = len(how.get("scoring", "free"))
        return [[tags[(int(n.note_id) + shift + j) % len(tags)] for j in range(2)] for n in notes]


def _context(n: int = 8) -> EvalContext:
    notes = [Note(str(i), f"title {i}", f"content {i}", (f"t{i % 4}", f"t{(i + 1) % 4}"), CATEGORIES[i % 3])
             for i in range(n)]
    frame = pd.DataFrame({S.NOTE_ID: [x.note_id for x in notes], S.CATEGORY: [x.category for x in notes]})
    empty = pd.DataFrame({S.NOTE_ID_A: [], S.NOTE_ID_B: []})
    return EvalContext(data_dir=None, notes=frame, notes_by_id={x.note_id: x for x in notes}, events=None,
                       train_pairs=empty, test_pairs=empty, links=None, pool_ids=[x.note_id for x in notes[4:]],
                       train_ids=[x.note_id for x in notes[:4]], breakdowns={}, val_ids=["0", "1"])


def test_a_probed_note_is_not_decoded_again_and_the_metrics_are_unchanged():
    ctx, sample = _context(), ["4", "5", "6", "7"]
    fresh_model, reuse_model = RecordingModel(), RecordingModel()
    fresh = evaluate_generation(fresh_model, ctx, sample, progress=False, val_ids=ctx.val_ids)
    probe = decode_generation(reuse_model, ctx, ["4"], progress=False)
    assert set(probe) == {"4"} and set(probe["4"]) == {"free", *(f"constrained {s}" for s in SCORINGS)}
    reuse_model.decoded.clear()
    reused = evaluate_generation(reuse_model, ctx, sample, progress=False, val_ids=ctx.val_ids, decoded=probe)
    assert "4" not in reuse_model.decoded  # the validation notes and 5, 6, 7 only
    assert set(reuse_model.decoded) == {"0", "1", "5", "6", "7"}
    assert reused["reused"] == 1 and fresh["reused"] == 0
    for key in ("rows", "choice", "outputs", "notes", "vocabulary"):
        assert reused[key] == fresh[key], key


def test_reuse_ignores_notes_outside_the_sample_and_refuses_other_decoders():
    ctx = _context()
    model = RecordingModel()
    other = decode_generation(model, ctx, ["7"], progress=False)
    result = evaluate_generation(model, ctx, ["4", "5"], progress=False, decoded=other)
    assert result["reused"] == 0 and result["notes"] == 2
    free_only = decode_generation(model, ctx, ["4"], progress=False, constrained=False)
    with pytest.raises(ValueError, match="note '4'.*same `constrained`"):
        evaluate_generation(model, ctx, ["4", "5"], progress=False, decoded=free_only)
    unconstrained = evaluate_generation(model, ctx, ["4", "5"], progress=False, constrained=False, decoded=free_only)
    assert unconstrained["reused"] == 1 and [r["decoding"] for r in unconstrained["rows"]] == ["free"]
