"""The runtime switch: the CLI export, `load_encoder(path, runtime)`, index build and the service on ONNX Runtime."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from notellm.export import OnnxEncoder
from notellm.export.quality import RecallComparison
from notellm.inference.load import check_runtime, load_encoder
from notellm.retrieval.encode import NoteLLMEncoder, encode_notes
from notellm.serve.app import create_app
from notellm.serve.config import ServeConfig
from notellm.serve.generator import LazyGenerator
from notellm.serve.store import LocalNoteIndex


def _cli():
    from notellm.cli import export, serve

    app = typer.Typer()
    export.register(app)
    serve.register(app)
    return app


@pytest.fixture(scope="module")
def data_dir(export_notes, tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    pd.DataFrame({"note_id": [n.note_id for n in export_notes], "title": [n.title for n in export_notes],
                  "content": [n.content for n in export_notes],
                  "hashtags": [list(n.hashtags) for n in export_notes],
                  "category": [n.category for n in export_notes]}).to_parquet(data / "notes.parquet")
    return data


def test_load_encoder_picks_the_runtime_from_the_folder_and_refuses_mismatches(tiny_model_dir, onnx_fp32_dir):
    assert isinstance(load_encoder(onnx_fp32_dir), OnnxEncoder)
    assert load_encoder(tiny_model_dir, precision="fp32").runtime == "torch"
    with pytest.raises(ValueError, match="notellm export"):
        check_runtime(tiny_model_dir, "onnx")
    with pytest.raises(ValueError, match="--runtime onnx"):
        check_runtime(onnx_fp32_dir, "torch")
    with pytest.raises(ValueError, match="torch, onnx"):
        check_runtime(onnx_fp32_dir, "openvino")
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        check_runtime(tiny_model_dir / "nope", None)


def test_both_runtimes_give_the_same_vectors_through_encode_notes(tiny_model_dir, onnx_fp32_dir, export_notes):
    torch_vectors = encode_notes(load_encoder(tiny_model_dir, "torch", precision="fp32"), export_notes, chunk_size=3,
                                 progress=False)
    onnx_vectors = encode_notes(load_encoder(onnx_fp32_dir, "onnx", threads=1), export_notes, chunk_size=3,
                                progress=False)
    assert onnx_vectors.ids == torch_vectors.ids
    cos_diff = np.abs(torch_vectors.matrix @ torch_vectors.matrix.T - onnx_vectors.matrix @ onnx_vectors.matrix.T)
    assert cos_diff.max() <= 1e-4


def test_cli_export_is_deterministic_and_checked(tiny_model_dir, data_dir, onnx_fp32_dir, tmp_path):
    """The CLI (model loaded from disk) writes byte-identical files to the API export of the same model."""
    out = tmp_path / "onnx"
    result = CliRunner().invoke(_cli(), ["export", str(tiny_model_dir), "--format", "onnx", "--data", str(data_dir),
                                         "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported fp32 ONNX" in result.output and "checked on 8 notes" in result.output
    for name in ("model.onnx", "notellm_onnx.json", "tokenizer.json"):
        assert (out / name).read_bytes() == (onnx_fp32_dir / name).read_bytes(), name
    bad = CliRunner().invoke(_cli(), ["export", str(tiny_model_dir), "--format", "tflite", "--data", str(data_dir),
                                      "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "--format must be onnx" in bad.output
    again = CliRunner().invoke(_cli(), ["export", str(tiny_model_dir), "--data", str(data_dir), "--out", str(out)])
    assert again.exit_code == 1 and "overwrite" in again.output


def test_service_round_trip_on_the_onnx_runtime(tiny_model_dir, onnx_fp32_dir, data_dir, export_notes, tmp_path):
    built = CliRunner().invoke(_cli(), ["index", "build", "--model", str(onnx_fp32_dir), "--runtime", "onnx",
                                        "--data", str(data_dir), "--out", str(tmp_path / "index")])
    assert built.exit_code == 0, built.output
    encoder = load_encoder(onnx_fp32_dir, "onnx", batch_size=4)
    torch_model = NoteLLMEncoder(load_encoder(tiny_model_dir, precision="fp32").model, precision="fp32")
    index = LocalNoteIndex.open(tmp_path / "index")
    np.testing.assert_allclose(index.vectors(["b1"]), torch_model.encode(export_notes[:1]), atol=1e-4)
    app = create_app(index, encoder, ServeConfig(embed_max_wait_ms=1.0))
    with TestClient(app, base_url="http://localhost") as client:  # the Host check admits localhost
        health = client.get("/health").json()
        assert (health["runtime"], health["precision"], health["can_generate"]) == ("onnx", "fp32", False)
        added = {"note_id": "live", "title": "Roasted barley in a stout", "content": "How much roasted barley?"}
        assert client.post("/notes", json={"notes": [added]}).status_code == 200
        posted = np.asarray(client.post("/embed", json={"notes": [added]}).json()["embeddings"])  # (1, d)
        np.testing.assert_allclose(index.vectors(["live"]), posted, atol=1e-5)
        reference = torch_model.encode([index.get("live")])
        assert abs(float(posted[0] @ reference[0]) - 1.0) <= 1e-4
        assert client.get("/notes/live/related", params={"k": 3}).json()["items"]
        refused = client.post("/generate", json={"task": "category", "note_ids": ["live"]})
        assert refused.status_code == 501 and "--generate-model" in refused.json()["detail"]
    index.close()


def test_generation_loads_the_pytorch_model_only_on_first_use(tiny_model_dir, onnx_fp32_dir, tmp_path,
                                                             export_notes):
    encoder = load_encoder(onnx_fp32_dir)
    index = LocalNoteIndex.open(LocalNoteIndex.create(tmp_path / "ix", export_notes, encoder.encode(export_notes)))
    generator = LazyGenerator(tiny_model_dir)
    app = create_app(index, encoder, ServeConfig(), generator=generator)
    with TestClient(app, base_url="http://localhost") as client:
        assert client.get("/health").json()["can_generate"] is True and not generator.loaded
        body = client.post("/generate", json={"task": "category", "note_ids": ["b1"], "categories": ["beer", "ai"]})
        assert body.status_code == 200 and body.json()["results"][0]["category"] in ("beer", "ai")
        assert generator.loaded
    index.close()
    with pytest.raises(FileNotFoundError, match="not a saved NoteLLM"):
        LazyGenerator(onnx_fp32_dir)


def test_recall_comparison_says_when_int8_loses_more_than_a_point():
    close = RecallComparison("torch fp32", "onnx int8", 40.0, 39.5, 100, 384, 1.0)
    far = RecallComparison("torch fp32", "onnx int8", 40.0, 38.5, 100, 384, 1.0)
    assert close.ok and close.drop == pytest.approx(0.5) and "within 1 point" in close.describe()
    assert not far.ok and "NOT within" in far.describe() and far.as_dict()["drop"] == pytest.approx(1.5)


def test_embed_cli_on_both_runtimes_writes_the_same_vectors(tiny_model_dir, onnx_fp32_dir, data_dir, tmp_path):
    from notellm.cli import build_app
    from notellm.retrieval.vectors import NoteVectors

    app = build_app()
    runner = CliRunner()
    outputs = {}
    for runtime, model in (("torch", tiny_model_dir), ("onnx", onnx_fp32_dir)):
        out = tmp_path / f"{runtime}.npz"
        result = runner.invoke(app, ["embed", "--model", str(model), "--runtime", runtime, "--data", str(data_dir),
                                     "--out", str(out)])
        assert result.exit_code == 0, result.output
        outputs[runtime] = NoteVectors.load(out)
    assert outputs["torch"].ids == outputs["onnx"].ids
    # torch embeds under bf16 autocast by default in `notellm embed` (its long-standing behaviour): close, not equal
    assert np.min(np.sum(outputs["torch"].matrix * outputs["onnx"].matrix, axis=1)) > 0.99
    wrong = runner.invoke(app, ["embed", "--model", str(tiny_model_dir), "--runtime", "onnx", "--data",
                                str(data_dir), "--out", str(tmp_path / "x.npz")])
    assert wrong.exit_code == 1 and "notellm export" in wrong.output


def test_cli_quantises_an_existing_fp32_export(onnx_fp32_dir, onnx_int8_dir, data_dir, tmp_path, export_notes):
    out = tmp_path / "int8"
    result = CliRunner().invoke(_cli(), ["export", str(onnx_fp32_dir), "--quantize", "int8", "--data", str(data_dir),
                                         "--out", str(out)])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "notellm_onnx.json").read_text())
    assert meta["precision"] == "int8" and meta["check"]["reference"].startswith("onnx fp32")
    # the same quantiser on the same fp32 graph: the same int8 model as the direct export
    assert (out / "model.onnx").read_bytes() == (onnx_int8_dir / "model.onnx").read_bytes()
    np.testing.assert_array_equal(OnnxEncoder(out).encode(export_notes),
                                  OnnxEncoder(onnx_int8_dir).encode(export_notes))
    again = CliRunner().invoke(_cli(), ["export", str(out), "--quantize", "int8", "--data", str(data_dir),
                                        "--out", str(tmp_path / "x")])
    assert again.exit_code == 1 and "quantise the fp32 one" in again.output


@pytest.fixture(scope="module")
def mined_dir(stackexchange_dir, tmp_path_factory):
    from notellm.data.store import MiningConfig, SplitConfig, import_stackexchange, mine_and_split

    data = tmp_path_factory.mktemp("se") / "data"
    import_stackexchange([stackexchange_dir / "beer.stackexchange.com"], data)
    mine_and_split(data, MiningConfig(), SplitConfig(seed=0), progress=False)
    return data


def test_int8_recall_check_runs_on_a_mined_data_folder(tiny_model_dir, onnx_fp32_dir, mined_dir):
    """The recall check the int8 export prints: both runtimes scored on the same test pool of real, mined data."""
    from notellm.export.quality import compare_recall

    result = compare_recall(load_encoder(tiny_model_dir, precision="fp32"), load_encoder(onnx_fp32_dir), mined_dir)
    assert result.queries > 0 and result.pool_size > 0
    # fp32 ONNX reproduces PyTorch (cosine 1e-4), so the two recalls agree and the verdict is "within"
    assert abs(result.recall10_reference - result.recall10_candidate) <= 1.0 and result.ok
    lo, hi = result.recall10_diff_ci
    assert lo <= -result.drop <= hi and result.recall_avg_reference is not None


def _raw(greater: list[int], ties: list[int] | None = None, digest: str = "q") -> dict:
    from notellm.evaluation.metrics import summarize

    g, t = np.array(greater), np.array(ties or [0] * len(greater))
    return {"ks": [1, 10], "greater": g.tolist(), "ties": t.tolist(), "pool_size": 50, "query_digest": digest,
            "overall": summarize(g, t, [1, 10])}


def test_recall_comparison_figures_and_paired_intervals_by_hand():
    from notellm.export.quality import compare_results

    # 4 queries; reference ranks 0, 5, 12, 30; candidate loses the rank-5 hit: Recall@10 50 -> 25 points,
    # Recall@1 25 -> 25, so R@avg (mean of @1 and @10) 37.5 -> 25
    ref, cand = _raw([0, 5, 12, 30]), _raw([0, 11, 12, 30])
    result = compare_results("torch fp32", ref, "onnx int8", cand)
    assert (result.recall10_reference, result.recall10_candidate) == (50.0, 25.0)
    assert (result.recall_avg_reference, result.recall_avg_candidate) == (37.5, 25.0)
    assert result.drop == 25.0 and not result.ok and result.queries == 4
    # per-query differences are (0, -1, 0, 0) x 100: every resample's mean lies in [-100, 0]
    lo, hi = result.recall10_diff_ci
    assert -100.0 <= lo < hi <= 0.0
    assert "95% CI" in result.describe() and "R@avg 37.50 vs 25.00 (-12.50" in result.describe()
    same = compare_results("a", ref, "b", ref)
    assert same.recall10_diff_ci == (0.0, 0.0) and same.ok
    with pytest.raises(ValueError, match="different queries"):
        compare_results("a", ref, "b", _raw([0, 5, 12, 30], digest="other"))
    with pytest.raises(ValueError, match="no query"):
        compare_results("a", _raw([]), "b", _raw([]))


def test_cli_quantising_an_export_checks_recall_against_it(onnx_fp32_dir, mined_dir, tmp_path):
    out = tmp_path / "int8"
    result = CliRunner().invoke(_cli(), ["export", str(onnx_fp32_dir), "--quantize", "int8", "--data",
                                         str(mined_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Recall@10 on the test pool" in result.output and "R@avg" in result.output
    check = json.loads((out / "notellm_onnx.json").read_text())["recall_check"]
    assert check["reference"] == "onnx fp32" and check["candidate"] == "onnx int8" and check["queries"] > 0
    skipped = CliRunner().invoke(_cli(), ["export", str(onnx_fp32_dir), "--quantize", "int8", "--data",
                                          str(mined_dir), "--out", str(tmp_path / "x"), "--no-recall-check"])
    assert skipped.exit_code == 0 and "Recall@10" not in skipped.output
