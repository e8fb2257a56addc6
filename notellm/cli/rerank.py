"""CLI of the diversity area: `notellm rerank`, `notellm feed`, `notellm feed-eval`, `notellm cb2cf train|embed|eval`.

notellm rerank --candidates cands.parquet --embeddings vectors.npz --method ssd_star --theta 0.6 --window 5 --k 20 \
    --out feed.csv
notellm feed --note beer:123 --data notellm-data/stackexchange --embeddings vectors.npz --method ssd_star --k 10
notellm feed-eval --data notellm-data/stackexchange --embeddings vectors.npz --out runs/feed
notellm cb2cf train --data notellm-data/stackexchange --embeddings vectors.npz --out runs/cb2cf
notellm cb2cf embed --model runs/cb2cf --embeddings vectors.npz --out cb2cf_vectors.npz
notellm cb2cf eval --data notellm-data/stackexchange --embeddings vectors.npz --out runs/cb2cf_eval.json

Embeddings files are `NoteVectors` .npz (arrays `ids` and `vectors`, see notellm/retrieval/vectors.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

METHOD_HELP = "none | mmr | dpp | dpp_window | ssd | ssd_star"
Method = Annotated[str, typer.Option(help=f"Re-ranker: {METHOD_HELP}.")]
Lam = Annotated[float | None, typer.Option(help="MMR relevance weight λ in [0, 1].")]
Theta = Annotated[float | None, typer.Option(help="Relevance weight θ in [0, 1] (ssd_star, dpp, dpp_window).")]
Gamma = Annotated[float | None, typer.Option(help="Diversity scale γ ≥ 0 (ssd, ssd_star).")]
Alpha = Annotated[float | None, typer.Option(help="DPP quality exponent α (instead of θ).")]
Window = Annotated[int | None, typer.Option(help="Window of interacting positions, counting the new item.")]
Epsilon = Annotated[float | None, typer.Option(help="DPP stopping threshold ε on the gain d².")]


def _friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Expected errors (bad files, values) become one red line and exit code 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from exc

    return wrapper


def _params(method: str, lam, theta, gamma, alpha, window, epsilon) -> dict[str, Any]:
    given = {"lam": lam, "theta": theta, "gamma": gamma, "alpha": alpha, "window": window, "epsilon": epsilon}
    return {k: v for k, v in given.items() if v is not None}


def _read_table(path: Path):
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"candidates file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True, dtype={"request_id": str, "note_id": str})
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype={"request_id": str, "note_id": str})
    except ValueError as exc:
        raise ValueError(f"{path}: cannot parse: {exc}") from exc
    raise ValueError(f"{path}: unsupported file type {suffix!r} (use .csv, .tsv, .jsonl or .parquet)")


def _embedding_of(value, path: Path, row: int, column: str):
    import numpy as np

    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip().startswith("[") else [float(x) for x in value.split()]
        except ValueError as exc:
            raise ValueError(f"{path} row {row + 1}: column {column!r} is not a list of numbers") from exc
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{path} row {row + 1}: column {column!r} must be a non-empty list of numbers")
    return arr


def load_candidates(path: Path, embeddings: Path | None, column: str = "embedding"):
    """Candidates table -> list of (request_id, note_ids, scores (n,), vectors (n, d)), requests in file order."""
    import numpy as np

    df = _read_table(path)
    need = ["request_id", "note_id", "score"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; have {list(df.columns)}")
    scores = pd_numeric(df["score"], path)
    if embeddings is not None:
        from notellm.retrieval.vectors import NoteVectors

        vectors = NoteVectors.load(embeddings)
        ids = df["note_id"].astype(str).tolist()
        missing_ids = [i for i in ids if i not in vectors]
        if missing_ids:
            raise ValueError(
                f"{path}: {len(missing_ids)} note ids have no vector in {embeddings}, e.g. {missing_ids[0]!r}"
            )
        matrix = vectors.matrix[vectors.rows(ids)]
    elif column in df.columns:
        rows = [_embedding_of(v, path, i, column) for i, v in enumerate(df[column].tolist())]
        dims = {len(r) for r in rows}
        if len(dims) > 1:
            raise ValueError(f"{path}: column {column!r} mixes embedding sizes {sorted(dims)}")
        matrix = np.stack(rows) if rows else np.zeros((0, 1), np.float32)
    else:
        raise ValueError(f"{path}: no {column!r} column; pass --embeddings vectors.npz or add the column")
    out = []
    for request, idx in df.groupby(df["request_id"].astype(str), sort=False).indices.items():
        out.append((request, df["note_id"].astype(str).to_numpy()[idx], scores[idx], matrix[idx]))
    return out


def pd_numeric(series, path: Path):
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(values))
    if len(bad):
        raise ValueError(f"{path} row {bad[0] + 1}: score {series.iloc[bad[0]]!r} is not a number")
    return values


@_friendly
def rerank_command(
    candidates: Annotated[Path, typer.Option(help="CSV/JSONL/Parquet: request_id, note_id, score [, embedding].")],
    out: Annotated[Path, typer.Option(help="Output .csv/.parquet/.jsonl: request_id, rank, note_id, score.")],
    method: Method = "ssd_star",
    k: Annotated[int, typer.Option(help="Items per re-ranked list.")] = 20,
    embeddings: Annotated[Path | None, typer.Option(help="NoteVectors .npz instead of an embedding column.")] = None,
    embedding_column: Annotated[str, typer.Option(help="Column holding each candidate's vector.")] = "embedding",
    lam: Lam = None,
    theta: Theta = None,
    gamma: Gamma = None,
    alpha: Alpha = None,
    window: Window = None,
    epsilon: Epsilon = None,
) -> None:
    """Re-rank every request's candidates for diversity and write the ordered lists."""
    import numpy as np
    import pandas as pd
    from tqdm.auto import tqdm

    from notellm.rerank import rerank

    params = _params(method, lam, theta, gamma, alpha, window, epsilon)
    requests = load_candidates(candidates, embeddings, embedding_column)
    rows = []
    for request, ids, scores, vectors in tqdm(requests, desc=f"rerank ({method})", unit=" request"):
        order = rerank(scores, vectors, k, method, **params)
        rows += [(request, rank + 1, ids[i], float(scores[i])) for rank, i in enumerate(order.tolist())]
    frame = pd.DataFrame(rows, columns=["request_id", "rank", "note_id", "score"])
    _write(frame, out)
    console.print(
        f"[green]wrote[/green] {out} ({len(requests)} requests, {len(frame)} rows, "
        f"{np.mean([min(k, len(r[1])) for r in requests]) if requests else 0:.1f} per request)"
    )


