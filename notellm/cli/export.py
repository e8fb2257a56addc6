"""CLI: `notellm export` — a trained NoteLLM's embedding path as an ONNX model (fp32 or int8) for fast inference.

    notellm export out/model --format onnx --data out/data --out out/model-onnx
    notellm export out/model --format onnx --quantize int8 --data out/data --out out/model-int8
    notellm export out/model-onnx --quantize int8 --data out/data --out out/model-int8   # from the fp32 export

The export is checked against PyTorch on real notes of --data before it is written (refused otherwise). With
--quantize int8 and a mined data folder, Recall@10 and R@avg on its test pool are compared with the fp32 model
(PyTorch, or the fp32 export it is quantised from) with paired-bootstrap intervals of the difference, and printed;
a Recall@10 drop of more than one point is said loudly (and recorded in notellm_onnx.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from notellm.cli.common import fail, friendly
from notellm.export.quantize import DEFAULT_SCHEME, SCHEMES


@friendly
def export(
    model: Annotated[Path, typer.Argument(help="Saved NoteLLM folder, or an fp32 ONNX export to quantise (int8).")],
    out: Annotated[Path, typer.Option(help="Folder to write (model.onnx, tokenizer, notellm_onnx.json).")],
    data: Annotated[Path, typer.Option(help="Data folder whose notes check the export (notes.parquet; with "
                                            "note_splits.parquet also the int8 recall check).")],
    format_: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    quantize: Annotated[str, typer.Option(help="none (fp32) or int8 (quantised with --scheme).")] = "none",
    scheme: Annotated[str, typer.Option(help="With --quantize int8: how (notellm/export/quantize.py): "
                                             f"{', '.join(SCHEMES)}.")] = DEFAULT_SCHEME,
    check_notes: Annotated[int, typer.Option(help="Notes the exported graph is checked on against PyTorch.")] = 64,
    recall_check: Annotated[bool, typer.Option(
        help="int8: compare Recall@10 and R@avg with fp32 on the test pool.")] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out folder.")] = False,
) -> None:
    """Export MODEL's note embeddings (token ids -> L2-normalised vectors) to ONNX, checked before writing."""
    from notellm.data.store import frame_to_notes, load_notes
    from notellm.export import ExportCheckError, OnnxExportConfig, export_onnx, is_onnx_export
    from notellm.export.quantize import scheme_named

    if format_ != "onnx":
        fail(f"--format must be onnx, got {format_!r}")
    if is_onnx_export(model):
        _quantize_existing(model, out, data, quantize, scheme, check_notes, recall_check, overwrite)
        return
    try:
        cfg = OnnxExportConfig(quantize=quantize, scheme=scheme_named(scheme), check_notes=check_notes)
        if not (model / "notellm.json").is_file():
            raise FileNotFoundError(f"{model} is not a saved NoteLLM folder (notellm.json is missing)")
        from notellm.model.notellm import NoteLLM

        note_llm = NoteLLM.from_pretrained(model).eval()
        notes = frame_to_notes(load_notes(data))
        meta = export_onnx(note_llm, notes, out, cfg, overwrite=overwrite)
    except ExportCheckError as exc:  # the graph disagrees with PyTorch: the export is refused (exit 1)
        fail(str(exc))
    check = meta["check"]
    typer.echo(f"exported {cfg.precision} ONNX to {out} (checked on {check['notes']} notes: max |cosine diff| "
               f"{max(check['max_abs_pairwise_cosine_diff'], check['max_self_cosine_gap']):.2e} vs PyTorch fp32)")
    if cfg.quantize == "int8" and recall_check:
        from notellm.retrieval.encode import NoteLLMEncoder

        _recall_check(NoteLLMEncoder(note_llm, precision="fp32"), out, data, meta)


def _recall_check(reference, out: Path, data: Path, meta: dict) -> None:
    """Recall@10 and R@avg of the int8 export `out` against `reference` on the test pool; recorded in its metadata
    and printed, as a warning when int8 loses more than a point."""
    from notellm.data.schema import NOTE_SPLITS_FILE
    from notellm.export import OnnxEncoder
    from notellm.export.quality import compare_recall

    if not (data / NOTE_SPLITS_FILE).is_file():
        typer.echo(f"recall check skipped: {data} has no {NOTE_SPLITS_FILE} (mine it: `notellm mine {data}`)")
        return
    result = compare_recall(reference, OnnxEncoder(out), data, progress=True)
    meta["recall_check"] = result.as_dict()
    (out / "notellm_onnx.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if result.ok:
        typer.echo(result.describe())
    else:
        typer.secho(f"warning: {result.describe()}; prefer the fp32 export for this model", err=True,
                    fg=typer.colors.YELLOW)


def _quantize_existing(src: Path, out: Path, data: Path, quantize: str, scheme: str, check_notes: int,
                       recall_check: bool, overwrite: bool) -> None:
    from notellm.data.store import frame_to_notes, load_notes
    from notellm.export import ExportCheckError, OnnxExportConfig
    from notellm.export.onnx import quantize_export
    from notellm.export.quantize import scheme_named

    if quantize != "int8":
        fail(f"{src} is already an ONNX export: only --quantize int8 applies to it")
    try:
        cfg = OnnxExportConfig(quantize="int8", scheme=scheme_named(scheme), check_notes=check_notes)
        meta = quantize_export(src, frame_to_notes(load_notes(data)), out, cfg, overwrite=overwrite)
    except ExportCheckError as exc:  # the graph disagrees with PyTorch: the export is refused (exit 1)
        fail(str(exc))
    check = meta["check"]
    typer.echo(f"quantised {src} to {cfg.precision} ({scheme}) in {out} (checked on {check['notes']} notes: "
               "max |cosine diff| "
               f"{max(check['max_abs_pairwise_cosine_diff'], check['max_self_cosine_gap']):.2e} vs its fp32 graph)")
    if recall_check:  # against the fp32 export, which reproduces PyTorch fp32 (its own check, <= 1e-4 in cosine)
        from notellm.export import OnnxEncoder

        _recall_check(OnnxEncoder(src), out, data, meta)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
