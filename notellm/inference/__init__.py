"""Loading a saved model for inference: a model folder becomes an `Encoder` on PyTorch or ONNX Runtime.

    load.py   load_encoder(path, runtime): the one place a NoteLLM folder (PyTorch) or an ONNX export becomes an
              `Encoder` (retrieval/encode.py); `check_runtime` validates `--runtime` against the folder
    note_embedder.py  NoteEmbedder: a picklable "model folder -> embed a batch of notes" callable (local and Spark)
    embed_spark.py    `notellm embed --engine spark`: NoteEmbedder in a predict_batch_udf, Parquet vector shards

It sits above model/ and export/, whose encoders it builds, and below the commands and the service that use it.
"""

from __future__ import annotations

from notellm.inference.load import RUNTIMES, check_runtime, folder_runtime, load_encoder

__all__ = ["RUNTIMES", "check_runtime", "folder_runtime", "load_encoder"]
