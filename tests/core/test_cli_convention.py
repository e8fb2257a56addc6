"""One CLI convention (notellm/cli/common.py): --config + repeatable --set on every command that reads a config,
one error handler with exit 1 for bad inputs and 2 for a malformed command line, each command in its area's module.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from notellm.cli import build_app
from notellm.cli.common import deprecated_overrides, friendly

CLI_DIR = Path(__file__).resolve().parents[2] / "notellm" / "cli"


def _commands(group, prefix: str = ""):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
            yield from _commands(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


COMMANDS = dict(_commands(typer.main.get_command(build_app())))
WITH_SET = sorted(name for name, cmd in COMMANDS.items() if any("--set" in getattr(p, "opts", []) for p in cmd.params))


def _callbacks(app: typer.Typer, prefix: str = ""):
    """(command name, the function registered for it) of every command, groups included."""
    for info in app.registered_commands:
        yield f"{prefix}{info.name}", info.callback
    for group in app.registered_groups:
        yield from _callbacks(group.typer_instance, f"{prefix}{group.name} ")


def _missing_inputs(name: str, tmp: Path) -> list[str]:
    """A command line of `name` whose every required input (and --notes/--events, which the pipeline commands
    need instead of required options) is a path that does not exist."""
    args = name.split()
    for param in COMMANDS[name].params:
        if param.required or param.name in ("notes", "events"):
            value = "some-note" if param.name == "note" else str(tmp / f"missing-{param.name}")
            args += [param.opts[0], value] if param.opts[0].startswith("-") else [value]
    return args


def test_the_walk_sees_every_command():
    assert {"mine", "train", "quickstart", "ablate", "evaluate", "embed", "report", "rerank", "feed", "feed-eval",
            "export", "serve", "import files", "import stackexchange", "data stats", "cb2cf train", "cb2cf embed",
            "cb2cf eval", "index build"} <= set(COMMANDS)


def test_every_command_goes_through_the_one_error_handler():
    wrapper = friendly(lambda: None).__code__  # every friendly(...) wrapper runs this code object
    callbacks = dict(_callbacks(build_app()))
    assert set(callbacks) == set(COMMANDS)
    unwrapped = [name for name, callback in callbacks.items() if callback.__code__ is not wrapper]
    assert not unwrapped, f"commands without cli.common.friendly: {unwrapped}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_exits_1_naming_a_missing_input_and_2_on_a_malformed_line(name, tmp_path):
    result = CliRunner().invoke(build_app(), _missing_inputs(name, tmp_path))
    assert result.exit_code == 1, (result.exit_code, result.output[-500:])
    message = result.output.strip().splitlines()[-1]
    assert message.startswith("error: ") and "Traceback" not in result.output
    assert str(tmp_path) in message or "--" in message, message  # names the file/folder, or the option
    assert not any(tmp_path.iterdir()), "a command with a missing input wrote something"
    assert CliRunner().invoke(build_app(), [*name.split(), "--no-such-option"]).exit_code == 2


@pytest.mark.parametrize("name", WITH_SET)
def test_a_mistyped_set_key_exits_1_naming_it_before_any_work(name, tmp_path):
    (tmp_path / "out").mkdir()
    args = _missing_inputs(name, tmp_path)
    if "--out" in [o for p in COMMANDS[name].params for o in p.opts]:
        args += ["--out", str(tmp_path / "out")]
    result = CliRunner().invoke(build_app(), [*args, "--set", "no_such_key=1"])
    assert result.exit_code == 1, (result.exit_code, result.output[-500:])
    assert "no_such_key" in result.output.strip().splitlines()[-1], result.output[-500:]
    assert not any((tmp_path / "out").iterdir()), "the command worked before it read its overrides"


def test_every_command_with_a_config_takes_repeatable_set():
    commands = dict(_commands(typer.main.get_command(build_app())))
    with_config = {name for name, cmd in commands.items() if any(p.name == "config" for p in cmd.params)}
    assert {"train", "quickstart", "ablate", "serve", "feed-eval", "cb2cf train", "cb2cf eval"} <= with_config
    for name in with_config:
        sets = [p for p in commands[name].params if "--set" in getattr(p, "opts", [])]
        assert len(sets) == 1 and sets[0].multiple, f"{name}: no repeatable --set"
        visible = [o for p in commands[name].params if not getattr(p, "hidden", False) for o in p.opts]
        assert "-o" not in visible, f"{name}: a second override syntax is visible"


def test_one_error_handler_in_the_cli_package():
    """Only common.py turns errors into exit codes; no module keeps its own _friendly / _fail / BadParameter."""
    for path in CLI_DIR.glob("*.py"):
        if path.name == "common.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"typer\.Exit\(|BadParameter|def _friendly|def _fail", text), path.name


def test_bad_inputs_exit_1_and_a_malformed_command_line_exits_2(tmp_path):
    runner = CliRunner()
    bad_set = runner.invoke(build_app(), ["cb2cf", "eval", "--data", str(tmp_path), "--embeddings",
                                          str(tmp_path / "v.npz"), "--set", "no_such_key=1"])
    assert bad_set.exit_code == 1 and "no_such_key" in bad_set.output
    missing = runner.invoke(build_app(), ["embed", "--data", str(tmp_path), "--out", str(tmp_path / "v.npz"),
                                          "--encoder", "sbert"])
    assert missing.exit_code == 1 and "notes.parquet" in missing.output and "Traceback" not in missing.output
    usage = runner.invoke(build_app(), ["embed", "--no-such-option"])
    assert usage.exit_code == 2


def test_deprecated_override_forms_come_first_and_warn(capsys):
    assert deprecated_overrides(["a=1"], ["a=2", "b=3"], "-o") == ["a=1", "a=2", "b=3"]
    assert "deprecated" in capsys.readouterr().err
    assert deprecated_overrides(None, ["x=1"], "-o") == ["x=1"]
    assert capsys.readouterr().err == ""


def test_quickstart_takes_set_and_still_the_deprecated_o(monkeypatch):
    seen = {}

    def fake_run(cfg):
        seen["overrides"] = cfg.overrides
        return {"report_html": "r.html", "report_md": "r.md", "model": "m", "index": "i"}

    monkeypatch.setattr("notellm.pipeline.quickstart.run_quickstart", fake_run)
    result = CliRunner().invoke(build_app(), ["quickstart", "-o", "train.lr=1", "--set", "train.lr=2",
                                              "--set", "train.seed=4"])
    assert result.exit_code == 0, result.output
    assert seen["overrides"] == ["train.lr=1", "train.lr=2", "train.seed=4"] and "deprecated" in result.output
    bad = CliRunner().invoke(build_app(), ["quickstart", "--notes", "n.csv"])  # --events missing: a bad input
    assert bad.exit_code == 1 and "--events" in bad.output
