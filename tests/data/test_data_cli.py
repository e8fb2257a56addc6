"""The data CLI (`import files|stackexchange`, `mine`, `data stats`) and `mine_and_split` on a small folder.

PYTHONPATH=. python -m pytest tests/data/test_data_cli.py -q
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from notellm.cli.data import register
from notellm.data.store import (
    MiningConfig,
    SplitConfig,
    load_note_splits,
    load_pairs,
    mine_and_split,
    read_manifest,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def files(tmp_path):
    """60 notes in 3 categories; 40 users each reading 8 notes of one category, in time order."""
    rng = np.random.default_rng(0)
    notes = pd.DataFrame(
        {
            "note_id": [f"n{i:02d}" for i in range(60)],
            "title": [f"title {i}" for i in range(60)],
            "content": "text",
            "hashtags": "a|b",
            "category": [f"c{i % 3}" for i in range(60)],
        }
    )
    notes_path = tmp_path / "notes.csv"
    notes.to_csv(notes_path, index=False)
    rows = []
    for u in range(40):
        picks = rng.choice(np.arange(u % 3, 60, 3), 8, replace=False)
        rows += [(f"u{u}", f"n{p:02d}", 1_700_000_000 + 60 * t) for t, p in enumerate(picks)]
    events_path = tmp_path / "events.csv"
    pd.DataFrame(rows, columns=["user_id", "note_id", "timestamp"]).to_csv(events_path, index=False)
    return notes_path, events_path


def test_help_on_every_command(app):
    for args in (
        ["--help"],
        ["import", "--help"],
        ["import", "files", "--help"],
        ["import", "stackexchange", "--help"],
        ["mine", "--help"],
        ["data", "--help"],
        ["data", "stats", "--help"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.output


def test_import_mine_stats(app, files, tmp_path):
    notes_path, events_path = files
    out = tmp_path / "data"
    result = runner.invoke(
        app, ["import", "files", "--notes", str(notes_path), "--events", str(events_path), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "written" in result.output and "320" in result.output

    result = runner.invoke(
        app,
        [
            "mine",
            str(out),
            "--window",
            "3",
            "--max-gap",
            "1h",
            "--top-t",
            "5",
            "--test-frac",
            "0.2",
            "--val-frac",
            "0.1",
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    pairs = load_pairs(out)
    assert list(pairs.columns) == ["note_id_a", "note_id_b", "score", "split"]
    assert len(pairs) > 0 and (pairs.groupby("note_id_a").size() <= 5).all()
    assert read_manifest(out)["mining"]["mining_config"]["window"] == 3

    result = runner.invoke(app, ["data", "stats", str(out), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["notes"] == 60 and stats["events"] == 320 and stats["users"] == 40
    assert sum(stats["pairs_per_split"].values()) == len(pairs)
    assert stats["categories"] == {"c0": 20, "c1": 20, "c2": 20}
    table = runner.invoke(app, ["data", "stats", str(out)])
    assert table.exit_code == 0 and "pairs: train" in table.output and "median" in table.output


def test_errors_are_one_line_and_exit_1(app, tmp_path):
    result = runner.invoke(app, ["mine", str(tmp_path)])
    assert result.exit_code == 1 and "not a notellm data folder" in result.output
    result = runner.invoke(app, ["import", "files", "--notes", str(tmp_path / "none.csv")])
    assert result.exit_code == 1 and "file not found" in result.output
    result = runner.invoke(app, ["import", "stackexchange", str(tmp_path)])
    assert result.exit_code == 1 and "no Posts.xml" in result.output


def test_mine_and_split_writes_pairs_splits_and_manifest(files, tmp_path):
    from notellm.data.importing import import_files

    notes_path, events_path = files
    out = tmp_path / "data"
    import_files(notes_path, events_path, out)
    section = mine_and_split(
        out, MiningConfig(window=3), SplitConfig(val_frac=0.2, test_frac=0.2, seed=0), progress=False
    )
    pairs = load_pairs(out)
    note_splits = load_note_splits(out)
    assert len(note_splits) == 60
    for split in ("train", "val", "test"):
        part = load_pairs(out, split)
        assert (note_splits[part["note_id_a"]] == split).all() and (note_splits[part["note_id_b"]] == split).all()
    assert (
        section["pairs_per_split"]
        == pairs["split"].value_counts().reindex(["train", "val", "test", "warm_holdout"], fill_value=0).to_dict()
    )
    assert section["stats"]["pairs"] == len(pairs) + sum(section["dropped_crossing_splits"].values())
    assert read_manifest(out)["files"]["pairs.parquet"]["rows"] == len(pairs)
    # planted structure: users only read within a category, so every pair stays inside one category
    cat = pd.read_csv(notes_path).set_index("note_id")["category"]
    assert (cat[pairs["note_id_a"]].to_numpy() == cat[pairs["note_id_b"]].to_numpy()).all()
    mine_and_split(out, MiningConfig(window=3), SplitConfig(val_frac=0.2, test_frac=0.2, seed=0), progress=False)
    pd.testing.assert_frame_equal(load_pairs(out), pairs)  # re-running gives the same file
