"""CLI: `notellm quickstart` (the main job), `notellm ablate`, `notellm evaluate`, `notellm embed`, `notellm report`.

    notellm quickstart                                  # shipped Stack Exchange data, SmolLM2, 30 min budget
    notellm quickstart --notes notes.csv --events events.csv --budget 60
    notellm ablate --budget 60
    notellm evaluate --model runs/x/model --data notellm-data/se --out runs/x/eval
    notellm embed --model runs/x/model --data notellm-data/se --out vectors.npz
    notellm embed --model runs/x/model-int8 --runtime onnx --data notellm-data/se --out vectors.npz
    notellm embed --model runs/x/model --data notellm-data/se --out vectors/ --engine spark --spark-master yarn
    notellm report runs/x/metrics.json
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Budget = Annotated[float, typer.Option("--budget", help="Total wall-clock minutes (split as the report says).")]
Out = Annotated[str, typer.Option("--out", help="Run folder (stages cached inside; re-run to resume).")]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _config(stackexchange, notes, events, out, model, config, budget, max_notes, skip_baselines, gen_notes, seed,
            override, warm_quantile=0.6, precision="auto", folds=1):
    from notellm.pipeline.quickstart import QuickstartConfig

    try:
        return QuickstartConfig(stackexchange=stackexchange, notes=notes, events=events, out=out, model=model,
                                config=config, budget_minutes=budget, max_notes=max_notes,
                                skip_baselines=skip_baselines, gen_notes=gen_notes, seed=seed,
                                warm_quantile=warm_quantile, overrides=list(override or []), precision=precision,
                                folds=folds)
    except ValueError as exc:
        _fail(str(exc))


def quickstart(
    stackexchange: Annotated[str | None, typer.Option(help="Stack Exchange dumps folder (default: shipped).")]
    = None,
    notes: Annotated[str | None, typer.Option(help="Your notes file (CSV/JSONL/Parquet); needs --events.")] = None,
    events: Annotated[str | None, typer.Option(help="Your events file (behaviour log).")] = None,
    out: Out = "notellm-runs/quickstart",
    model: Annotated[str, typer.Option(help="Backbone: smollm2-135m, gemma3-270m, tiny or a local HF folder.")]
    = "smollm2-135m",
    config: Annotated[str | None, typer.Option(help="Training YAML (default: configs/<preset>.yaml).")] = None,
    budget: Budget = 30.0,
    max_notes: Annotated[int, typer.Option(help="Use only the N most engaged notes (quick slice); 0 = all.")] = 0,
    skip_baselines: Annotated[bool, typer.Option(help="Skip ablation trainings and SentenceBERT fine-tuning.")]
    = False,
    gen_notes: Annotated[int, typer.Option(help="Test notes for the generation metrics.")] = 100,
    seed: Annotated[int, typer.Option(help="Split and training seed.")] = 0,
    warm_quantile: Annotated[float, typer.Option(
        help="Cut the log at this quantile of event times for the warm-note (ItemCF) table; 0 = none.")] = 0.6,
    override: Annotated[list[str] | None, typer.Option("-o", help="Training config override key=value.")] = None,
    precision: Annotated[str, typer.Option(
        help="auto (bf16 where the hardware computes it natively, else fp32), bf16 or fp32.")] = "auto",
    folds: Annotated[int, typer.Option(
        help="Note splits: NoteLLM + SentenceBERT trained per fold (budget split), queries pooled.")] = 1,
) -> None:
    """Import, mine, train NoteLLM, evaluate it against every baseline and write report.md / report.html."""
    from notellm.pipeline.quickstart import run_quickstart

    cfg = _config(stackexchange, notes, events, out, model, config, budget, max_notes, skip_baselines, gen_notes,
                  seed, override, warm_quantile, precision, folds)
    try:
        result = run_quickstart(cfg)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"report: {result['report_html']}\n        {result['report_md']}")
    typer.echo(f"serve it: notellm serve --model {result['model']} --index {result['index']}")


def ablate(
    stackexchange: Annotated[str | None, typer.Option(help="Stack Exchange dumps folder (default: shipped).")]
    = None,
    notes: Annotated[str | None, typer.Option(help="Your notes file; needs --events.")] = None,
    events: Annotated[str | None, typer.Option(help="Your events file.")] = None,
    out: Out = "notellm-runs/ablate",
    model: Annotated[str, typer.Option(help="Backbone name or local HF folder.")] = "smollm2-135m",
    config: Annotated[str | None, typer.Option(help="Training YAML (default: configs/<preset>.yaml).")] = None,
    budget: Budget = 60.0,
    max_notes: Annotated[int, typer.Option(help="Use only the N most engaged notes; 0 = all.")] = 0,
    gen_notes: Annotated[int, typer.Option(help="Test notes for the generation metrics.")] = 50,
    seed: Annotated[int, typer.Option(help="Split and training seed.")] = 0,
    override: Annotated[list[str] | None, typer.Option("-o", help="Training config override key=value.")] = None,
) -> None:
    """Train α ∈ {0, 0.01, 0.1, 1} and r ∈ {0, 0.4, 1} and write one recall + generation table (paper Tables 5–6)."""
    from notellm.pipeline.ablate import run_ablation

    cfg = _config(stackexchange, notes, events, out, model, config, budget, max_notes, False, gen_notes, seed,
                  override)
    try:
        result = run_ablation(cfg)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"report: {result['report_html']}\n        {result['report_md']}")


def evaluate(
    model: Annotated[Path, typer.Option(help="Saved NoteLLM folder.")],
    data: Annotated[Path, typer.Option(help="Mined data folder (notes, events, pairs, note_splits).")],
    out: Annotated[Path, typer.Option(help="Folder for metrics.json and the report.")],
    baselines: Annotated[bool, typer.Option(help="Also score SentenceBERT, BM25 and ItemCF.")] = True,
    gen_notes: Annotated[int, typer.Option(help="Test notes for the generation metrics (0 = skip).")] = 100,
    runtime: Annotated[str, typer.Option(help="Embed on torch (the --model) or onnx (the --onnx-model export); "
                                              "generation always runs on the PyTorch --model.")] = "torch",
    onnx_model: Annotated[Path | None, typer.Option(help="`notellm export` folder of --model (with --runtime onnx).")]
    = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for ONNX Runtime (default: PyTorch's).")] = None,
    pool: Annotated[str, typer.Option(help="Candidates: test (test notes), full (every note) or both.")] = "test",
    reference: Annotated[str | None, typer.Option(
        help="Method the others are compared with (default: SentenceBERT).")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples of the queries.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Recall@K with 95% intervals (paper and code rules, links, breakdowns), embedding health and generation
    metrics with baselines, for a trained NoteLLM."""
    from notellm.pipeline.evaluate_model import EvaluateConfig, evaluate_model

    if runtime not in ("torch", "onnx"):
        _fail(f"--runtime must be torch or onnx, got {runtime!r}")
    if (runtime == "onnx") != (onnx_model is not None):
        _fail("--runtime onnx and --onnx-model go together (the export folder to embed with)")
    try:
        encoder = None
        if onnx_model is not None:
            from notellm.retrieval.runtime import load_encoder

            encoder = load_encoder(onnx_model, "onnx", threads=threads)
        cfg = EvaluateConfig(baselines=baselines, gen_notes=gen_notes, pool=pool, reference=reference,
                             resamples=resamples, seed=seed)
        result = evaluate_model(model, data, out, cfg, encoder=encoder)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"report: {result['report_html']}")


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
    from notellm.retrieval.encode import encode_notes
    from notellm.retrieval.note_embedder import NoteEmbedder, write_vector_shard

    if encoder not in ("notellm", "sbert"):
        _fail(f"--encoder must be notellm or sbert, got {encoder!r}")
    if encoder == "notellm" and model is None:
        _fail("--model is required with --encoder notellm")
    if engine not in ("local", "spark"):
        _fail(f"--engine must be local or spark, got {engine!r}")
    if engine == "spark" and (encoder != "notellm" or out.suffix == ".npz"):
        _fail("--engine spark embeds with a NoteLLM (--encoder notellm) into a folder of Parquet shards (not .npz)")
    try:
        if engine == "spark":
            from notellm.data.schema import NOTES_FILE
            from notellm.retrieval.embed_spark import SparkEmbedConfig, embed_with_spark
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
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"wrote {len(notes)} vectors to {path}")


def report(
    metrics: Annotated[Path, typer.Argument(help="metrics.json written by quickstart / evaluate / ablate.")],
    out: Annotated[Path | None, typer.Option(help="Report folder (default: beside metrics.json).")] = None,
) -> None:
    """Re-render report.md and report.html from a metrics.json (no computation)."""
    from notellm.report.render import write_report_from_file

    if not metrics.is_file():
        _fail(f"metrics file not found: {metrics}")
    try:
        md, html = write_report_from_file(metrics, out)
    except ValueError as exc:
        _fail(f"{metrics}: {exc}")
    typer.echo(f"report: {html}\n        {md}")


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart)
    app.command("ablate")(ablate)
    app.command("evaluate")(evaluate)
    app.command("embed")(embed)
    app.command("report")(report)
