"""`export_onnx`: a trained NoteLLM's embedding path as an ONNX graph (fp32, or dynamic int8), checked before writing.

The graph maps right-padded token ids (N, T), their attention mask (N, T) and the position before [EMB] (N,) to the
projected, L2-normalised embeddings (N, d) — exactly `NoteLLM.encode` — with dynamic N and T. It is traced with
`torch.onnx.export(dynamo=True)` (Optimum does not support transformers 5.x; the wrapper is three lines). int8 is
one of ONNX Runtime's calibration-free quantisations of the fp32 graph (export/quantize.py).

Beside `model.onnx` the folder holds the tokenizer files and `notellm_onnx.json` (model config with the prompt
template, special-token ids, precision, opset, library versions, and the check's figures), so `OnnxEncoder` rebuilds
token-for-token the inputs `NoteLLM.embed` builds. Nothing time- or path-dependent is written: the same model and
notes give the same files.

Before anything is written, the exported graph is run on ONNX Runtime over real note prompts (mixed lengths, in
padded batches) and compared with PyTorch fp32; an export that does not reproduce the model is refused
(`ExportCheckError`) and leaves no folder behind.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from notellm.data.schema import Note
from notellm.export.quantize import DEFAULT_SCHEME, SCHEMES, WEIGHTED_OPS, QuantScheme, quantize_graph, scheme_name
from notellm.export.runtime import (
    FORMAT,
    FORMAT_VERSION,
    INPUT_NAMES,
    META_FILE,
    MODEL_FILE,
    OUTPUT_NAME,
    embed_with_session,
    make_session,
)


class ExportCheckError(RuntimeError):
    """The exported graph's embeddings do not match PyTorch's on the check notes."""


@dataclass
class OnnxExportConfig:
    """How `export_onnx` exports and what it accepts."""

    quantize: Literal["none", "int8"] = "none"
    """`int8`: quantise the fp32 export with `scheme` (int8 weights; int4 for a 4-bit weight-only scheme)."""
    scheme: QuantScheme = field(default_factory=lambda: SCHEMES[DEFAULT_SCHEME])
    """How to quantise (export/quantize.py; the named presets are `SCHEMES`)."""
    opset: int = 18
    """ONNX opset of the graph."""
    check_notes: int = 64
    """How many notes (the longest, the shortest, the rest a seeded sample) the exported graph is checked on."""
    check_batch_size: int = 8
    """Batch size of the check: batches mix lengths, so padding and masking are exercised."""
    max_cosine_diff: float = 1e-4
    """fp32: refuse if any pairwise cosine or any note's self-cosine differs from PyTorch by more than this."""
    int8_min_mean_self_cosine: float = 0.9
    """int8: refuse if the notes' mean cosine to their fp32 vectors is below this. It catches a broken graph, not
    quantisation error: a graph that computes something else lands near the model's random-pair cosine (0.72 on
    the quickstart's trained SmolLM2), while dynamic int8 of that model measured 0.941 (max pairwise-cosine
    difference 0.205) and kept Recall@10 within 1 point. A worst-case (max) bound refused that model although
    it ranked as well, so whether int8 ranks well enough is judged by the Recall@10 comparison instead
    (export/quality.py, `notellm export --quantize int8 --data`)."""
    seed: int = 0
    """Seed of the check-note sample."""

    def __post_init__(self) -> None:
        if self.quantize not in ("none", "int8"):
            raise ValueError(f"quantize must be 'none' or 'int8', got {self.quantize!r}")
        if self.check_notes < 2 or self.check_batch_size < 1:
            raise ValueError("check_notes must be >= 2 and check_batch_size >= 1")

    @property
    def precision(self) -> str:
        return self.scheme.precision if self.quantize == "int8" else "fp32"

    @property
    def tolerance(self) -> str:
        if self.quantize == "int8":
            return f"mean self-cosine >= {self.int8_min_mean_self_cosine:g}"
        return f"max cosine difference <= {self.max_cosine_diff:g}"

    def refusal(self, check: dict, exported: np.ndarray) -> str | None:
        """Why the exported graph's embeddings (`check`: `compare_embeddings` figures) are refused, or None."""
        if not np.isfinite(exported).all():
            return "non-finite embeddings"
        if self.quantize == "int8":
            if not check["mean_self_cosine"] >= self.int8_min_mean_self_cosine:
                return (f"mean self-cosine {check['mean_self_cosine']:.3g} < {self.int8_min_mean_self_cosine:g} "
                        f"(max cosine difference {_worst(check):.3g})")
            return None
        if not _worst(check) <= self.max_cosine_diff:
            return f"max cosine difference {_worst(check):.3g} > {self.max_cosine_diff:g}"
        return None


def _worst(check: dict) -> float:
    return max(check["max_abs_pairwise_cosine_diff"], check["max_self_cosine_gap"])


def _embedding_graph(model):
    """`model.encode` as a module with positional tensor inputs (what the exporter traces)."""
    import torch

    class EmbeddingGraph(torch.nn.Module):
        def __init__(self, note_llm) -> None:
            super().__init__()
            self.note_llm = note_llm

        def forward(self, input_ids, attention_mask, positions):  # (N, T), (N, T), (N,) -> (N, d)
            return self.note_llm.encode(input_ids, attention_mask, positions)

    return EmbeddingGraph(model).eval()


