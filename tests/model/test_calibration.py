"""Prior-calibrated (PMI) constrained decoding: the processor against a brute-force forward, and planted structure
where a note-free preference for one category wins greedy decoding on every note but not calibrated decoding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from notellm.data.schema import Note
from notellm.model.calibration import PriorCalibration
from notellm.model.notellm import EMPTY_NOTE


def _brute_prior(lm, prior_ids: list[int], generated: torch.Tensor) -> torch.Tensor:
    """Prior next-token log-probs with no cache: the whole empty prompt + generated tokens, one row at a time."""
    rows = [lm(input_ids=torch.tensor([prior_ids + row])).logits[0, -1] for row in generated.tolist()]
    return F.log_softmax(torch.stack(rows).float(), dim=-1)


def test_processor_equals_brute_force_through_steps_and_beam_reordering(tiny_model):
    lm, builder = tiny_model.causal_lm.eval(), tiny_model.prompt_builder
    prior_ids = builder.generation_ids(EMPTY_NOTE, "category")
    width, weight = 5, 0.7
    proc = PriorCalibration(lm, prior_ids, width, weight)
    prompt = torch.randint(0, 100, (3, width))
    steps = [torch.tensor([[11], [12], [13]]), torch.tensor([[21], [22], [23]]), torch.tensor([[31], [32], [33]])]
    generated = torch.zeros((3, 0), dtype=torch.long)
    with torch.no_grad():
        for i, step in enumerate([None, *steps]):
            if step is not None:
                if i == 2:  # beam search: row 0 continues row 2's prefix, row 2 duplicates row 1's
                    generated = generated[[2, 1, 1]]
                generated = torch.cat([generated, step], dim=1)
            ids = torch.cat([prompt, generated], dim=1)
            scores = torch.randn(3, lm.config.vocab_size)
            expected = F.log_softmax(scores, -1) - weight * _brute_prior(lm, prior_ids, generated)
            assert torch.allclose(proc(ids, scores), expected, atol=1e-4)
        # A row whose prefix was never seen (not a continuation of the last step) is recomputed, not guessed.
        odd = torch.cat([prompt, torch.tensor([[7, 8, 9, 10]] * 3)], dim=1)
        scores = torch.randn(3, lm.config.vocab_size)
        expected = F.log_softmax(scores, -1) - weight * _brute_prior(lm, prior_ids, odd[:, width:])
        assert torch.allclose(proc(odd, scores), expected, atol=1e-4)


def test_processor_keeps_masked_tokens_masked_and_checks_its_arguments(tiny_model):
    lm = tiny_model.causal_lm.eval()
    prior_ids = tiny_model.prompt_builder.generation_ids(EMPTY_NOTE, "category")
    scores = torch.full((1, lm.config.vocab_size), float("-inf"))
    scores[0, [3, 9]] = torch.tensor([1.0, 2.0])
    with torch.no_grad():
        out = PriorCalibration(lm, prior_ids, 4, 1.0)(torch.zeros((1, 4), dtype=torch.long), scores)
    assert torch.isfinite(out).sum() == 2 and torch.isfinite(out[0, [3, 9]]).all()
    # λ = 0: log-softmax of the scores, the same ranking as greedy.
    with torch.no_grad():
        zero = PriorCalibration(lm, prior_ids, 4, 0.0)(torch.zeros((1, 4), dtype=torch.long), scores)
    assert torch.allclose(zero, F.log_softmax(scores, -1))
    with pytest.raises(ValueError, match="λ"):
        PriorCalibration(lm, prior_ids, 4, -1.0)
    with pytest.raises(ValueError, match="empty"):
        PriorCalibration(lm, [], 4, 1.0)


def _plant_prior(model, generic: str, own: dict[str, str], categories: list[str]):
    """Plant a degenerate model: every context strongly prefers `generic`'s tokens (+6), a real note weakly prefers
    its own category's (+3), the note told by a content word (`own`: word -> category). Row roles are read at prefill
    and kept per key/value cache object, so the bias holds through incremental decoding."""
    builder = model.prompt_builder
    first = {c: set(builder.output_category_ids(c)) for c in categories}
    unique = {c: first[c] - set().union(*(first[o] for o in categories if o != c)) for c in categories}
    markers = {builder.encode_piece(" " + word)[0]: cat for word, cat in own.items()}
    roles: dict[int, list[str | None]] = {}

    def hook(module, args, kwargs, output):
        ids, cache = kwargs.get("input_ids"), kwargs.get("cache", kwargs.get("past_key_values"))
        if ids.shape[1] > 1:  # prefill: which note does each row hold?
            roles[id(cache)] = [next((markers[t] for t in row if t in markers), None) for row in ids.tolist()]
        logits = output.logits
        logits[:, -1, list(unique[generic])] += 6.0
        for row, cat in enumerate(roles.get(id(cache), [])):
            if cat is not None:
                logits[row, -1, list(unique[cat])] += 3.0
        return output

    return model.causal_lm.register_forward_hook(hook, with_kwargs=True)


def test_calibration_removes_a_planted_note_free_preference(tiny_model):
    categories = ["generic", "stout", "espresso"]
    notes = [Note("n1", "beer", "a dark beer"), Note("n2", "shot", "a short coffee"), Note("n3", "malt", "very dark")]
    handle = _plant_prior(tiny_model, "generic", {"dark": "stout", "coffee": "espresso"}, categories)
    try:
        greedy = tiny_model.generate_category(notes, constrained=True, categories=categories, batch_size=2)
        pmi = tiny_model.generate_category(notes, constrained=True, categories=categories, scoring="pmi",
                                           prior_weight=1.0, batch_size=2)
        weak = tiny_model.generate_category(notes, constrained=True, categories=categories, scoring="pmi",
                                            prior_weight=0.2, batch_size=2)
    finally:
        handle.remove()
    assert greedy == ["generic"] * 3  # the degenerate path: one answer for every note
    assert pmi == ["stout", "espresso", "stout"]  # log p(c | note) − log p(c | empty note) finds each note's own
    assert weak == ["generic"] * 3  # 3 − 6 + 0.2·6 < 0: too small a λ leaves the prior in charge


def test_pmi_with_zero_weight_is_greedy_without_the_repetition_penalty(tiny_model, notes, monkeypatch):
    import notellm.model.notellm as module

    vocabulary = ["brewing", "espresso", "yeast", "stout", "grinding", "neural-networks", "c++"]
    with torch.no_grad():  # make different notes take different branches
        for layer in tiny_model.causal_lm.model.layers:
            layer.self_attn.o_proj.weight.mul_(10)
            layer.mlp.down_proj.weight.mul_(10)
    zero = tiny_model.generate_hashtags(notes, k=3, max_new_tokens=30, constrained=True, vocabulary=vocabulary,
                                        scoring="pmi", prior_weight=0.0)
    monkeypatch.setattr(module, "REPETITION_PENALTY", 1.0)
    plain = tiny_model.generate_hashtags(notes, k=3, max_new_tokens=30, constrained=True, vocabulary=vocabulary)
    assert zero == plain
    full = tiny_model.generate_hashtags(notes, k=3, max_new_tokens=30, constrained=True, vocabulary=vocabulary,
                                        scoring="pmi")
    for tags in full:  # calibrated decoding walks the same automaton
        assert 1 <= len(tags) <= 3 and len(set(tags)) == len(tags) and set(tags) <= set(vocabulary)
