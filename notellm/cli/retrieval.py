"""CLI of the vector layer: `notellm embed` (a data folder's notes into a NoteVectors .npz).

    notellm embed --model runs/x/model --data notellm-data/se --out vectors.npz
    notellm embed --model runs/x/model-int8 --runtime onnx --data notellm-data/se --out vectors.npz
    notellm embed --encoder sbert --data notellm-data/se --out sbert.npz
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from notellm.cli.common import DataDir, fail, friendly


@friendly
def embed(
    data: DataDir,
    out: Annotated[Path, typer.Option(help="Vectors file to write (.npz: ids + vectors).")],
    model: Annotated[Path | None, typer.Option(help="Saved NoteLLM folder or ONNX export (omit with --encoder "
                                                    "sbert).")] = None,
    encoder: Annotated[str, typer.Option(help="notellm or sbert (all-MiniLM-L6-v2).")] = "notellm",
    batch_size: Annotated[int, typer.Option(help="Notes per chunk.")] = 64,
    runtime: Annotated[str | None, typer.Option(help="torch (NoteLLM folder) or onnx (`notellm export` folder); "
                                                     "default: what the --model folder is.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: PyTorch's setting).")] = None,
) -> None:
    """Embed every note of a data folder into a NoteVectors .npz file."""
    from notellm.data.store import frame_to_notes, load_notes
    from notellm.retrieval.encode import encode_notes
    from notellm.retrieval.runtime import load_encoder

    if encoder not in ("notellm", "sbert"):
        fail(f"--encoder must be notellm or sbert, got {encoder!r}")
    if encoder == "notellm" and model is None:
        fail("--model is required with --encoder notellm")
    notes = frame_to_notes(load_notes(data))
    if encoder == "sbert":
        from notellm.evaluation.sbert import SentenceBertEncoder

        enc = SentenceBertEncoder()
    else:
        enc = load_encoder(model, runtime, threads=threads)
    path = encode_notes(enc, notes, chunk_size=batch_size).save(out)
    typer.echo(f"wrote {len(notes)} vectors to {path}")


def register(app: typer.Typer) -> None:
    app.command("embed")(embed)
