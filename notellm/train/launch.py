"""One training run from command-line values: shared by `notellm train` and `python -m notellm.train` (the form
`torchrun -m` / `accelerate launch -m` start), so the launcher entry point does not depend on the CLI package.
"""

from __future__ import annotations

import logging
from pathlib import Path

from notellm.train.config import TrainConfig, load_train_config


def launch_config(config: str | Path | None, data: str | Path | None, out: str | Path | None,
                  overrides: list[str], reset_schedule: bool = False) -> TrainConfig:
    """The config file, then `--data` / `--out` / `--reset-schedule`, then the `key=value` overrides (ConfigError
    names a bad one)."""
    items = []
    if data is not None:
        items.append(f"train.data_dir={data}")
    if out is not None:
        items.append(f"train.out_dir={out}")
    if reset_schedule:
        items.append("train.reset_schedule=true")
    return load_train_config(config, items + list(overrides))


def run_training(cfg: TrainConfig) -> str:
    """Train (resuming from the newest checkpoint) and return the one-line summary the commands print."""
    from notellm.train.loop import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per saved file otherwise
    result = train(cfg)
    state = "finished" if result.completed else f"stopped ({result.stop_reason}); re-run the same command to resume"
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a"
    return (f"{state}: step {result.steps}/{result.total_steps}, loss {loss}, tau {result.tau:.3f}, "
            f"model at {result.model_dir}")
