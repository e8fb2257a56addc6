"""`notellm embed --engine spark`: embed a notes table on a Spark cluster with `NoteEmbedder` in a predict_batch_udf.

Each Spark Python worker builds one `NoteEmbedder` (so loads the model once) and embeds the batches it is given;
the output is a folder of Parquet shards (note_id, embedding), the same layout the local path writes, read by
`notellm index build --vectors`. Notes cross to the workers as JSON of the canonical fields (note_id, title,
content, hashtags, category), so any notes table with those columns works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from notellm.data import schema as S
from notellm.inference.note_embedder import NoteEmbedder
from notellm.retrieval.vector_shards import EMBEDDING, NOTE_JSON_FIELDS
from notellm.spark_session import spark_session


@dataclass
class SparkEmbedConfig:
    """Where the Spark embedding job runs and how it batches."""

    master: str = "local[2]"
    conf: dict[str, str] = field(default_factory=dict)
    batch_size: int = 32
    """Notes per predict_batch_udf call (and per model forward pass)."""
    shards: int | None = None
    """Output Parquet files (None: one per input partition)."""
    precision: str = "auto"
    """PyTorch runtime only: auto | bf16 | fp32 (notellm/precision.py)."""


def embed_with_spark(notes_source: str | Path, embedder: NoteEmbedder, out_dir: str | Path,
                     cfg: SparkEmbedConfig) -> int:
    """Embed every note of `notes_source` (a notes Parquet file/folder or a table) into shards in `out_dir`.

    Returns the number of notes embedded. Raises ValueError when the notes lack a canonical column.
    """
    spark, created = spark_session(cfg.master, cfg.conf, "notellm-embed")
    try:
        from pyspark.ml.functions import predict_batch_udf
        from pyspark.sql import functions as F
        from pyspark.sql.types import ArrayType, FloatType

        source = str(notes_source)
        notes = spark.read.parquet(source) if Path(source).exists() or "/" in source else spark.table(source)
        missing = [c for c in NOTE_JSON_FIELDS if c not in notes.columns]
        if missing:
            raise ValueError(f"notes {source!r} have no column(s) {missing} (columns: {notes.columns})")
        recipe = NoteEmbedder(embedder.model_dir, batch_size=cfg.batch_size, runtime=embedder.runtime,
                              threads=embedder.threads, precision=cfg.precision, name=embedder.name)

        def make_predict_fn():
            worker = NoteEmbedder(recipe.model_dir, recipe.batch_size, recipe.runtime, recipe.threads,
                                  recipe.precision, recipe.name)  # once per worker
            return worker.embed_json

        embed_udf = predict_batch_udf(make_predict_fn, return_type=ArrayType(FloatType()),
                                      batch_size=cfg.batch_size)
        as_json = F.to_json(F.struct(*[F.col(c) for c in NOTE_JSON_FIELDS]))
        out = notes.select(F.col(S.NOTE_ID).cast("string").alias(S.NOTE_ID), as_json.alias("note_json"))
        if cfg.shards:
            out = out.repartition(cfg.shards)
        out = out.select(S.NOTE_ID, embed_udf("note_json").alias(EMBEDDING))
        out.write.mode("overwrite").parquet(str(out_dir))
        return spark.read.parquet(str(out_dir)).count()
    finally:
        if created:
            spark.stop()