def _write(frame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(out, index=False)
    elif suffix in (".jsonl", ".ndjson"):
        frame.to_json(out, orient="records", lines=True, force_ascii=False)
    elif suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        raise ValueError(f"--out {out}: use .csv, .jsonl or .parquet")


@_friendly
def feed_command(
    note: Annotated[str, typer.Option(help="The note id to build a related-notes feed for.")],
    data: Annotated[Path, typer.Option(help="Data folder holding notes.parquet.")],
    embeddings: Annotated[Path, typer.Option(help="NoteVectors .npz of the notes.")],
    method: Method = "ssd_star",
    k: Annotated[int, typer.Option(help="Feed length.")] = 10,
    candidates: Annotated[int, typer.Option(help="Neighbours retrieved before re-ranking.")] = 100,
    diversify_with: Annotated[Path | None, typer.Option(help="NoteVectors (e.g. CB2CF) to diversify with.")] = None,
    lam: Lam = None,
    theta: Theta = None,
    gamma: Gamma = None,
    alpha: Alpha = None,
    window: Window = None,
    epsilon: Epsilon = None,
) -> None:
    """Retrieve a note's nearest neighbours (cosine), diversify them, and print the feed."""
    import numpy as np
    from rich.table import Table

    from notellm.data.store import load_notes
    from notellm.rerank import list_metrics, rerank
    from notellm.retrieval.exact import l2_normalize
    from notellm.retrieval.index import IndexConfig, VectorIndex
    from notellm.retrieval.vectors import NoteVectors

    loaded = NoteVectors.load(embeddings)
    notes = load_notes(data).set_index("note_id")
    vectors = NoteVectors(loaded.ids, l2_normalize(loaded.matrix))
    neighbours = VectorIndex.build(vectors, IndexConfig(kind="flat")).similar(note, candidates)
    ids = [nid for nid, _ in neighbours]
    sims = np.array([score for _, score in neighbours], dtype=np.float32)  # (n,) cosine, best first
    unit = vectors.subset(ids).matrix
    div = unit if diversify_with is None else NoteVectors.load(diversify_with).subset(ids).matrix
    order = rerank(sims, div, k, method, **_params(method, lam, theta, gamma, alpha, window, epsilon))
    title = notes["title"].to_dict()
    cats = notes["category"].reindex(ids).fillna("").tolist()
    table = Table(title=f"{method} feed for {note}: {escape(str(title.get(note, '')))[:80]}")
    for col in ("#", "note_id", "score", "orig. rank", "category", "title"):
        table.add_column(col, overflow="fold")
    for rank, i in enumerate(order.tolist()):
        table.add_row(
            str(rank + 1), ids[i], f"{sims[i]:.3f}", str(i + 1), cats[i], escape(str(title.get(ids[i], "")))[:90]
        )
    console.print(table)
    m = list_metrics(unit, sims, order, cats)
    console.print(
        f"ILAD {m['ilad']:.3f}  ILMD {m['ilmd']:.3f}  relevance kept {m['score_ratio']:.3f}  "
        f"NDCG {m['ndcg']:.3f}  categories {int(m['categories'])}"
    )


@_friendly
def feed_eval_command(
    data: Annotated[Path, typer.Option(help="Data folder with notes.parquet and events.parquet.")],
    embeddings: Annotated[Path, typer.Option(help="NoteVectors .npz of the notes.")],
    out: Annotated[Path, typer.Option(help="Folder for feed_eval.json, frontier.csv and frontier.png.")],
    diversify_with: Annotated[Path | None, typer.Option(help="NoteVectors (e.g. CB2CF) to diversify with.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML/JSON FeedConfig file.")] = None,
    override: Annotated[list[str] | None, typer.Option("--set", help="FeedConfig override key=value.")] = None,
    label: Annotated[str, typer.Option(help="Name of this run in the plot and JSON.")] = "",
) -> None:
    """Evaluate feeds for held-out users: none vs MMR, DPP, SSD at matched relevance; writes JSON, CSV, PNG."""
    from rich.table import Table

    from notellm.config import load_config
    from notellm.data.store import load_events, load_notes
    from notellm.feed import FeedConfig, evaluate_feeds, plot_frontier
    from notellm.retrieval.vectors import NoteVectors

    cfg = load_config(FeedConfig, config, override or [])
    vectors = NoteVectors.load(embeddings)
    div = None if diversify_with is None else NoteVectors.load(diversify_with).subset(vectors.ids).matrix
    result = evaluate_feeds(
        load_notes(data),
        load_events(data),
        vectors.matrix,
        vectors.ids,
        cfg,
        diversify_with=div,
        label=label or embeddings.stem,
    )
    result.save(out)
    plot_frontier(result, out / "frontier.png")
    w = cfg.metric_window
    cols = {
        "method": "method",
        "value": "param",
        "ndcg": "NDCG",
        "ilad": "ILAD",
        "ilmd": "ILMD",
        f"ilad@w{w}": f"ILAD@{w}",
        f"ilmd@w{w}": f"ILMD@{w}",
        "categories": "cats",
        "later_hits": "later",
    }
    table = Table(title=f"Feeds at matched relevance ({cfg.match_on} = {cfg.match_relevance}), {result.n_users} users")
    for label in cols.values():
        table.add_column(label, no_wrap=True)
    for rec in result.matched.to_dict(orient="records"):
        cells = [rec["method"]] + [f"{rec[c]:.3g}" if c == "value" else f"{rec[c]:.2f}" for c in list(cols)[1:]]
        table.add_row(*cells)
    console.print(table)
    console.print("all columns (score ratio, topics, hit rate) and every grid point: feed_eval.json, frontier.csv")
    console.print(f"[green]wrote[/green] {out}/feed_eval.json, frontier.csv, frontier.png")


cb2cf_app = typer.Typer(
    help="CB2CF: map content embeddings into a collaborative similarity space.", no_args_is_help=True
)


@cb2cf_app.command("train")
@_friendly
def cb2cf_train(
    data: Annotated[Path, typer.Option(help="Data folder with events.parquet (ItemCF pairs are mined from it).")],
    embeddings: Annotated[Path, typer.Option(help="NoteVectors .npz: the content features (text).")],
    out: Annotated[Path, typer.Option(help="Folder to write model.safetensors + config.json.")],
    image_features: Annotated[Path | None, typer.Option(help="Optional second NoteVectors (e.g. image).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML/JSON CB2CFConfig file.")] = None,
    override: Annotated[list[str] | None, typer.Option("--set", help="CB2CFConfig override key=value.")] = None,
) -> None:
    """Train CB2CF on ItemCF pairs from the data folder's events."""
    from notellm.cb2cf import CB2CFConfig, fit_from_events
    from notellm.config import load_config
    from notellm.data.store import load_events
    from notellm.retrieval.vectors import NoteVectors

    cfg = load_config(CB2CFConfig, config, override or [])
    vectors = NoteVectors.load(embeddings)
    image = None if image_features is None else NoteVectors.load(image_features).subset(vectors.ids).matrix
    model, log = fit_from_events(vectors.matrix, vectors.ids, load_events(data), cfg, image=image)
    model.save(out)
    console.print(
        f"[green]wrote[/green] {out} ({log.n_pairs} ItemCF pairs over {log.n_items} notes, "
        f"{log.steps} steps, {log.seconds:.0f}s, final loss {log.epoch_loss[-1]:.4f})"
    )


@cb2cf_app.command("embed")
@_friendly
def cb2cf_embed(
    model: Annotated[Path, typer.Option(help="CB2CF folder written by `cb2cf train`.")],
    embeddings: Annotated[Path, typer.Option(help="NoteVectors .npz of content features to map.")],
    out: Annotated[Path, typer.Option(help="NoteVectors .npz to write (unit CB2CF vectors).")],
    image_features: Annotated[Path | None, typer.Option(help="Image NoteVectors, if the model uses them.")] = None,
) -> None:
    """Map content features through a trained CB2CF (e.g. for `feed --diversify-with`)."""
    from notellm.cb2cf import CB2CF
    from notellm.retrieval.vectors import NoteVectors

    net = CB2CF.load(model)
    vectors = NoteVectors.load(embeddings)
    image = None if image_features is None else NoteVectors.load(image_features).subset(vectors.ids).matrix
    path = NoteVectors(vectors.ids, net.embed(vectors.matrix, image)).save(out)
    console.print(f"[green]wrote[/green] {path} ({len(vectors)} notes, dim {net.cfg.dim})")


@cb2cf_app.command("eval")
@_friendly
def cb2cf_eval(
    data: Annotated[Path, typer.Option(help="Data folder with events.parquet.")],
    embeddings: Annotated[Path, typer.Option(help="NoteVectors .npz: the content features.")],
    out: Annotated[Path | None, typer.Option(help="JSON file for the result.")] = None,
    cold_frac: Annotated[float, typer.Option(help="Share of notes whose behaviour is held out.")] = 0.1,
    config: Annotated[Path | None, typer.Option(help="YAML/JSON CB2CFConfig file.")] = None,
    override: Annotated[list[str] | None, typer.Option("--set", help="CB2CFConfig override key=value.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the cold-note sample.")] = 0,
) -> None:
    """Cold-start evaluation: Recall@K / AUC of held-out notes' co-engaged notes, CB2CF vs content embeddings."""
    from rich.table import Table

    from notellm.cb2cf import CB2CFConfig, evaluate_cold_start
    from notellm.config import load_config
    from notellm.data.store import load_events
    from notellm.retrieval.vectors import NoteVectors

    cfg = load_config(CB2CFConfig, config, override or [])
    vectors = NoteVectors.load(embeddings)
    res = evaluate_cold_start(vectors.matrix, vectors.ids, load_events(data), cfg, cold_frac=cold_frac, seed=seed)
    keys = list(res.metrics["content"])
    table = Table(title=f"Cold-start retrieval, {res.n_cold} cold notes ({res.n_pairs} ItemCF training pairs)")
    table.add_column("embedding")
    for key in keys:
        table.add_column(key)
    for name, m in res.metrics.items():
        table.add_row(name, *[f"{m[key]:.4f}" for key in keys])
    console.print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res.to_dict(), indent=2), encoding="utf-8")
        console.print(f"[green]wrote[/green] {out}")


def register(app: typer.Typer) -> None:
    """Add `rerank`, `feed`, `feed-eval` and the `cb2cf` group to the main app."""
    app.command("rerank")(rerank_command)
    app.command("feed")(feed_command)
    app.command("feed-eval")(feed_eval_command)
    app.add_typer(cb2cf_app, name="cb2cf")
