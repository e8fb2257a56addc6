"""The built wheel ships the presets: every training preset and accelerate config, found by the quickstart's own
lookup (`train_config`, through importlib.resources) from the installed files, with no source checkout on the path;
and the service's page.

Run: PYTHONPATH=. python -m pytest tests/core/test_packaging.py -q -p no:cacheprovider
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from pathlib import Path
import notellm.configs as c
from notellm.config import read_config_file
assert Path(c.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), c.__file__
for backbone in c.PRESETS:
    assert "train" in read_config_file(c.preset_path(backbone)), backbone
for name in ("ddp", "fsdp", "deepspeed_zero3", "cpu_2proc"):
    read_config_file(c.config_path(f"accelerate/{name}.yaml"))
# the quickstart's own lookup: `notellm quickstart --model NAME` trains from the installed preset
from notellm.pipeline.quickstart import QuickstartConfig, train_config
for backbone in c.PRESETS:
    tcfg, path = train_config(QuickstartConfig(model=backbone, out="q"), Path("d"), Path("o"), 60.0, [])
    assert Path(path).resolve().is_relative_to(Path(sys.argv[1]).resolve()), path
    assert tcfg.model.backbone == backbone and tcfg.train.max_seconds == 60, (backbone, tcfg)
print("ok", len(c.PRESETS))
"""


def test_wheel_ships_every_preset(tmp_path):
    src = tmp_path / "src"  # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "notellm", src / "notellm", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=240)
    wheel = next((tmp_path / "dist").glob("notellm-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(REPO).as_posix() for p in (REPO / "notellm" / "configs").rglob("*.yaml")}
    assert shipped and shipped <= names, sorted(shipped - names)
    page = {p.relative_to(REPO).as_posix() for p in (REPO / "notellm" / "serve" / "web").iterdir()}
    assert page and page <= names, sorted(page - names)  # the service's page

    site = tmp_path / "site"  # a wheel is a zip of the installed tree: unpacking it is a --no-deps install
    zipfile.ZipFile(wheel).extractall(site)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE, str(site)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok 3"
