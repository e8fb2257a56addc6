"""Zero-shot LLM baselines (last-token pooling) and the packaged SentenceBERT.

Run: PYTHONPATH=. python -m pytest tests/evaluation/test_zero_shot.py -q
"""

from __future__ import annotations

import numpy as np

from notellm.data.schema import Note
from notellm.evaluation.sbert import SentenceBertEncoder, sbert_model_dir
from notellm.evaluation.zero_shot import PROMPT_EOL, LastTokenEncoder

SHORT = Note("a", "Hops", "Which hops for an IPA?")
LONG = Note("b", "Coffee grinders", "Burr or blade grinder for espresso at home, and why does it matter? " * 3)


def test_last_token_pooling_ignores_padding(tiny_backbone_dir):
    """A short note embedded alone equals the same note right-padded next to a long one."""
    enc = LastTokenEncoder(str(tiny_backbone_dir), batch_size=8, precision="fp32")
    alone = enc.encode([SHORT])
    batched = enc.encode([SHORT, LONG])
    np.testing.assert_allclose(alone[0], batched[0], atol=1e-5)
    assert not np.allclose(batched[0], batched[1])


def test_prompteol_wraps_the_text(tiny_backbone_dir):
    enc = LastTokenEncoder(str(tiny_backbone_dir), prompt=PROMPT_EOL)
    text = enc.tokenizer.decode(enc._ids(SHORT))
    assert text.startswith('This sentence: "Hops') and text.endswith('" means in one word: "')
    assert enc.name == "PromptEOL zero-shot"


def test_packaged_sbert_loads_offline():
    assert (sbert_model_dir() / "modules.json").is_file()
    enc = SentenceBertEncoder()
    vectors = enc.encode([SHORT, Note("c", "IPA hops", "Best hops for an India pale ale?"), LONG])
    assert vectors.shape == (3, 384)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2]  # the two hop questions are closer than hops vs grinders


def test_finetune_sbert_respects_epochs_and_budget():
    """32 pairs, batch 16, one epoch = 2 steps; a zero budget takes no step (and says so in the log)."""
    from notellm.evaluation.sbert import finetune_sbert

    pairs = [(Note(f"a{i}", f"hops question {i}", "which hops " * 5), Note(f"b{i}", f"hops answer {i}", "hops " * 5))
             for i in range(32)]
    encoder, log = finetune_sbert(pairs, max_seconds=600, batch_size=16, progress=False)
    assert log["steps"] == 2 and np.isfinite(log["final_loss"])
    assert encoder.encode(pairs[0][:1]).shape == (1, 384)
    _, log = finetune_sbert(pairs, max_seconds=0, batch_size=16, progress=False)
    assert log["steps"] == 0 and log["final_loss"] is None
