"""CLI of the vector layer: `notellm embed` (a data folder's notes into a NoteVectors .npz).

    notellm embed --model runs/x/model --data notellm-data/se --out vectors.npz
    notellm embed --model runs/x/model-int8 --runtime onnx --data notellm-data/se --out vectors.npz
    notellm embed --model runs/x/model --data notellm-data/se --out vectors/ --engine spark --spark-master yarn
    notellm embed --encoder sbert --data notellm-data/se --out sbert.npz
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from notellm.cli.common import fail, friendly


@friendly
def embed(
    data: Annotated[Path, typer.Option(help="Data folder with notes.parquet.")],
    out: Annotated[Path, typer.Option(
        help="Where to write: a .npz file (ids + vectors) or a folder of Parquet shards (note_id, embedding).")],
    model: Annotated[Path | None, typer.Option(help="Saved NoteLLM folder or ONNX export (omit with --encoder "
                                                    "sbert).")] = None,
    encoder: Annotated[str, typer.Option(help="notellm or sbert (all-MiniLM-L6-v2).")] = "notellm",
    batch_size: Annotated[int, typer.Option(help="Notes per chunk.")] = 64,
    engine: Annotated[str, typer.Option(
        help="local (this process) or spark (a predict_batch_udf on any Spark master; writes Parquet shards).")
    ] = "local",
    spark_master: Annotated[str, typer.Option(help="Spark master URL (--engine spark).")] = "local[2]",
    spark_conf: Annotated[list[str] | None, typer.Option(help="Spark setting key=value (repeatable).")] = None,
    shards: Annotated[int | None, typer.Option(help="Parquet shards to write with --engine spark.")] = None,
    runtime: Annotated[str | None, typer.Option(help="torch (NoteLLM folder) or onnx (`notellm export` folder); "
                                                     "default: what the --model folder is.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: PyTorch's setting).")] = None,
) -> None:
    """Embed every note of a data folder into a NoteVectors .npz file or Parquet shards."""
    from notellm.data.store import frame_to_notes, load_notes
    from notellm.inference.note_embedder import NoteEmbedder
    from notellm.retrieval.encode import encode_notes
    from notellm.retrieval.vector_shards import write_vector_shard

    if encoder not in ("notellm", "sbert"):
        fail(f"--encoder must be notellm or sbert, got {encoder!r}")
    if encoder == "notellm" and model is None:
        fail("--model is required with --encoder notellm")
    if engine not in ("local", "spark"):
        fail(f"--engine must be local or spark, got {engine!r}")
    if engine == "spark" and (encoder != "notellm" or out.suffix == ".npz"):
        fail("--engine spark embeds with a NoteLLM (--encoder notellm) into a folder of Parquet shards (not .npz)")
    if engine == "spark":
        from notellm.data.schema import NOTES_FILE
        from notellm.inference.embed_spark import SparkEmbedConfig, embed_with_spark
        from notellm.spark_session import parse_conf

        cfg = SparkEmbedConfig(master=spark_master, conf=parse_conf(spark_conf), batch_size=batch_size,
                               shards=shards)
        if not (data / NOTES_FILE).is_file():
            raise FileNotFoundError(f"{data / NOTES_FILE} not found: import notes first (`notellm import ...`)")
        embedder = NoteEmbedder(str(model), runtime=runtime, threads=threads)
        count = embed_with_spark(data / NOTES_FILE, embedder, out, cfg)
        typer.echo(f"wrote {count} vectors as Parquet shards to {out}")
        return
    notes = frame_to_notes(load_notes(data))
    if encoder == "sbert":
        from notellm.evaluation.sbert import SentenceBertEncoder

        enc = SentenceBertEncoder()
    else:
        enc = NoteEmbedder(str(model), runtime=runtime, threads=threads)
    vectors = encode_notes(enc, notes, chunk_size=batch_size)
    path = vectors.save(out) if out.suffix == ".npz" else write_vector_shard(vectors, out / "part-00000.parquet")
    typer.echo(f"wrote {len(notes)} vectors to {path}")


def register(app: typer.Typer) -> None:
    app.command("embed")(embed)