def select_check_notes(notes: list[Note], n: int, seed: int = 0) -> list[Note]:
    """The longest and shortest notes (truncation and padding extremes) plus a seeded sample, `n` at most."""
    if len(notes) <= n:
        return list(notes)
    by_length = sorted(range(len(notes)), key=lambda i: (len(notes[i].title) + len(notes[i].content), i))
    extremes = by_length[: n // 4] + by_length[-(n // 4) :]
    rest = sorted(set(range(len(notes))) - set(extremes))
    picked = extremes + random.Random(seed).sample(rest, n - len(extremes))
    return [notes[i] for i in sorted(picked)]


def compare_embeddings(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """How far `candidate` (n, d) is from `reference`: pairwise-cosine and per-note cosine differences."""
    pairwise = np.abs(reference @ reference.T - candidate @ candidate.T)  # (n, n)
    self_cos = np.sum(reference * candidate, axis=1)  # (n,)
    return {"max_abs_pairwise_cosine_diff": float(pairwise.max()),
            "max_self_cosine_gap": float(np.max(1.0 - self_cos)),
            "mean_self_cosine": float(self_cos.mean())}


def _trace(model, example: tuple, opset: int, path: Path) -> None:
    import torch

    batch, length = torch.export.Dim("batch", min=1), torch.export.Dim("length", min=2)
    with torch.no_grad():
        program = torch.onnx.export(
            _embedding_graph(model), example, dynamo=True, opset_version=opset, optimize=True, verbose=False,
            input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
            dynamic_shapes={"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length},
                            "positions": {0: batch}},
        )
    program.save(str(path))
    _strip_trace_metadata(path)


_WEIGHT_ARG = re.compile(r"%p_(?:note_llm_)?(\w+?)_weight\b")


def _strip_trace_metadata(path: Path) -> None:
    """Name each weighted MatMul/Gemm after its parameter (`backbone_model_layers_3_mlp_down_proj`, `proj`), so
    quantisation can address nodes by module (export/quantize.py); then drop the exporter's per-node metadata and
    doc strings: they name this process's temporary FX modules (`<eval_with_key>.33`) and source paths, so two
    exports of the same model would otherwise differ byte-wise."""
    import onnx

    proto = onnx.load(str(path))
    graphs = [proto.graph] + [f for f in proto.functions]
    for graph in graphs:
        taken = {node.name for node in graph.node}
        for node in graph.node:
            fx_node = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.fx_node"), "")
            weight = _WEIGHT_ARG.search(fx_node) if node.op_type in WEIGHTED_OPS else None
            if weight and weight.group(1) not in taken:
                node.name = weight.group(1)
                taken.add(node.name)
            del node.metadata_props[:]
            node.doc_string = ""
    onnx.save(proto, str(path))


def _metadata(model, cfg: OnnxExportConfig, check: dict) -> dict:
    import onnx
    import onnxruntime
    import torch

    from notellm import __version__
    from notellm.config import to_dict

    meta = model.metadata()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "notellm_version": __version__,
        "precision": cfg.precision,
        "opset": cfg.opset,
        "inputs": {"input_ids": "int64 (batch, length), right-padded", "attention_mask": "int64 (batch, length)",
                   "positions": "int64 (batch,), index of the token before [EMB]"},
        "output": {OUTPUT_NAME: f"float32 (batch, {model.emb_dim}), L2-normalised"},
        "emb_dim": model.emb_dim,
        "backbone": meta["backbone"],
        "config": to_dict(model.cfg),
        "template": meta["template"],
        "special_tokens": meta["special_tokens"],
        "vocab_size": meta["vocab_size"],
        "export": asdict(cfg),
        "check": check,
        "versions": {"torch": torch.__version__.split("+")[0], "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__},
    }


def _scheme_hint(cfg: OnnxExportConfig) -> str:
    """What to try when an int8 scheme is refused: quantisation error, not a broken trace, is the usual cause."""
    if cfg.quantize != "int8":
        return ""
    others = [name for name, scheme in SCHEMES.items() if scheme != cfg.scheme and scheme.precision == "int8"]
    return (f" (scheme {scheme_name(cfg.scheme)}: this model may quantise better with another --scheme, e.g. "
            f"{', '.join(others)}; bench/bench_quantize.py compares them)")


def quantize_export(src: str | Path, notes: list[Note], out: str | Path, cfg: OnnxExportConfig | None = None,
                    overwrite: bool = False) -> dict:
    """int8 from an existing fp32 export (no re-trace): quantise `src`'s graph and check it against `src` itself.

    The fp32 export was checked against PyTorch when it was written, so the int8 check against it bounds the int8
    error against PyTorch up to that (<= 1e-4) difference. Same folder layout and refusal rules as `export_onnx`.
    """
    from notellm.export.runtime import OnnxEncoder, read_meta

    cfg = cfg or OnnxExportConfig(quantize="int8")
    if cfg.quantize != "int8":
        raise ValueError("quantize_export makes an int8 model: pass OnnxExportConfig(quantize='int8')")
    src, out = Path(src), Path(out)
    meta = read_meta(src)
    if meta["precision"] != "fp32":
        raise ValueError(f"{src} is a {meta['precision']} export; quantise the fp32 one")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    check_notes = select_check_notes(list(notes), cfg.check_notes, cfg.seed)
    if len(check_notes) < 2:
        raise ValueError("export needs at least 2 notes to check the exported graph on")
    fp32 = OnnxEncoder(src, batch_size=cfg.check_batch_size)
    id_lists = [fp32.prompt_builder.embedding_ids(note) for note in check_notes]
    reference = fp32.encode(check_notes)  # (n, d)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        work = Path(tmp) / "export"
        shutil.copytree(src, work, ignore=shutil.ignore_patterns(MODEL_FILE, META_FILE))
        quantized = quantize_graph(src / MODEL_FILE, work / MODEL_FILE, cfg.scheme)
        exported = embed_with_session(make_session(work / MODEL_FILE), id_lists, fp32.prompt_builder.pad_id,
                                      fp32.emb_dim, cfg.check_batch_size)
        check = {"notes": len(check_notes), "batch_size": cfg.check_batch_size, "tolerance": cfg.tolerance,
                 "reference": f"onnx fp32 export {src.name} (itself checked against PyTorch: {meta['check']})",
                 **compare_embeddings(reference, exported), "quantization": quantized}
        refused = cfg.refusal(check, exported)
        if refused:
            raise ExportCheckError(
                f"the int8 graph does not reproduce {src} on {len(check_notes)} notes: {refused}; nothing was "
                f"written to {out}{_scheme_hint(cfg)}")
        meta = {**meta, "precision": cfg.precision, "export": asdict(cfg), "check": check}
        (work / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    return meta


def export_onnx(model, notes: list[Note], out: str | Path, cfg: OnnxExportConfig | None = None,
                overwrite: bool = False) -> dict:
    """Export `model` (a fp32 `NoteLLM`) to the folder `out`; returns the written metadata (with the check figures).

    Args:
        notes: Real notes to check the export on (`cfg.check_notes` of them are used).
        overwrite: Replace an existing `out`.

    Raises:
        ExportCheckError: the exported graph's embeddings are refused by `cfg.refusal` (fp32: any cosine
            differs from PyTorch by more than `max_cosine_diff`; int8: a broken graph).
        FileExistsError: `out` exists and `overwrite` is false.
    """
    import torch

    from notellm.model.collate import collate_for_embedding

    cfg = cfg or OnnxExportConfig()
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    dtype = next(model.parameters()).dtype
    if dtype != torch.float32:
        raise ValueError(f"export needs the model in float32 (got {dtype}); load it with the default dtype")
    check_notes = select_check_notes(list(notes), cfg.check_notes, cfg.seed)
    if len(check_notes) < 2:
        raise ValueError("export needs at least 2 notes to check the exported graph on")
    builder = model.prompt_builder
    id_lists = [builder.embedding_ids(note) for note in check_notes]
    reference = model.embed_ids(id_lists, batch_size=cfg.check_batch_size)  # (n, d) PyTorch fp32, the truth
    # Example inputs: a padded batch of mixed lengths (batch and length must not be traced as constants 1).
    longest = sorted(range(len(id_lists)), key=lambda i: -len(id_lists[i]))
    example = collate_for_embedding([id_lists[longest[0]], id_lists[longest[-1]]], builder.pad_id)

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        work = Path(tmp) / "export"
        work.mkdir()
        fp32_file = Path(tmp) / "fp32.onnx"
        was_training = model.training
        model.eval()
        try:
            _trace(model, example, cfg.opset, fp32_file)
        finally:
            model.train(was_training)
        quantized = None
        if cfg.quantize == "int8":
            quantized = quantize_graph(fp32_file, work / MODEL_FILE, cfg.scheme)
        else:
            shutil.move(str(fp32_file), work / MODEL_FILE)
            data = fp32_file.with_name(fp32_file.name + ".data")  # external weights, for models over 2 GB
            if data.exists():
                raise ValueError("the model's weights exceed ONNX's 2 GB single-file limit; not supported yet")
        session = make_session(work / MODEL_FILE)
        exported = embed_with_session(session, id_lists, builder.pad_id, model.emb_dim, cfg.check_batch_size)
        check = {"notes": len(check_notes), "batch_size": cfg.check_batch_size, "tolerance": cfg.tolerance,
                 **compare_embeddings(reference, exported)}
        if quantized is not None:
            check["quantization"] = quantized
        refused = cfg.refusal(check, exported)
        if refused:
            raise ExportCheckError(
                f"the exported {cfg.precision} graph does not reproduce the PyTorch model on {len(check_notes)} "
                f"notes: {refused}; nothing was written to {out}{_scheme_hint(cfg)}")
        model.tokenizer.save_pretrained(work)
        meta = _metadata(model, cfg, check)
        (work / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    return meta
