"""`torchrun --nproc_per_node 2 -m notellm.train` on CPU (gloo): the real launcher, end to end, with GradCache.

Slow (two interpreters import torch + transformers): PYTHONPATH=. python -m pytest tests/train/test_torchrun.py -m slow
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_training_run(tiny_backbone_dir, toy_data_dir, tmp_path):
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
        "-m", "notellm.train", "--set", f"model.backbone={tiny_backbone_dir}", "--set", "model.emb_dim=16",
        "--set", "train.batch_pairs=4", "--set", "train.grad_cache_pairs=2", "--set", "train.lr=2e-3",
        "--set", "train.precision=fp32", "--set", "train.max_steps=3", "--set", "train.tensorboard=false",
        "--data", str(toy_data_dir), "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("finished: step 3/3") == 2  # both ranks report
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # written once (main process), not per rank
    assert (out / "model" / "notellm.json").is_file()
    ckpt = out / "checkpoints" / "step-00000003"
    assert (ckpt / "random_states_0.pkl").is_file() and (ckpt / "random_states_1.pkl").is_file()
