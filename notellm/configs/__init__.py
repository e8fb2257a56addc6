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
