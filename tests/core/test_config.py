"""The config loader: defaults, file, overrides, casting and errors that name the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from notellm.config import ConfigError, load_config, save_config


@dataclass
class Inner:
    lr: float = 1e-3
    steps: int = 10
    mode: Literal["full", "lora"] = "full"
    layers: tuple[int, ...] = (1, 2)


@dataclass
class Outer:
    name: str = "x"
    flag: bool = False
    inner: Inner = field(default_factory=Inner)
    maybe: int | None = None

    def __post_init__(self):
        if self.inner.steps < 0:
            raise ValueError("inner.steps must be >= 0")


def test_defaults_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: y\ninner:\n  lr: 0.5\n")
    cfg = load_config(Outer, path, ["inner.steps=3", "flag=true", "inner.layers=4,5", "maybe=7"])
    assert cfg == Outer(name="y", flag=True, inner=Inner(lr=0.5, steps=3, layers=(4, 5)), maybe=7)


def test_round_trip(tmp_path):
    cfg = Outer(name="z", inner=Inner(mode="lora"))
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(Outer, tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("inner.lrr=1", "inner.lrr"),
        ("inner.steps=1.5", "inner.steps"),
        ("inner.mode=half", "inner.mode"),
        ("flag=perhaps", "flag"),
        ("nothing", "key.sub=value"),
        ("inner.steps=-1", "inner.steps must be >= 0"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(Outer, None, [override])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(Outer, bad)
