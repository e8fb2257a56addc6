"""`notellm train`: train NoteLLM (GCL + CSFT) from a config file plus `section.key=value` overrides.

    notellm train --config configs/smollm2_135m.yaml --data /tmp/se-data --out runs/se train.max_seconds=1200
    accelerate launch --config_file configs/accelerate/ddp.yaml -m notellm.train --config ... --data ... --out ...
    torchrun --nproc_per_node 2 -m notellm.train --config configs/tiny.yaml --data ... --out ...

Re-running the same command resumes from the newest checkpoint in the output folder.
"""

from __future__ import annotations

from pathlib import Path

import typer


def train_command(
    overrides: list[str] = typer.Argument(
        None, help="Config overrides like train.lr=1e-5 model.emb_dim=64 (applied after the file)."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML with model: and train: sections."),
    data: Path | None = typer.Option(None, "--data", help="Data folder with notes.parquet and pairs.parquet."),
    out: Path | None = typer.Option(None, "--out", help="Run folder (checkpoints, model/, metrics.jsonl)."),
    reset_schedule: bool = typer.Option(False, "--reset-schedule", help="Resume a run whose settings or data "
                                        "changed: keep its weights, start a fresh LR schedule and data order."),
) -> None:
    """Train NoteLLM embeddings (GCL + CSFT); resumable; multi-process under accelerate launch / torchrun."""
    import logging

    from notellm.config import ConfigError
    from notellm.train.config import load_train_config
    from notellm.train.loop import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per saved file otherwise
    items = list(overrides or [])
    if data is not None:
        items.append(f"train.data_dir={data}")
    if out is not None:
        items.append(f"train.out_dir={out}")
    if reset_schedule:
        items.append("train.reset_schedule=true")
    try:
        cfg = load_train_config(config, items)
    except (ConfigError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    from notellm.train.checkpoint import ResumeConfigError

    try:
        result = train(cfg)
    except ResumeConfigError as exc:  # a changed run in an old folder: a message, not a traceback
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    state = "finished" if result.completed else f"stopped ({result.stop_reason}); re-run the same command to resume"
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a"
    typer.echo(
        f"{state}: step {result.steps}/{result.total_steps}, loss {loss}, tau {result.tau:.3f}, "
        f"model at {result.model_dir}"
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
