"""notellm: the NoteLLM note-recommendation stack (pair mining, LLM embeddings, evaluation, SSD, CB2CF, serving).

The public API, importable from the top level. Names resolve lazily (PEP 562), so `import notellm` stays cheap
and pulls in torch only when a model-side name is first used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # data
    "Note": "notellm.data.schema",
    "load_notes": "notellm.data.store",
    "load_events": "notellm.data.store",
    "load_pairs": "notellm.data.store",
    "load_links": "notellm.data.store",
    "frame_to_notes": "notellm.data.store",
    "import_files": "notellm.data.store",
    "import_stackexchange": "notellm.data.store",
    "MiningConfig": "notellm.data.store",
    "SplitConfig": "notellm.data.store",
    "mine_pairs": "notellm.data.store",
    "mine_and_split": "notellm.data.store",
    # model and training
    "NoteLLM": "notellm.model.notellm",
    "NoteLLMConfig": "notellm.model.notellm",
    "PromptConfig": "notellm.model.prompts",
    "TrainConfig": "notellm.train.config",
    "load_train_config": "notellm.train.config",
    "train": "notellm.train.loop",
    # retrieval and evaluation
    "NoteVectors": "notellm.retrieval.vectors",
    "VectorIndex": "notellm.retrieval.index",
    "IndexConfig": "notellm.retrieval.index",
    "encode_notes": "notellm.retrieval.encode",
    "load_encoder": "notellm.inference.load",
    "export_onnx": "notellm.export",
    # diversity
    "rerank": "notellm.rerank",
    "rerank_batch": "notellm.rerank",
    "CB2CF": "notellm.cb2cf",
    # serving
    "create_app": "notellm.serve.app",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'notellm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
