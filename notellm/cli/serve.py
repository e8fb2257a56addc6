"""CLI: `notellm serve` (the HTTP service) and `notellm index build` (embed a data folder into an index folder).

    notellm index build --model out/model --data data/se --out out/index
    notellm index build --model out/model --data data/se --out out/index --kind hnsw --set hnsw_m=16
    notellm serve --model out/model --index out/index --port 8000
    notellm serve --model out/model --index out/index --port 8000 --workers 2   # 2 reader processes + the writer
    notellm serve --model out/model-int8 --runtime onnx --generate-model out/model --index out/index
    notellm serve --model out/model --index out/index --backend milvus --milvus-uri http://host:19530
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Annotated

import typer

from notellm.cli.common import ConfigFile, DataDir, Set, bad_option, fail, friendly

RUNTIME_HELP = ("torch (a NoteLLM folder) or onnx (a `notellm export` folder); default: what the --model folder "
                "is.")
THREADS_HELP = "CPU threads for embedding (default: PyTorch's setting, i.e. OMP_NUM_THREADS or all cores)."

index_app = typer.Typer(help="Build the index the service serves.", no_args_is_help=True)


@index_app.command("build")
@friendly
def build(
    model: Annotated[Path, typer.Option(help="Saved NoteLLM folder, or an ONNX export (`notellm export`).")],
    data: DataDir,
    out: Annotated[Path, typer.Option(help="Index folder to write.")],
    batch_size: Annotated[int, typer.Option(help="Notes per model forward pass.")] = 32,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index folder.")] = False,
    runtime: Annotated[str | None, typer.Option(help=RUNTIME_HELP)] = None,
    threads: Annotated[int | None, typer.Option(help=THREADS_HELP)] = None,
    vectors: Annotated[Path | None, typer.Option(
        help="Use these vectors instead of embedding: Parquet shards (`notellm embed --engine spark`) or .npz.")
    ] = None,
    kind: Annotated[str | None, typer.Option(
        help="Vector index: flat (= exact), hnsw, ivf, or auto (exact up to exact_max notes, else hnsw). Stored "
             "in the folder; the server searches with it. Default: auto.")] = None,
    config: ConfigFile = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="IndexConfig override key=value (hnsw_m, hnsw_ef_construction, hnsw_ef_search, ivf_nlist, "
                      "ivf_nprobe, exact_max, max_dead_fraction); repeatable, after --config.")] = None,
) -> None:
    """Embed every note of DATA with MODEL (or take --vectors) and write a durable index folder to OUT."""
    from notellm.config import load_config
    from notellm.data.store import frame_to_notes, load_notes
    from notellm.inference.load import load_encoder
    from notellm.retrieval.index import IndexConfig
    from notellm.serve.build import build_index, index_from_vectors

    try:
        index_cfg = load_config(IndexConfig, config, [*(set_ or []), *([f"kind={kind}"] if kind else [])])
        notes = frame_to_notes(load_notes(data))
        if vectors is not None:
            path = index_from_vectors(notes, vectors, out, overwrite=overwrite, index=index_cfg,
                                      info={"model": str(model.resolve()), "data": str(data.resolve()),
                                            "vectors": str(vectors.resolve())})
            typer.echo(f"indexed {len(notes)} notes into {path}")
            return
        encoder = load_encoder(model, runtime, batch_size=batch_size, threads=threads)
        path = build_index(encoder, notes, out, overwrite=overwrite, index=index_cfg,
                           info={"model": str(model.resolve()), "data": str(data.resolve())})
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"indexed {len(notes)} notes into {path}")


@friendly
def serve(
    model: Annotated[Path, typer.Option(help="Saved NoteLLM folder, or an ONNX export (`notellm export`).")],
    index: Annotated[Path | None, typer.Option(help="Index folder from `notellm index build` (seeds Milvus).")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    backend: Annotated[str, typer.Option(help="faiss (local durable store) or milvus.")] = "faiss",
    milvus_uri: Annotated[str | None, typer.Option(help="Milvus URI (http://host:19530) or milvus-lite file.")] = None,
    config: ConfigFile = None,
    set_: Set = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    runtime: Annotated[str | None, typer.Option(help=RUNTIME_HELP)] = None,
    threads: Annotated[int | None, typer.Option(help=THREADS_HELP)] = None,
    generate_model: Annotated[Path | None, typer.Option(
        help="Saved NoteLLM folder that serves /generate (PyTorch, loaded on the first /generate request); "
             "default: the --model itself on the torch runtime, none (501) on onnx.")] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request (costs CPU at high request rates; "
                                                  "/metrics counts requests either way).")] = False,
    workers: Annotated[int, typer.Option(
        min=1, help="Processes answering reads. 1: one process does everything. N > 1: N read-only processes "
                    "that follow the index's write-ahead log share the port and forward writes to this process, "
                    "which holds the model and the index (docs/serving.md). Local index (--backend faiss) only.")
    ] = 1,
) -> None:
    """Serve related notes, live note updates, embeddings and generation over HTTP (OpenAPI at /docs)."""
    import uvicorn

    from notellm.config import load_config
    from notellm.data.schema import Note
    from notellm.inference.load import load_encoder
    from notellm.serve.app import create_app
    from notellm.serve.backend import open_index
    from notellm.serve.config import ServeConfig
    from notellm.serve.generator import LazyGenerator

    if workers > 1 and backend != "faiss":
        bad_option("--workers", f"--workers {workers} needs --backend faiss (reader processes follow the local "
                                "index's log); with Milvus run several `notellm serve` replicas instead")
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO))
    cfg = load_config(ServeConfig, config, set_ or [])
    cfg.allowed_hosts.append(host)  # the bound interface answers under its own name (security.py)
    encoder = load_encoder(model, runtime, batch_size=cfg.embed_batch_size, threads=threads)
    generator = LazyGenerator(generate_model) if generate_model else getattr(encoder, "model", None)
    notes = open_index(backend, index, milvus_uri=milvus_uri, milvus_collection=cfg.milvus_collection,
                       compact_every=cfg.compact_every)
    try:
        dim = encoder.encode([Note(note_id="probe", title="probe", content="")]).shape[1]
        if dim != notes.dim:
            fail(f"the model embeds into {dim} dims but the index holds {notes.dim}-dim vectors; "
                 "rebuild the index with this model (`notellm index build`)")
        logging.getLogger(__name__).info("embedding on %s (%s)%s", encoder.runtime, encoder.precision,
                                         "; /generate enabled" if generator is not None else "; /generate disabled")
        app = create_app(notes, encoder, cfg, model_name=model.name, generator=generator)
        # The model, the notes and the libraries are ~0.5 M long-lived objects: a full cyclic-GC pass over them
        # stalls every request for ~300 ms (measured; the p99 of a busy server). Freeze them out of the collector;
        # they live as long as the process, and refcounting still frees anything acyclic.
        gc.collect()
        gc.freeze()
        if workers > 1:  # this process writes (and holds the model); `workers` processes answer reads
            from notellm.serve.workers import serve_workers

            try:
                serve_workers(app, index, cfg, workers=workers, host=host, port=port, log_level=log_level,
                              access_log=access_log)
            except RuntimeError as exc:
                fail(str(exc))
            return
        # uvloop + httptools: the fastest event loop and HTTP parser uvicorn offers (both are dependencies)
        uvicorn.run(app, host=host, port=port, log_level=log_level, loop="uvloop", http="httptools",
                    access_log=access_log)
    finally:
        notes.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(index_app, name="index")
