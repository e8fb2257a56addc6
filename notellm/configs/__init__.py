"""Presets shipped inside the package: training YAMLs (`model:` + `train:` sections) and, under `accelerate/`, the
`accelerate launch --config_file` files. Read through `importlib.resources`, so an installed wheel finds them too.

    from notellm.configs import preset_path
    load_train_config(preset_path("smollm2-135m"), ["train.data_dir=DATA"])
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PRESETS = {"smollm2-135m": "smollm2_135m.yaml", "gemma3-270m": "gemma3_270m.yaml", "tiny": "tiny.yaml"}
"""Backbone name -> its training preset (the quickstart's default config for that backbone)."""

CPU_RECIPES = {"smollm2-135m": ["train.mode=top_n", "train.top_n_layers=8", "train.lr=1e-4"]}
"""Backbone name -> overrides of its preset that the quickstart trains with on a CPU, chosen by measurement (README
"The CPU recipe, measured"): SmolLM2's top 8 of 30 layers with the frozen-layer cache, lr 1e-4. The preset itself
(full fine-tuning, the paper's recipe) stays the recipe on GPUs."""


def config_path(name: str) -> Path:
    """The installed file `notellm/configs/<name>` (e.g. "tiny.yaml", "accelerate/ddp.yaml").

    Raises:
        FileNotFoundError: naming the file and what is shipped, when the package lacks it (a broken install).
    """
    path = Path(str(files(__name__).joinpath(*name.split("/"))))
    if not path.is_file():
        shipped = sorted(p.name for p in files(__name__).iterdir() if p.name.endswith(".yaml"))
        raise FileNotFoundError(f"config {name!r} is not shipped in notellm/configs (have {shipped})")
    return path


def preset_path(backbone: str) -> Path | None:
    """The training preset of a named backbone, or None for a backbone without one (a local folder)."""
    return config_path(PRESETS[backbone]) if backbone in PRESETS else None
