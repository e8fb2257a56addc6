"""Training fixtures: a planted-structure toy data folder (pairs only inside a topic)."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_toy import write_toy_data


@pytest.fixture(scope="session")
def toy_data_dir(tmp_path_factory) -> Path:
    return write_toy_data(tmp_path_factory.mktemp("toy_data"))
