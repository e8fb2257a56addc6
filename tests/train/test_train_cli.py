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
    result = CliRunner().invoke(_app(), ["train", "--data", str(tmp_path), "--set", "train.lrr=1"])
    assert result.exit_code == 1
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
        _app(), ["train", "--config", str(config), "--data", "/d", "--out", "/o", "--set", "train.top_n_layers=2"]
    )
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert (cfg.train.data_dir, cfg.train.out_dir, cfg.train.lr, cfg.train.mode, cfg.train.top_n_layers) == (
        "/d", "/o", 0.5, "top_n", 2,
    )  # fmt: skip


def test_deprecated_positional_overrides_still_work_with_a_warning(monkeypatch):
    seen = {}
    monkeypatch.setattr("notellm.train.loop.train", lambda cfg: seen.setdefault("cfg", cfg) and (_ for _ in ()).throw(
        SystemExit(0)))
    result = CliRunner().invoke(_app(), ["train", "train.lr=0.25", "--set", "train.lr=0.5", "--set", "train.seed=3"])
    assert result.exit_code == 0, result.output
    assert "deprecated" in result.output and (seen["cfg"].train.lr, seen["cfg"].train.seed) == (0.5, 3)


def test_module_entry_point_parses_the_same_options_without_the_cli(monkeypatch, capsys):
    """`python -m notellm.train` (torchrun / accelerate launch) takes --config/--data/--out/--set, argparse only."""
    import subprocess
    import sys

    from notellm.train.__main__ import main

    seen = {}
    monkeypatch.setattr("notellm.train.loop.train", lambda cfg: seen.setdefault("cfg", cfg) and (_ for _ in ()).throw(
        SystemExit(0)))
    with __import__("pytest").raises(SystemExit) as stop:
        main(["--data", "/d", "--set", "train.lr=0.5", "--out", "/o", "--set", "model.emb_dim=8"])
    assert stop.value.code == 0
    cfg = seen["cfg"]
    assert (cfg.train.data_dir, cfg.train.out_dir, cfg.train.lr, cfg.model.emb_dim) == ("/d", "/o", 0.5, 8)
    with __import__("pytest").raises(SystemExit) as stop:
        main(["--set", "train.lrr=1"])
    assert stop.value.code == 1 and "train.lrr" in capsys.readouterr().err
    probe = "import sys, notellm.train.__main__; print(any(m.startswith('notellm.cli') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"
