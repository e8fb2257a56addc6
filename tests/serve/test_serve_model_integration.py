"""The real NoteLLM (tiny random backbone) behind the service: `notellm index build`, then the HTTP API.

    PYTHONPATH=. python -m pytest tests/serve/test_serve_model_integration.py -q
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer
from fastapi.testclient import TestClient
from serve_testkit import planted_notes
from typer.testing import CliRunner

from notellm.cli.serve import register
from notellm.inference.load import load_encoder
from notellm.serve.app import create_app
from notellm.serve.config import ServeConfig
from notellm.serve.store import LocalNoteIndex


@pytest.fixture(scope="module")
def model_dir(tiny_backbone_dir, tmp_path_factory):
    from notellm.model.notellm import NoteLLM, NoteLLMConfig

    model = NoteLLM.from_backbone(NoteLLMConfig(backbone=str(tiny_backbone_dir), emb_dim=16))
    return model.save_pretrained(tmp_path_factory.mktemp("served") / "model")


def _cli():
    app = typer.Typer()
    register(app)
    return app


def test_index_build_cli_then_serve_with_notellm(model_dir, tmp_path):
    notes = planted_notes(per_topic=4)
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"note_id": [n.note_id for n in notes], "title": [n.title for n in notes],
                  "content": [n.content for n in notes], "hashtags": [list(n.hashtags) for n in notes],
                  "category": [n.category for n in notes]}).to_parquet(data / "notes.parquet")
    result = CliRunner().invoke(_cli(), ["index", "build", "--model", str(model_dir), "--data", str(data),
                                         "--out", str(tmp_path / "index"), "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    assert "indexed 12 notes" in result.output

    encoder = load_encoder(model_dir, precision="fp32")
    index = LocalNoteIndex.open(tmp_path / "index")
    assert index.dim == 16
    np.testing.assert_allclose(index.vectors(["beer-1"]), encoder.encode([notes[5]]), atol=1e-5)
    app = create_app(index, encoder, ServeConfig(embed_max_wait_ms=1.0), generator=encoder.model)
    with TestClient(app, base_url="http://localhost") as client:
        assert client.get("/health").json()["runtime"] == "torch"
        body = client.get("/notes/beer-1/related", params={"k": 4}).json()
        assert len(body["items"]) == 4 and "beer-1" not in [i["note_id"] for i in body["items"]]
        added = {"note_id": "live", "title": "stout malt hops", "content": "brewing a stout", "hashtags": ["beer"]}
        assert client.post("/notes", json={"notes": [added]}).status_code == 200
        np.testing.assert_allclose(index.vectors(["live"])[0], np.asarray(
            client.post("/embed", json={"notes": [added]}).json()["embeddings"][0]), atol=1e-5)
        nearest = client.get("/notes/live/related", params={"k": 1}).json()["items"][0]
        assert nearest["score"] <= 1.0 + 1e-5
        generated = client.post("/generate", json={"task": "hashtags", "note_ids": ["live"], "k": 2}).json()
        assert len(generated["results"]) == 1 and isinstance(generated["results"][0]["hashtags"], list)
        category = client.post("/generate", json={"task": "category", "note_ids": ["live", "beer-0"],
                                                  "categories": ["beer", "coffee"]}).json()
        assert [r["category"] in ("beer", "coffee") for r in category["results"]] == [True, True]
        tags = client.post("/generate", json={"task": "hashtags", "note_ids": ["live"], "k": 2,
                                              "vocabulary": ["beer", "stout", "coffee-beans"]}).json()
        assert set(tags["results"][0]["hashtags"]) <= {"beer", "stout", "coffee-beans"}
    index.close()


def test_cli_errors_are_clear(tmp_path):
    result = CliRunner().invoke(_cli(), ["index", "build", "--model", str(tmp_path / "nope"), "--data",
                                         str(tmp_path), "--out", str(tmp_path / "ix")])
    assert result.exit_code == 1
    assert "notes.parquet not found" in result.output or "model folder not found" in result.output


def test_serve_cli_refuses_missing_inputs(model_dir, tmp_path):
    runner = CliRunner()
    result = runner.invoke(_cli(), ["serve", "--model", str(tmp_path / "nope"), "--index", str(tmp_path)])
    assert result.exit_code == 1 and "model folder not found" in result.output
    result = runner.invoke(_cli(), ["serve", "--model", str(model_dir), "--index", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "not a notellm index folder" in result.output
    result = runner.invoke(_cli(), ["serve", "--model", str(model_dir), "--backend", "milvus"])
    assert result.exit_code == 1 and "--milvus-uri is required" in result.output
    result = runner.invoke(_cli(), ["serve", "--model", str(model_dir), "--index", str(tmp_path), "--set", "max_k=0"])
    assert result.exit_code == 1 and "max_k must be >= 1" in result.output
