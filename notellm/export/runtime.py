"""`OnnxEncoder`: embeds notes with a folder written by `notellm export --format onnx`, on ONNX Runtime.

The inputs are built exactly as `NoteLLM.embed` builds them: the same `NotePromptBuilder` (the exported tokenizer
and the model's prompt config), the same right-padding collate, the same longest-first batches. So the only
difference from the PyTorch path is the graph executor (and, for an int8 export, the quantised weights).

Threads: ONNX Runtime's intra-op pool is sized like PyTorch's (`torch.get_num_threads()`, which follows
OMP_NUM_THREADS and `torch.set_num_threads`) unless `threads` is given; one inter-op thread, since a note batch is
one sequential chain of ops.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from notellm.data.schema import Note

MODEL_FILE = "model.onnx"
META_FILE = "notellm_onnx.json"
FORMAT = "notellm-onnx"
FORMAT_VERSION = 1
INPUT_NAMES = ("input_ids", "attention_mask", "positions")
OUTPUT_NAME = "embeddings"


def is_onnx_export(path: str | Path) -> bool:
    """Whether `path` is a folder written by `notellm export --format onnx`."""
    return (Path(path) / META_FILE).is_file()


def default_threads() -> int:
    import torch

    return max(1, torch.get_num_threads())


def make_session(model_file: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session with `threads` intra-op threads (default: as many as PyTorch uses)."""
    import onnxruntime as ort

    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = default_threads() if threads is None else threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: ORT warns about every unused initializer otherwise
    return ort.InferenceSession(str(model_file), sess_options=opts, providers=["CPUExecutionProvider"])


def read_meta(path: str | Path) -> dict:
    """The export's `notellm_onnx.json`, validated; raises FileNotFoundError / ValueError naming the file."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path} is not an ONNX export ({META_FILE} is missing); write one with "
                                f"`notellm export MODEL --format onnx --out {path}`")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta_path}: not valid JSON: {exc}") from exc
    if meta.get("format") != FORMAT or int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{meta_path}: unsupported format {meta.get('format')!r} v{meta.get('format_version')}")
    for key in ("config", "precision", "emb_dim", "special_tokens"):
        if key not in meta:
            raise ValueError(f"{meta_path}: missing field {key!r}")
    if not (path / MODEL_FILE).is_file():
        raise FileNotFoundError(f"{path / MODEL_FILE} is missing: re-run `notellm export`")
    return meta


def embed_with_session(session, id_lists: list[list[int]], pad_id: int, emb_dim: int,
                       batch_size: int) -> np.ndarray:
    """Run `session` over pre-tokenised inputs in longest-first batches (as `NoteLLM.embed_ids`); input order out."""
    from notellm.model.collate import collate_for_embedding

    out = np.zeros((len(id_lists), emb_dim), dtype=np.float32)
    order = sorted(range(len(id_lists)), key=lambda i: -len(id_lists[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        input_ids, mask, last = collate_for_embedding([id_lists[i] for i in idx], pad_id)
        feeds = dict(zip(INPUT_NAMES, (input_ids.numpy(), mask.numpy(), last.numpy())))
        out[idx] = session.run([OUTPUT_NAME], feeds)[0]  # (b, d)
    return out


class OnnxEncoder:
    """An `Encoder` over an exported folder: `encode(notes) -> (n, d)` float32, L2-normalised.

    Args:
        path: The folder `notellm export --format onnx` wrote.
        batch_size: Notes per ONNX Runtime call (sorted by length, so padding stays small).
        threads: Intra-op threads (default: `torch.get_num_threads()`).
    """

    runtime = "onnx"

    def __init__(self, path: str | Path, batch_size: int = 32, threads: int | None = None,
                 name: str = "NoteLLM") -> None:
        from notellm.config import from_dict
        from notellm.model.backbone import load_tokenizer
        from notellm.model.notellm import NoteLLMConfig
        from notellm.model.prompts import NotePromptBuilder

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.path = Path(path)
        self.meta = read_meta(self.path)
        self.name, self.batch_size = name, batch_size
        self.precision: str = self.meta["precision"]
        self.emb_dim = int(self.meta["emb_dim"])
        cfg = from_dict(NoteLLMConfig, self.meta["config"])
        self.tokenizer = load_tokenizer(self.path)
        self.prompt_builder = NotePromptBuilder(self.tokenizer, cfg.prompt)
        emb = self.meta["special_tokens"]["emb"]
        if self.prompt_builder.emb_id != emb["id"]:
            raise ValueError(f"{self.path}: tokenizer maps {emb['token']!r} to {self.prompt_builder.emb_id}, "
                             f"{META_FILE} records {emb['id']}")
        self.threads = default_threads() if threads is None else threads
        self.session = make_session(self.path / MODEL_FILE, self.threads)

    def encode(self, notes: list[Note]) -> np.ndarray:
        ids = [self.prompt_builder.embedding_ids(note) for note in notes]
        if not ids:
            return np.zeros((0, self.emb_dim), dtype=np.float32)
        return embed_with_session(self.session, ids, self.prompt_builder.pad_id, self.emb_dim, self.batch_size)
