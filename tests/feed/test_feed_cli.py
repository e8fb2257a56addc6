"""The diversity CLI end to end on a tiny planted data folder: rerank, feed, feed-eval, cb2cf train/embed/eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from notellm.cli import build_app
from notellm.retrieval.vectors import NoteVectors

sys.path.insert(0, str(Path(__file__).parent))
from test_feed_eval import _world  # noqa: E402


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    return build_app()


@pytest.fixture()
def folder(tmp_path) -> tuple[Path, Path]:
    notes, events, emb, ids = _world()
    data = tmp_path / "data"
    data.mkdir()
    notes.to_parquet(data / "notes.parquet")
    events.to_parquet(data / "events.parquet")
    vec = NoteVectors(ids, emb).save(tmp_path / "vec.npz")
    return data, vec


def _run(app, args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def test_rerank_csv_with_embedding_column_and_npz(app, tmp_path, folder):
    _, vec = folder
    v = NoteVectors.load(vec)
    rng = np.random.default_rng(0)
    rows = []
    for r in range(3):
        for n in rng.choice(len(v), size=12 if r else 5, replace=False):
            rows.append(
                {
                    "request_id": f"q{r}",
                    "note_id": v.ids[n],
                    "score": float(rng.random()),
                    "embedding": json.dumps(v.matrix[n].tolist()),
                }
            )
    df = pd.DataFrame(rows)
    df.to_csv(tmp_path / "c.csv", index=False)
    code, out = _run(
        app,
        [
            "rerank",
            "--candidates",
            tmp_path / "c.csv",
            "--out",
            tmp_path / "o.csv",
            "--method",
            "ssd_star",
            "--theta",
            "0.5",
            "--window",
            "3",
            "--k",
            "8",
        ],
    )
    assert code == 0, out
    got = pd.read_csv(tmp_path / "o.csv", dtype={"request_id": str, "note_id": str})
    assert got.groupby("request_id").size().to_dict() == {"q0": 5, "q1": 8, "q2": 8}
    from notellm.rerank import rerank

    q1 = df[df.request_id == "q1"]
    want = rerank(q1.score.to_numpy(), v.matrix[v.rows(q1.note_id.tolist())], 8, "ssd_star", theta=0.5, window=3)
    assert got[got.request_id == "q1"].note_id.tolist() == q1.note_id.to_numpy()[want].tolist()
    assert got[got.request_id == "q1"]["rank"].tolist() == list(range(1, 9))
    df.drop(columns="embedding").to_parquet(tmp_path / "c.parquet")
    code, out = _run(
        app,
        [
            "rerank",
            "--candidates",
            tmp_path / "c.parquet",
            "--embeddings",
            vec,
            "--out",
            tmp_path / "o.parquet",
            "--method",
            "dpp",
            "--k",
            "4",
        ],
    )
    assert code == 0, out
    assert len(pd.read_parquet(tmp_path / "o.parquet")) == 4 + 4 + 4


def test_rerank_errors_are_one_line(app, tmp_path):
    pd.DataFrame({"request_id": ["a"], "note_id": ["x"], "score": ["high"], "embedding": ["[1, 2]"]}).to_csv(
        tmp_path / "bad.csv", index=False
    )
    code, out = _run(app, ["rerank", "--candidates", tmp_path / "bad.csv", "--out", tmp_path / "o.csv"])
    assert code == 1 and "row 1: score 'high' is not a number" in out
    pd.DataFrame({"request_id": ["a"], "note_id": ["x"]}).to_csv(tmp_path / "bad2.csv", index=False)
    code, out = _run(app, ["rerank", "--candidates", tmp_path / "bad2.csv", "--out", tmp_path / "o.csv"])
    assert code == 1 and "missing column(s) ['score']" in out
    # read by data/readers, like `notellm import`: a record with too many fields is named by its row, not skipped
    (tmp_path / "bad3.csv").write_text("request_id,note_id,score\na,x,1.0\na,y,0.5,extra\n", encoding="utf-8")
    code, out = _run(app, ["rerank", "--candidates", tmp_path / "bad3.csv", "--out", tmp_path / "o.csv"])
    assert code == 1 and "bad3.csv row 2" in out
    code, out = _run(app, ["rerank", "--candidates", tmp_path / "none.csv", "--out", tmp_path / "o.csv"])
    assert code == 1 and "none.csv: file not found" in out
    pd.DataFrame({"request_id": ["a"], "note_id": ["x"], "score": [1.0], "embedding": ["[1, 2]"]}).to_csv(
        tmp_path / "ok.csv", index=False
    )
    code, out = _run(
        app,
        [
            "rerank",
            "--candidates",
            tmp_path / "ok.csv",
            "--out",
            tmp_path / "o.csv",
            "--method",
            "mmr",
            "--gamma",
            "2",
        ],
    )
    assert code == 1 and "'mmr'" in out and "gamma" in out


def test_feed_and_feed_eval(app, tmp_path, folder):
    data, vec = folder
    code, out = _run(
        app,
        [
            "feed",
            "--note",
            "n0",
            "--data",
            data,
            "--embeddings",
            vec,
            "--k",
            "5",
            "--candidates",
            "30",
            "--method",
            "mmr",
            "--lam",
            "0.3",
        ],
    )
    assert code == 0, out
    assert "ILAD" in out and "n0" in out
    code, out = _run(app, ["feed", "--note", "nope", "--data", data, "--embeddings", vec])
    assert code == 1 and "nope" in out
    code, out = _run(
        app,
        [
            "feed-eval",
            "--data",
            data,
            "--embeddings",
            vec,
            "--out",
            tmp_path / "fe",
            "--set",
            "feed_size=6",
            "--set",
            "n_candidates=30",
            "--set",
            "max_users=20",
            "--set",
            "grids={mmr: [1.0, 0.5], ssd_star: [1.0, 0.5]}",
        ],
    )
    assert code == 0, out
    for name in ("feed_eval.json", "frontier.csv", "frontier.png"):
        assert (tmp_path / "fe" / name).is_file()


def test_cb2cf_commands(app, tmp_path, folder):
    data, vec = folder
    sets = ["--set", "epochs=2", "--set", "hidden=16", "--set", "dim=8", "--set", "min_users=2"]
    code, out = _run(app, ["cb2cf", "train", "--data", data, "--embeddings", vec, "--out", tmp_path / "m", *sets])
    assert code == 0, out
    code, out = _run(
        app, ["cb2cf", "embed", "--model", tmp_path / "m", "--embeddings", vec, "--out", tmp_path / "cb.npz"]
    )
    assert code == 0, out
    assert NoteVectors.load(tmp_path / "cb.npz").dim == 8
    code, out = _run(app, ["cb2cf", "eval", "--data", data, "--embeddings", vec, "--out", tmp_path / "e.json", *sets])
    assert code == 0, out
    assert set(json.loads((tmp_path / "e.json").read_text())["metrics"]) == {"content", "cb2cf"}
    code, out = _run(
        app, ["cb2cf", "embed", "--model", tmp_path / "nothing", "--embeddings", vec, "--out", tmp_path / "x.npz"]
    )
    assert code == 1 and "not a CB2CF folder" in out


def test_rerank_options_hand_only_the_given_parameters_to_the_command():
    from notellm.cli.rerank import RERANK_OPTIONS, rerank_options

    seen = []

    @rerank_options
    def command(k: int = 3, params: dict | None = None) -> None:
        seen.append((k, params))

    one = typer.Typer()
    one.command()(command)
    assert CliRunner().invoke(one, ["--k", "5", "--theta", "0.7", "--window", "2"]).exit_code == 0
    assert CliRunner().invoke(one, []).exit_code == 0
    assert seen == [(5, {"theta": 0.7, "window": 2}), (3, {})]
    for command_name in ("rerank", "feed"):  # the commands that re-rank offer every parameter, once
        opts = [o for p in typer.main.get_command(build_app()).commands[command_name].params for o in p.opts]
        assert all(opts.count(f"--{name}") == 1 for name in RERANK_OPTIONS), command_name
