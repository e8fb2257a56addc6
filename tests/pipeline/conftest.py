"""The quickstart tests' shared slice: the shipped dumps imported, sliced to 160 notes and mined once per session.

`test_quickstart_end_to_end_and_resume` runs those stages itself; the other pipeline tests start from a copy of
their finished stages (`seeded_slice.into(out)`), which the stage cache then skips exactly as a resumed run does.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

SLICE_NOTES = 160


@pytest.fixture(scope="session")
def _prepared_slice(stackexchange_dir, tmp_path_factory) -> Path:
    from notellm.pipeline.quickstart import QuickstartConfig, prepare_data
    from notellm.pipeline.stages import StageRunner

    out = tmp_path_factory.mktemp("quickstart_slice")
    cfg = QuickstartConfig(stackexchange=str(stackexchange_dir), out=str(out), max_notes=SLICE_NOTES, progress=False)
    console = Console(quiet=True)
    prepare_data(cfg, StageRunner(out, console), out / "data", console)
    return out


@dataclass(frozen=True)
class SeededSlice:
    template: Path
    notes: int = SLICE_NOTES  # pass as QuickstartConfig.max_notes: the import stage's inputs must match

    def into(self, out: Path) -> Path:
        """`out` with the imported, sliced, mined data and the markers of those two stages."""
        out.mkdir(parents=True, exist_ok=True)
        for name in ("data", ".stages"):
            shutil.copytree(self.template / name, out / name)
        return out


@pytest.fixture
def seeded_slice(_prepared_slice) -> SeededSlice:
    return SeededSlice(_prepared_slice)
