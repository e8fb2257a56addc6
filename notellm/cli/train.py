"""`notellm train`: train NoteLLM (GCL + CSFT) from a config file plus `--set section.key=value` overrides.

    notellm train --config notellm/configs/smollm2_135m.yaml --data /tmp/se-data --out runs/se \
        --set train.max_seconds=1200
    accelerate launch --config_file notellm/configs/accelerate/ddp.yaml -m notellm.train --config ... --data ...
    torchrun --nproc_per_node 2 -m notellm.train --config notellm/configs/tiny.yaml --data ... --out ...

`python -m notellm.train` (what the launchers start) takes the same options; both go through notellm/train/launch.py.
Re-running the same command resumes from the newest checkpoint in the output folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from notellm.cli.common import Set, deprecated_overrides, friendly


@friendly
def train_command(
    overrides: Annotated[list[str] | None, typer.Argument(hidden=True, help="Deprecated: use --set.")] = None,
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML with model: and train: sections."),
    data: Path | None = typer.Option(None, "--data", help="Data folder with notes.parquet and pairs.parquet."),
    out: Path | None = typer.Option(None, "--out", help="Run folder (checkpoints, model/, metrics.jsonl)."),
    set_: Set = None,
    reset_schedule: bool = typer.Option(False, "--reset-schedule", help="Resume a run whose settings or data "
                                        "changed: keep its weights, start a fresh LR schedule and data order."),
) -> None:
    """Train NoteLLM embeddings (GCL + CSFT); resumable; multi-process under accelerate launch / torchrun."""
    from notellm.train.launch import launch_config, run_training

    cfg = launch_config(config, data, out, deprecated_overrides(overrides, set_, "positional"), reset_schedule)
    typer.echo(run_training(cfg))  # a changed run in an old folder (ResumeConfigError) is a bad input: exit 1


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
