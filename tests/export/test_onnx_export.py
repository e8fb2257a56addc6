"""ONNX export of the embedding path: equivalence with PyTorch, int8 closeness, determinism, refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest

from notellm.export import ExportCheckError, OnnxEncoder, OnnxExportConfig, export_onnx
from notellm.export.onnx import compare_embeddings, select_check_notes
from notellm.retrieval.encode import NoteLLMEncoder


def test_fp32_export_matches_pytorch_on_cosines(tiny_notellm, onnx_fp32_dir, export_notes):
    torch_vecs = NoteLLMEncoder(tiny_notellm, bf16=False).encode(export_notes)  # (n, d)
    onnx_vecs = OnnxEncoder(onnx_fp32_dir, batch_size=3).encode(export_notes)  # mixed-length padded batches
    diff = compare_embeddings(torch_vecs, onnx_vecs)
    assert diff["max_abs_pairwise_cosine_diff"] <= 1e-4
    assert diff["max_self_cosine_gap"] <= 1e-4
    np.testing.assert_allclose(np.linalg.norm(onnx_vecs, axis=1), 1.0, atol=1e-5)


def test_onnx_batching_does_not_change_embeddings(onnx_fp32_dir, export_notes):
    one_by_one = OnnxEncoder(onnx_fp32_dir, batch_size=1).encode(export_notes)
    batched = OnnxEncoder(onnx_fp32_dir, batch_size=8).encode(export_notes[::-1])[::-1]
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_int8_export_is_close_and_recorded(tiny_notellm, onnx_int8_dir, export_notes):
    meta = json.loads((onnx_int8_dir / "notellm_onnx.json").read_text())
    assert meta["precision"] == "int8" and meta["opset"] == 18 and meta["emb_dim"] == 16
    torch_vecs = tiny_notellm.embed(export_notes)
    int8 = OnnxEncoder(onnx_int8_dir)
    assert int8.precision == "int8"
    diff = compare_embeddings(torch_vecs, int8.encode(export_notes))
    assert diff["mean_self_cosine"] > 0.99
    assert diff["max_abs_pairwise_cosine_diff"] <= 0.05


def test_export_folder_is_self_describing(onnx_fp32_dir):
    meta = json.loads((onnx_fp32_dir / "notellm_onnx.json").read_text())
    assert meta["format"] == "notellm-onnx" and meta["precision"] == "fp32"
    assert meta["config"]["prompt"]["language"] == "en" and meta["template"]["compress"]
    assert meta["special_tokens"]["emb"]["token"] == "[EMB]"
    assert meta["check"]["notes"] == 8 and meta["check"]["max_abs_pairwise_cosine_diff"] <= 1e-4
    assert (onnx_fp32_dir / "model.onnx").is_file() and (onnx_fp32_dir / "tokenizer.json").is_file()


def test_export_refuses_a_model_it_cannot_reproduce(tiny_notellm, export_notes, tmp_path, monkeypatch):
    import torch

    original = type(tiny_notellm).encode

    def drifting_encode(self, input_ids, attention_mask, positions):  # the traced graph differs from eager
        out = original(self, input_ids, attention_mask, positions)
        if torch.compiler.is_exporting():
            out = torch.roll(out, 1, dims=-1)
        return out

    monkeypatch.setattr(type(tiny_notellm), "encode", drifting_encode)
    with pytest.raises(ExportCheckError, match="does not reproduce"):
        export_onnx(tiny_notellm, export_notes, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind either


def test_export_refuses_existing_folder_and_too_few_notes(tiny_notellm, export_notes, onnx_fp32_dir, tmp_path):
    with pytest.raises(FileExistsError, match="overwrite"):
        export_onnx(tiny_notellm, export_notes, onnx_fp32_dir)
    with pytest.raises(ValueError, match="at least 2 notes"):
        export_onnx(tiny_notellm, export_notes[:1], tmp_path / "x")


def test_onnx_encoder_names_what_is_wrong(tmp_path, onnx_fp32_dir):
    with pytest.raises(FileNotFoundError, match="notellm export"):
        OnnxEncoder(tmp_path)
    (tmp_path / "notellm_onnx.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        OnnxEncoder(tmp_path)
    with pytest.raises(ValueError, match="threads"):
        OnnxEncoder(onnx_fp32_dir, threads=0)


def test_check_notes_cover_the_length_extremes(export_notes):
    picked = select_check_notes(export_notes, 4, seed=0)
    lengths = sorted(len(n.title) + len(n.content) for n in export_notes)
    got = [len(n.title) + len(n.content) for n in picked]
    assert len(picked) == 4 and lengths[0] in got and lengths[-1] in got
    assert select_check_notes(export_notes, 4, seed=0) == picked
    with pytest.raises(ValueError, match="quantize"):
        OnnxExportConfig(quantize="int4")
