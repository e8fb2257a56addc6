"""Shared fixtures: the shipped Stack Exchange data, a tiny random backbone, deterministic seeds."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    return Path(os.environ.get("NOTELLM_SHARED", REPO_ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def stackexchange_dir() -> Path:
    """The seven real Stack Exchange dumps shipped beside the repo (../shared/data/stackexchange)."""
    path = _shared_dir() / "data" / "stackexchange"
    if not path.is_dir():
        pytest.fail(f"shipped data not found at {path}; set NOTELLM_SHARED to the folder holding data/stackexchange")
    return path


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
    """One local[2] SparkSession for the whole run (starting the JVM costs 10-40 s); skipped only without Java."""
    from notellm.spark_session import JavaNotFoundError, spark_session

    try:
        session, _ = spark_session("local[2]", {"spark.sql.shuffle.partitions": "2",
                                                "spark.default.parallelism": "2",
                                                "spark.driver.memory": "1g"}, "notellm-tests")
    except JavaNotFoundError as exc:
        pytest.skip(f"Spark tests need Java (setup.sh installs openjdk-17-jre-headless): {exc}")
    yield session
    session.stop()
