"""bench/gpu_check.sh on a machine without a CUDA GPU: says it needs one and exits 0 without running anything."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.sh"


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi: the check would run")
def test_gpu_check_says_it_needs_a_gpu_and_exits_0(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "needs a CUDA GPU" in done.stdout and "nothing was run" in done.stdout
    assert not out.exists()
