"""Every shipped YAML loads into TrainConfig (litgpt's test_config_hub idea); bad keys and values are named.

Run: PYTHONPATH=. python -m pytest tests/train/test_configs.py -q -p no:cacheprovider
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from notellm.config import ConfigError
from notellm.train.config import TrainArgs, TrainConfig, load_train_config

CONFIGS = Path(str(files("notellm.configs")))  # the presets as the package ships them


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_config_loads(path):
    cfg = load_train_config(path, ["train.data_dir=/data"])
    assert isinstance(cfg, TrainConfig) and cfg.train.data_dir == "/data"
    raw = yaml.safe_load(path.read_text())
    assert "train" in raw, f"{path.name} has no train: section"
    for key, value in raw["train"].items():  # what the file says is what we get
        assert getattr(cfg.train, key) == value, key


@pytest.mark.parametrize("path", sorted((CONFIGS / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_configs_parse(path):
    raw = yaml.safe_load(path.read_text())
    assert raw["distributed_type"] in {"MULTI_GPU", "FSDP", "DEEPSPEED", "MULTI_CPU"}
    assert raw["num_processes"] >= 2


def test_overrides_and_errors(tmp_path):
    cfg = load_train_config(None, ["train.mode=lora", "train.alpha=0", "model.emb_dim=64"])
    assert cfg.train.mode == "lora" and cfg.train.alpha == 0.0 and cfg.model.emb_dim == 64
    with pytest.raises(ConfigError, match="train.lrr"):
        load_train_config(None, ["train.lrr=1"])
    with pytest.raises(ConfigError, match="mode"):
        load_train_config(None, ["train.mode=half"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  batch_pairs: 0\nserve:\n  port: 1\n")  # other sections are ignored, ours checked
    with pytest.raises(ConfigError, match="bad.yaml.*batch_pairs"):
        load_train_config(bad)
    with pytest.raises(ValueError, match="multiple"):
        TrainArgs(batch_pairs=8, grad_cache_pairs=3)
    with pytest.raises(ValueError, match="nothing to train"):
        TrainArgs(gcl=False, alpha=0.0)


def test_every_backbone_preset_resolves_inside_the_package():
    from notellm.configs import PRESETS, config_path, preset_path

    for backbone, name in PRESETS.items():
        assert preset_path(backbone) == CONFIGS / name and preset_path(backbone).is_file()
    assert preset_path("/some/local/folder") is None
    with pytest.raises(FileNotFoundError, match="not shipped"):
        config_path("nope.yaml")
