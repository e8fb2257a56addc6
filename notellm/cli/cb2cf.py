"""CLI of CB2CF: `notellm cb2cf train|embed|eval` (content embeddings mapped into a collaborative space).

notellm cb2cf train --data notellm-data/stackexchange --embeddings vectors.npz --out runs/cb2cf --set epochs=5
notellm cb2cf embed --model runs/cb2cf --embeddings vectors.npz --out cb2cf_vectors.npz
notellm cb2cf eval --data notellm-data/stackexchange --embeddings vectors.npz --out runs/cb2cf_eval.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from notellm.cli.common import ConfigFile, DataDir, Set, VectorsFile, console, friendly

cb2cf_app = typer.Typer(
    help="CB2CF: map content embeddings into a collaborative similarity space.", no_args_is_help=True
)


@cb2cf_app.command("train")
@friendly
def cb2cf_train(
    data: DataDir,
    embeddings: VectorsFile,
    out: Annotated[Path, typer.Option(help="Folder to write model.safetensors + config.json.")],
    image_features: Annotated[Path | None, typer.Option(help="Optional second NoteVectors (e.g. image).")] = None,
    config: ConfigFile = None,
    set_: Set = None,
) -> None:
    """Train CB2CF on ItemCF pairs from the data folder's events."""
    from notellm.cb2cf import CB2CFConfig, fit_from_events
    from notellm.config import load_config
    from notellm.data.store import load_events
    from notellm.retrieval.vectors import NoteVectors

    cfg = load_config(CB2CFConfig, config, set_ or [])
    vectors = NoteVectors.load(embeddings)
    image = None if image_features is None else NoteVectors.load(image_features).subset(vectors.ids).matrix
    model, log = fit_from_events(vectors.matrix, vectors.ids, load_events(data), cfg, image=image)
    model.save(out)
    console.print(
        f"[green]wrote[/green] {out} ({log.n_pairs} ItemCF pairs over {log.n_items} notes, "
        f"{log.steps} steps, {log.seconds:.0f}s, final loss {log.epoch_loss[-1]:.4f})"
    )


@cb2cf_app.command("embed")
@friendly
def cb2cf_embed(
    model: Annotated[Path, typer.Option(help="CB2CF folder written by `cb2cf train`.")],
    embeddings: VectorsFile,
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
@friendly
def cb2cf_eval(
    data: DataDir,
    embeddings: VectorsFile,
    out: Annotated[Path | None, typer.Option(help="JSON file for the result.")] = None,
    cold_frac: Annotated[float, typer.Option(help="Share of notes whose behaviour is held out.")] = 0.1,
    config: ConfigFile = None,
    set_: Set = None,
    seed: Annotated[int, typer.Option(help="Seed of the cold-note sample.")] = 0,
) -> None:
    """Cold-start evaluation: Recall@K / AUC of held-out notes' co-engaged notes, CB2CF vs content embeddings."""
    from rich.table import Table

    from notellm.cb2cf import CB2CFConfig, evaluate_cold_start
    from notellm.config import load_config
    from notellm.data.store import load_events
    from notellm.retrieval.vectors import NoteVectors

    cfg = load_config(CB2CFConfig, config, set_ or [])
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
    app.add_typer(cb2cf_app, name="cb2cf")
