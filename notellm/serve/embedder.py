"""What the service needs from a model (`Embedder`), and loading the trained NoteLLM from a local folder.

The service is written against this small Protocol so its store, durability and HTTP logic can be tested with a
deterministic embedder; production passes `NoteLLM` (notellm/model/notellm.py), which fulfils it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from notellm.data.schema import Note


@runtime_checkable
class Embedder(Protocol):
    """Turns notes into L2-normalised embeddings (N, d)."""

    def embed(self, notes: list[Note], batch_size: int = 32) -> np.ndarray: ...


def can_generate(model: object, task: str) -> bool:
    """Whether `model` offers generation for `task` ("hashtags" or "category")."""
    return callable(getattr(model, "generate_hashtags" if task == "hashtags" else "generate_category", None))


def load_model(path: str | Path) -> Embedder:
    """Load a saved NoteLLM (`NoteLLM.save_pretrained` folder) for serving, offline only.

    Raises:
        FileNotFoundError: the folder does not exist, with the command that produces one.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model folder not found: {path}. Train one (`notellm train ...`) or run "
                                "`notellm quickstart`, which writes out/model; nothing is downloaded at run time.")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from notellm.model.notellm import NoteLLM
    from notellm.precision import inference_dtype

    model = NoteLLM.from_pretrained(str(path), dtype=inference_dtype())  # bf16 weights where bf16 is native
    if hasattr(model, "eval"):
        model.eval()
    return model
