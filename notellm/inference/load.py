"""`load_encoder(path, runtime)`: the one way a saved model becomes an `Encoder`, on PyTorch or ONNX Runtime.

Every command that embeds notes with a trained model (`notellm embed`, `notellm index build`, `notellm serve`,
`notellm evaluate`) goes through here, so `--runtime torch|onnx` means the same everywhere:

- `torch`: a folder written by `NoteLLM.save_pretrained` (`precision`: auto = bf16 weights only where the hardware
  computes bf16 natively, else fp32; see notellm/precision.py).
- `onnx`: a folder written by `notellm export --format onnx` (fp32 or int8, as exported).

Without `runtime` the folder decides (an ONNX export runs on ONNX Runtime, a NoteLLM folder on PyTorch); a runtime
that does not fit the folder is an error that says how to get the right folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from notellm.retrieval.encode import Encoder

RUNTIMES = ("torch", "onnx")


def folder_runtime(path: str | Path) -> str:
    """The runtime a model folder is for: `onnx` for an ONNX export, `torch` otherwise."""
    from notellm.export.runtime import is_onnx_export

    return "onnx" if is_onnx_export(path) else "torch"


def check_runtime(path: str | Path, runtime: str | None) -> str:
    """The runtime to use for `path` (validated against the folder); raises with the fix when they disagree."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model folder not found: {path}. Train one (`notellm train ...`) or run "
                                "`notellm quickstart`, which writes out/model; nothing is downloaded at run time.")
    kind = folder_runtime(path)
    runtime = runtime or kind
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime == "onnx" and kind != "onnx":
        raise ValueError(f"{path} is a PyTorch NoteLLM folder; --runtime onnx needs an exported one: "
                         f"`notellm export {path} --format onnx --data DATA --out {path}-onnx`, then pass that folder")
    if runtime == "torch" and kind == "onnx":
        raise ValueError(f"{path} is an ONNX export; run it with --runtime onnx, or pass the NoteLLM folder it was "
                         "exported from")
    return runtime


def load_encoder(path: str | Path, runtime: str | None = None, *, batch_size: int = 32, threads: int | None = None,
                 precision: str = "auto", name: str = "NoteLLM") -> Encoder:
    """The `Encoder` of a saved model folder on `runtime` (default: the folder's own).

    Args:
        batch_size: Notes per forward pass (both runtimes sort notes by length first).
        threads: CPU threads for inference: ONNX Runtime's intra-op pool; for PyTorch `torch.set_num_threads`.
            Default: PyTorch's current setting (OMP_NUM_THREADS), which ONNX Runtime then follows too.
        precision: PyTorch only: auto | bf16 | fp32 (notellm/precision.py). An ONNX export's precision is fixed
            when it is exported; asking it for bf16 is an error.
    """
    runtime = check_runtime(path, runtime)
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if runtime == "onnx":
        if precision == "bf16":
            raise ValueError("bf16 applies to the PyTorch runtime; an ONNX export's precision is fixed at export")
        from notellm.export.runtime import OnnxEncoder

        return OnnxEncoder(path, batch_size=batch_size, threads=threads, name=name)
    import torch

    from notellm.model.notellm import NoteLLM
    from notellm.retrieval.encode import NoteLLMEncoder

    if threads is not None:
        torch.set_num_threads(threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    model = NoteLLM.from_pretrained(str(path))
    model.eval()
    return NoteLLMEncoder(model, name=name, batch_size=batch_size, precision=precision)
