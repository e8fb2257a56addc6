"""CLI of the diversity re-rankers: `notellm rerank` (re-rank every request of a candidates file).

notellm rerank --candidates cands.parquet --embeddings vectors.npz --method ssd_star --theta 0.6 --window 5 --k 20 \
    --out feed.csv

Candidates are read by `notellm.data.readers` (CSV/TSV/JSONL/Parquet, the same rules as `notellm import`); embeddings
files are `NoteVectors` .npz (arrays `ids` and `vectors`, see notellm/retrieval/vectors.py).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer

from notellm.cli.common import console, friendly

METHOD_HELP = "none | mmr | dpp | dpp_window | ssd | ssd_star"
Method = Annotated[str, typer.Option(help=f"Re-ranker: {METHOD_HELP}.")]
# The re-rankers' parameters, spelled once for every command that re-ranks (`rerank_options`); each is optional and
# only the given ones reach `notellm.rerank.rerank`, so each method keeps its own defaults.
RERANK_OPTIONS: dict[str, Any] = {
    "lam": Annotated[float | None, typer.Option(help="MMR relevance weight λ in [0, 1].")],
    "theta": Annotated[float | None, typer.Option(help="Relevance weight θ in [0, 1] (ssd_star, dpp, dpp_window).")],
    "gamma": Annotated[float | None, typer.Option(help="Diversity scale γ ≥ 0 (ssd, ssd_star).")],
    "alpha": Annotated[float | None, typer.Option(help="DPP quality exponent α (instead of θ).")],
    "window": Annotated[int | None, typer.Option(help="Window of interacting positions, counting the new item.")],
    "epsilon": Annotated[float | None, typer.Option(help="DPP stopping threshold ε on the gain d².")],
}


def rerank_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give `command` the options --lam ... --epsilon (RERANK_OPTIONS, after its own) and call it with
    `params`: a dict of the ones given. Typer reads a command's options from its signature, so the wrapper
    shows typer the command's signature (annotations evaluated where the command is defined) with `params`
    replaced by the options."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "params"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=option)
             for name, option in RERANK_OPTIONS.items()]

    @wraps(command)
    def with_params(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name, None) for name in RERANK_OPTIONS}
        return command(*args, params={k: v for k, v in given.items() if v is not None}, **kwargs)

    with_params.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
    return with_params


def rerank_with(scores, vectors, k: int, method: str, params: dict[str, Any]):
    """`notellm.rerank.rerank`, with the user's parameter mistakes (a TypeError naming them) as ValueErrors."""
    from notellm.rerank import rerank

    try:
        return rerank(scores, vectors, k, method, **params)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def _embedding_of(value, path: Path, row: int, column: str):
    import numpy as np

    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip().startswith("[") else [float(x) for x in value.split()]
        except ValueError as exc:
            raise ValueError(f"{path} row {row}: column {column!r} is not a list of numbers") from exc
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{path} row {row}: column {column!r} must be a non-empty list of numbers")
    return arr


def _read_candidates(path: Path):
    """The candidates file as a frame with `source_row`; any record the reader could not take is an error here."""
    from notellm.data.readers import DETAIL, REASON, SOURCE_ROW
    from notellm.data.store import read_table

    table = read_table(path)
    if len(table.malformed):
        bad = table.malformed.iloc[0]
        raise ValueError(f"{path} row {bad[SOURCE_ROW]}: {bad[REASON]} ({bad[DETAIL]})")
    if table.flags:
        pos, (reason, detail) = next(iter(sorted(table.flags.items())))
        raise ValueError(f"{path} row {table.frame[SOURCE_ROW].iloc[pos]}: {reason} ({detail})")
    return table.frame


def load_candidates(path: Path, embeddings: Path | None, column: str = "embedding"):
    """Candidates table -> list of (request_id, note_ids, scores (n,), vectors (n, d)), requests in file order."""
    import numpy as np

    from notellm.data.readers import SOURCE_ROW

    df = _read_candidates(path)
    need = ["request_id", "note_id", "score"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; have {[c for c in df.columns if c != SOURCE_ROW]}")
    rows = df[SOURCE_ROW].to_numpy()
    scores = _numbers(df["score"], rows, path)
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
        vecs = [_embedding_of(v, path, r, column) for v, r in zip(df[column].tolist(), rows)]
        dims = {len(v) for v in vecs}
        if len(dims) > 1:
            raise ValueError(f"{path}: column {column!r} mixes embedding sizes {sorted(dims)}")
        matrix = np.stack(vecs) if vecs else np.zeros((0, 1), np.float32)
    else:
        raise ValueError(f"{path}: no {column!r} column; pass --embeddings vectors.npz or add the column")
    out = []
    for request, idx in df.groupby(df["request_id"].astype(str), sort=False).indices.items():
        out.append((request, df["note_id"].astype(str).to_numpy()[idx], scores[idx], matrix[idx]))
    return out


def _numbers(series, rows, path: Path):
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(values))
    if len(bad):
        raise ValueError(f"{path} row {rows[bad[0]]}: score {series.iloc[bad[0]]!r} is not a number")
    return values


@friendly
@rerank_options
def rerank_command(
    candidates: Annotated[Path, typer.Option(help="CSV/JSONL/Parquet: request_id, note_id, score [, embedding].")],
    out: Annotated[Path, typer.Option(help="Output .csv/.parquet/.jsonl: request_id, rank, note_id, score.")],
    method: Method = "ssd_star",
    k: Annotated[int, typer.Option(help="Items per re-ranked list.")] = 20,
    embeddings: Annotated[Path | None, typer.Option(help="NoteVectors .npz instead of an embedding column.")] = None,
    embedding_column: Annotated[str, typer.Option(help="Column holding each candidate's vector.")] = "embedding",
    params: dict[str, Any] | None = None,
) -> None:
    """Re-rank every request's candidates for diversity and write the ordered lists."""
    import numpy as np
    import pandas as pd
    from tqdm.auto import tqdm

    params = params or {}
    requests = load_candidates(candidates, embeddings, embedding_column)
    rows = []
    for request, ids, scores, vectors in tqdm(requests, desc=f"rerank ({method})", unit=" request"):
        order = rerank_with(scores, vectors, k, method, params)
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


def register(app: typer.Typer) -> None:
    app.command("rerank")(rerank_command)
