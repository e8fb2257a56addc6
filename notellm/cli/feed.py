"""CLI of feeds: `notellm feed` (one note's diversified feed) and `notellm feed-eval` (held-out users' feeds).

notellm feed --note beer:123 --data notellm-data/stackexchange --embeddings vectors.npz --method ssd_star --k 10
notellm feed-eval --data notellm-data/stackexchange --embeddings vectors.npz --out runs/feed --set feed_size=20
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from notellm.cli.common import ConfigFile, DataDir, DiversifyWith, Set, VectorsFile, console, friendly
from notellm.cli.rerank import Method, rerank_options, rerank_with


@friendly
@rerank_options
def feed_command(
    note: Annotated[str, typer.Option(help="The note id to build a related-notes feed for.")],
    data: DataDir,
    embeddings: VectorsFile,
    method: Method = "ssd_star",
    k: Annotated[int, typer.Option(help="Feed length.")] = 10,
    candidates: Annotated[int, typer.Option(help="Neighbours retrieved before re-ranking.")] = 100,
    diversify_with: DiversifyWith = None,
    params: dict[str, Any] | None = None,
) -> None:
    """Retrieve a note's nearest neighbours (cosine), diversify them, and print the feed."""
    import numpy as np
    from rich.table import Table

    from notellm.data.store import load_notes
    from notellm.rerank import list_metrics
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
    order = rerank_with(sims, div, k, method, params or {})
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


@friendly
def feed_eval_command(
    data: DataDir,
    embeddings: VectorsFile,
    out: Annotated[Path, typer.Option(help="Folder for feed_eval.json, frontier.csv and frontier.png.")],
    diversify_with: DiversifyWith = None,
    config: ConfigFile = None,
    set_: Set = None,
    label: Annotated[str, typer.Option(help="Name of this run in the plot and JSON.")] = "",
) -> None:
    """Evaluate feeds for held-out users: none vs MMR, DPP, SSD at matched relevance; writes JSON, CSV, PNG."""
    from rich.table import Table

    from notellm.config import load_config
    from notellm.data.store import load_events, load_notes
    from notellm.feed import FeedConfig, evaluate_feeds, plot_frontier
    from notellm.retrieval.vectors import NoteVectors

    cfg = load_config(FeedConfig, config, set_ or [])
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


def register(app: typer.Typer) -> None:
    app.command("feed")(feed_command)
    app.command("feed-eval")(feed_eval_command)
