"""A small, fast sample of bench/bench_fuzz.py (the full run: 1,000+ inputs per target, 20 kills per fault kind).

    PYTHONPATH=. python -m pytest tests/serve/test_fuzz_sample.py -q
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_fuzz  # noqa: E402


def test_malformed_import_files_are_all_accounted_for(tmp_path):
    stats = bench_fuzz.fuzz_importers(15, 0, tmp_path)
    assert stats["inputs"] >= 15 and stats["crashes"] == [] and stats["dropped"] == []
    assert stats["unnamed_rejects"] == [] and stats["rejected"] > 0


@pytest.mark.parametrize("backend", ["faiss", "milvus"])
def test_malformed_requests_get_named_4xx_never_5xx(tmp_path, backend):
    if backend == "milvus":
        pytest.importorskip("milvus_lite")
    stats = bench_fuzz.fuzz_http(15, 0, backend, tmp_path)
    assert stats["inputs"] + stats["unsendable"] == 15 and stats["server_errors"] == [] and stats["unnamed_4xx"] == []
    assert stats["lost_notes"] == 0


def test_kill_during_index_writes_and_enospc_lose_nothing(tmp_path):
    rng = random.Random(0)
    killed = bench_fuzz.fault_index_kills(1, tmp_path, rng)
    assert killed["acknowledged"] >= 3 and killed["lost"] == 0 and killed["failed_restarts"] == []
    full = bench_fuzz.fault_enospc(4, tmp_path, rng)
    assert full["lost"] == 0 and full["refused_but_present"] == 0 and full["failed_restarts"] == []
    assert full["refused"] > 0
