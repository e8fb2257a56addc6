"""The `notellm` command line: one typer app, one sub-module per area of the package (cli/<area>.py).

Each area module exposes `register(app)`, which adds its commands or sub-apps. Modules are imported here, not
lazily, so `notellm --help` lists everything; heavy libraries (torch, transformers) are imported inside commands.
Every command follows one convention (errors, exit codes, `--config` + `--set key=value`): see cli/common.py.
"""

from __future__ import annotations

import importlib

import typer

# Order = the data flow: import/mine -> train (or all of it: quickstart) -> evaluate -> embed -> report ->
# rerank/feed/cb2cf -> export -> serve.
AREAS = ("data", "train", "pipeline", "evaluate", "retrieval", "report", "rerank", "feed", "cb2cf", "export",
         "serve")


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="notellm",
        help="NoteLLM note recommendation: mine related-note pairs, train LLM note embeddings, evaluate, "
        "diversify feeds and serve.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for area in AREAS:
        importlib.import_module(f"notellm.cli.{area}").register(app)
    return app


def main() -> None:
    build_app()()
