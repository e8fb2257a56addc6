"""`notellm train` command plumbing: options and overrides reach the config; bad keys are clear errors.

Run: PYTHONPATH=. python -m pytest tests/train/test_train_cli.py -q -p no:cacheprovider
"""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from notellm.cli import train as train_cli


def _app() -> typer.Typer:
    app = typer.Typer()
    train_cli.register(app)
    app.command("noop", hidden=True)(lambda: None)  # two commands keep `train` a named subcommand
    return app


def test_help_lists_options():
    result = CliRunner().invoke(_app(), ["train", "--help"])
    assert result.exit_code == 0
    for option in ("--config", "--data", "--out"):
        assert option in result.output


def test_unknown_override_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(_app(), ["train", "--data", str(tmp_path), "train.lrr=1"])
    assert result.exit_code != 0
    assert "train.lrr" in result.output


def test_options_reach_the_config(monkeypatch, tmp_path):
    seen = {}

    def fake_train(cfg):
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr("notellm.train.loop.train", fake_train)
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  lr: 0.5\n  mode: top_n\n")
    result = CliRunner().invoke(
        _app(), ["train", "--config", str(config), "--data", "/d", "--out", "/o", "train.top_n_layers=2"]
    )
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert (cfg.train.data_dir, cfg.train.out_dir, cfg.train.lr, cfg.train.mode, cfg.train.top_n_layers) == (
        "/d", "/o", 0.5, "top_n", 2,
    )  # fmt: skip
