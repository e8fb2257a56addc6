"""`python -m notellm.train ...` = `notellm train ...`, for `torchrun -m` / `accelerate launch -m`."""

from __future__ import annotations

import typer

from notellm.cli.train import train_command


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(train_command)
    app()


if __name__ == "__main__":
    main()
