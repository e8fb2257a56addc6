"""The convention every `notellm` command follows: one error handler, one exit-code policy, one override syntax.

Exit codes:
    0  the command did its job.
    1  its inputs are wrong or missing: a file, data folder, model folder, note id or a config value (from
       `--config` or `--set`). One red line on stderr, `error: <message>`, naming the file / row / key; no traceback.
    2  the command line is malformed: unknown option, missing required option, a value of the wrong type (click's
       usage errors, printed with the usage line).
Anything else is a bug and keeps its traceback; with NOTELLM_DEBUG=1 the expected failures keep theirs too.

Overrides: a command that reads a config takes `--config FILE` (YAML/JSON) and `--set key=value`, repeatable, with
dotted keys for nested sections (`--set train.lr=1e-5 --set model.emb_dim=64`); the file is applied first, then
every `--set` in order. Values are parsed as YAML scalars (`true`, `3`, `1e-5`, `[a, b]`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # errors stay on one line, greppable in logs

# Expected failures: bad or missing inputs. ConfigError and DataFileError are ValueErrors.
EXPECTED = (FileNotFoundError, FileExistsError, NotADirectoryError, ValueError, KeyError)

# Options several commands share, spelled once.
ConfigFile = Annotated[Path | None, typer.Option("--config", help="YAML/JSON config file (then --set overrides).")]
DataDir = Annotated[Path, typer.Option("--data", help="A notellm data folder (`notellm import`, `notellm mine`).")]
VectorsFile = Annotated[Path, typer.Option("--embeddings", help="NoteVectors .npz of the notes (`notellm embed`).")]
DiversifyWith = Annotated[Path | None, typer.Option(help="NoteVectors (e.g. CB2CF) to diversify with.")]
Set = Annotated[
    list[str] | None,
    typer.Option("--set", help="Config override key=value (dotted keys for sections); repeatable, after --config."),
]


def fail(message: str) -> None:
    """Stop the command with exit code 1 and `error: message` on stderr."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(1)


def bad_option(option: str, message: str) -> None:
    """Stop the command as a malformed command line (exit code 2, click's usage error naming `option`): for
    option values that are each valid but do not go together."""
    raise typer.BadParameter(message, param_hint=f"'{option}'")


def friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the expected failures of a command into `fail(message)`; keep the signature for typer."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EXPECTED as exc:
            if os.environ.get("NOTELLM_DEBUG"):
                raise
            fail(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))

    return wrapper


def deprecated_overrides(old: list[str] | None, new: list[str] | None, form: str) -> list[str]:
    """Merge overrides given in a deprecated form (warned once on stderr) before the `--set` ones."""
    old, new = list(old or []), list(new or [])
    if old:
        err_console.print(f"[yellow]warning:[/yellow] {form} overrides are deprecated; use --set key=value "
                          f"({' '.join('--set ' + o for o in old)})", highlight=False)
    return old + new
