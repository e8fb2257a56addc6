"""Shared fixtures: the shipped Stack Exchange data, a tiny random backbone, deterministic seeds."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# One intra-op thread for the whole run and the subprocesses it starts (CLI, server, launcher tests): the tests'
# tiny models gain nothing from a second OpenMP thread, and when the other core is busy (another process, a loaded
# CI machine) every parallel op waits for a descheduled thread. Measured on the 2-core AVX2 machine at load ~3:
# tests/pipeline 375 s with two threads, 160 s with one. A value set by the caller wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "torch" in sys.modules:  # a plugin imported torch before this file: its thread count is already fixed
    sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def _shared_dir() -> Path:
    return Path(os.environ.get("NOTELLM_SHARED", REPO_ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def stackexchange_dir() -> Path:
    """The seven real Stack Exchange dumps shipped beside the repo (../shared/data/stackexchange)."""
    path = _shared_dir() / "data" / "stackexchange"
    if not path.is_dir():
        pytest.fail(f"shipped data not found at {path}; set NOTELLM_SHARED to the folder holding data/stackexchange")
    return path


@pytest.fixture(scope="session")
def shipped_import(stackexchange_dir, tmp_path_factory):
    """(folder, ImportReport): the shipped dumps imported once per session (seconds each time); treat the folder as
    read-only: a test that writes into a data folder copies it first."""
    from notellm.data.stackexchange import import_stackexchange

    out = tmp_path_factory.mktemp("shipped_import") / "stackexchange"
    return out, import_stackexchange([stackexchange_dir], out)


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # the data tests do not need torch
        pass


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Llama with the real SmolLM2 tokenizer, saved as a local HF directory."""
    from notellm.model.backbone import create_tiny_backbone

    return create_tiny_backbone(tmp_path_factory.mktemp("tiny_backbone"))


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for the whole run (starting the JVM costs 10-40 s); skipped only without Java.

    The JVM runs with its quick-start JIT only (C1, `TieredStopAtLevel=1`) and the serial collector: the tests' jobs
    are many short queries on tiny tables, where the optimising compiler's warm-up never pays back (measured: JVM
    start + the first mining run 56 s -> 32 s, later runs 9 s -> 4 s, loaded 2-core machine). What Spark computes is
    the same; only how fast the JVM gets there changes."""
    from notellm.spark_session import JavaNotFoundError, spark_session

    try:
        session, _ = spark_session("local[2]", {"spark.sql.shuffle.partitions": "2",
                                                "spark.default.parallelism": "2",
                                                "spark.driver.memory": "1g",
                                                "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 "
                                                                                 "-XX:+UseSerialGC"},
                                       "notellm-tests")
    except JavaNotFoundError as exc:
        pytest.skip(f"Spark tests need Java (setup.sh installs openjdk-17-jre-headless): {exc}")
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _fp32_unless_asked(monkeypatch):
    """`precision: auto` picks bf16 only on CPUs with bf16 units: pin the answer to "none" (fp32) so the suite
    computes the same numbers on every machine (subprocesses inherit it); tests/core/test_precision.py forces
    both ways."""
    monkeypatch.setenv("NOTELLM_BF16_SUPPORT", "none")
