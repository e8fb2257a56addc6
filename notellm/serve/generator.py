"""What /generate needs: a model with `generate_hashtags` / `generate_category` — PyTorch only, loaded when enabled.

Embedding runs on any `Encoder` (retrieval/encode.py; PyTorch or ONNX Runtime), but generation needs the LM head
and constrained decoding, which stay in PyTorch. A service running on an ONNX export therefore loads the PyTorch
NoteLLM only when /generate is enabled (`notellm serve --generate-model DIR`), and only on the first /generate
request (`LazyGenerator`), so a pure-embedding service never pays for it in memory or start-up time.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def can_generate(model: object, task: str) -> bool:
    """Whether `model` offers generation for `task` ("hashtags" or "category")."""
    return callable(getattr(model, "generate_hashtags" if task == "hashtags" else "generate_category", None))


class LazyGenerator:
    """Generation by the NoteLLM saved at `path`, loaded on first use (thread-safe).

    Raises:
        FileNotFoundError: at construction, if `path` is not a saved NoteLLM folder (so a typo fails at start-up).
    """

    def __init__(self, path: str | Path) -> None:
        from notellm.model.notellm import META_FILE

        self.path = Path(path)
        if not (self.path / META_FILE).is_file():
            raise FileNotFoundError(f"--generate-model {self.path} is not a saved NoteLLM folder ({META_FILE} is "
                                    "missing); generation needs the PyTorch model, not an ONNX export")
        self._model = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def model(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from notellm.model.notellm import NoteLLM

                self._model = NoteLLM.from_pretrained(str(self.path)).eval()
            return self._model

    def generate_hashtags(self, notes, **kwargs) -> list[list[str]]:
        return self.model().generate_hashtags(notes, **kwargs)

    def generate_category(self, notes, **kwargs) -> list[str]:
        return self.model().generate_category(notes, **kwargs)
