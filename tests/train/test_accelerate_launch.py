"""`accelerate launch --config_file notellm/configs/accelerate/cpu_2proc.yaml -m notellm.train`: the shipped
two-process CPU config really starts two gloo ranks (accelerate's MULTI_CPU type silently starts one without mpirun).

Run: PYTHONPATH=. python -m pytest tests/train/test_accelerate_launch.py -q
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from notellm.configs import config_path

REPO = Path(__file__).resolve().parents[2]


def test_shipped_cpu_config_runs_two_ranks(tiny_backbone_dir, toy_data_dir, tmp_path):
    accelerate = shutil.which("accelerate") or pytest.fail("the accelerate CLI is not installed")
    out = tmp_path / "run"
    command = [
        accelerate, "launch", "--config_file", str(config_path("accelerate/cpu_2proc.yaml")),
        "--main_process_port", "0", "-m", "notellm.train", "--set", f"model.backbone={tiny_backbone_dir}",
        "--set", "model.emb_dim=16", "--set", "train.batch_pairs=2", "--set", "train.precision=fp32",
        "--set", "train.max_steps=2", "--set", "train.tensorboard=false",
        "--data", str(toy_data_dir), "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("finished: step 2/2") == 2, done.stdout[-2000:]  # one line per rank
    ckpt = out / "checkpoints" / "step-00000002"
    assert (ckpt / "random_states_0.pkl").is_file() and (ckpt / "random_states_1.pkl").is_file()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2]
