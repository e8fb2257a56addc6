"""Quantisation schemes (export/quantize.py): node naming, exclusion by pattern, each preset's closeness to fp32."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from notellm.export.onnx import compare_embeddings
from notellm.export.quantize import SCHEMES, QuantScheme, excluded_nodes, quantize_graph, weighted_nodes
from notellm.export.runtime import OnnxEncoder, embed_with_session, make_session


def _graph(path):
    return onnx.load(str(path)).graph


def _embed(model_file, encoder: OnnxEncoder, notes) -> np.ndarray:
    ids = [encoder.prompt_builder.embedding_ids(n) for n in notes]
    return embed_with_session(make_session(model_file, threads=1), ids, encoder.prompt_builder.pad_id,
                              encoder.emb_dim, batch_size=4)


def test_weighted_nodes_are_named_after_their_parameters(onnx_fp32_dir, tiny_notellm):
    names = weighted_nodes(_graph(onnx_fp32_dir / "model.onnx"))
    layers = tiny_notellm.causal_lm.config.num_hidden_layers
    expected = {f"backbone_model_layers_{i}_{part}" for i in range(layers)
                for part in ("self_attn_q_proj", "self_attn_k_proj", "self_attn_v_proj", "self_attn_o_proj",
                             "mlp_gate_proj", "mlp_up_proj", "mlp_down_proj")} | {"proj"}
    assert set(names) == expected and len(names) == len(expected)


def test_excluded_nodes_stay_fp32_and_the_rest_is_quantised(onnx_fp32_dir, tmp_path):
    out = tmp_path / "q.onnx"
    info = quantize_graph(onnx_fp32_dir / "model.onnx", out, SCHEMES["dynamic-pc-nodown"])
    downs = info["kept_fp32"]
    assert downs and all(n.endswith("mlp_down_proj") for n in downs) and info["weighted_nodes"] == 2 * 7 + 1
    ops = {n.name: n.op_type for n in _graph(out).node}
    assert all(ops[n] == "MatMul" for n in downs)  # untouched
    assert ops["backbone_model_layers_0_mlp_up_proj_quant"] == "MatMulInteger"
    assert ops["proj_MatMul_quant"] == "MatMulInteger"  # the projection head (a Gemm) is quantised as a MatMul


def test_weight_only_scheme_writes_blockwise_matmuls(onnx_fp32_dir, tmp_path):
    out = tmp_path / "wo.onnx"
    quantize_graph(onnx_fp32_dir / "model.onnx", out, QuantScheme(method="weight_only", bits=8, block_size=16,
                                                                  exclude=("backbone_model_layers_1_*",)))
    nbits = [n for n in _graph(out).node if n.op_type == "MatMulNBits"]
    assert len(nbits) == 7  # layer 0's seven linears; layer 1 excluded
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nbits[0].attribute}
    assert (attrs["bits"], attrs["block_size"], attrs["accuracy_level"]) == (8, 16, 4)


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_every_preset_stays_close_to_fp32(name, onnx_fp32_dir, export_notes, tmp_path):
    fp32 = OnnxEncoder(onnx_fp32_dir, threads=1)
    out = tmp_path / "q.onnx"
    quantize_graph(onnx_fp32_dir / "model.onnx", out, SCHEMES[name])
    diff = compare_embeddings(fp32.encode(export_notes), _embed(out, fp32, export_notes))
    # loose bounds on a random tiny model: a broken graph gives cosines near 0, quantisation error ~1e-2
    assert diff["mean_self_cosine"] > 0.9, diff
    assert diff["max_abs_pairwise_cosine_diff"] < 0.25, diff


def test_exclude_patterns_that_match_nothing_are_refused():
    names = ["backbone_model_layers_0_mlp_down_proj", "proj"]
    assert excluded_nodes(names, ("*down_proj", "proj")) == names
    with pytest.raises(ValueError, match=r"'\*mlp_dwn_proj' matches no weighted node"):
        excluded_nodes(names, ("*mlp_dwn_proj",))


def test_scheme_validation_names_the_field():
    with pytest.raises(ValueError, match="bits"):
        QuantScheme(method="weight_only", bits=3)
    with pytest.raises(ValueError, match="block_size"):
        QuantScheme(method="weight_only", block_size=24)
    with pytest.raises(ValueError, match="method"):
        QuantScheme(method="static")
    assert QuantScheme(method="weight_only", bits=4).precision == "int4"
    assert SCHEMES["dynamic-pc"].precision == "int8"


def test_cli_scheme_is_recorded_and_unknown_schemes_are_refused(onnx_fp32_dir, tmp_path, export_notes):
    import pandas as pd
    import typer

    from notellm.cli import export

    app = typer.Typer()
    export.register(app)
    app.command("noop")(lambda: None)  # a second command keeps typer from collapsing the app into `export`
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"note_id": [n.note_id for n in export_notes], "title": [n.title for n in export_notes],
                  "content": [n.content for n in export_notes], "hashtags": [list(n.hashtags) for n in export_notes],
                  "category": [n.category for n in export_notes]}).to_parquet(data / "notes.parquet")
    out = tmp_path / "wo8"
    ok = CliRunner().invoke(app, ["export", str(onnx_fp32_dir), "--quantize", "int8", "--scheme", "weight-only-int8",
                                  "--data", str(data), "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    meta = json.loads((out / "notellm_onnx.json").read_text())
    assert meta["export"]["scheme"]["method"] == "weight_only" and meta["precision"] == "int8"
    assert meta["check"]["quantization"]["weighted_nodes"] == 15
    bad = CliRunner().invoke(app, ["export", str(onnx_fp32_dir), "--quantize", "int8", "--scheme", "int3",
                                   "--data", str(data), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "unknown quantisation scheme 'int3'" in bad.output


def test_a_refused_int8_export_names_its_scheme_and_the_alternatives(onnx_fp32_dir, export_notes, tmp_path):
    """A refused int8 export says what else to try (forced here with a gate no int8 graph passes)."""
    from notellm.export import ExportCheckError, OnnxExportConfig
    from notellm.export.onnx import quantize_export
    from notellm.export.quantize import scheme_name

    cfg = OnnxExportConfig(quantize="int8", int8_min_mean_self_cosine=1.5)  # a cosine is at most 1
    with pytest.raises(ExportCheckError, match=r"scheme dynamic-pc: .*--scheme, e\.g\. dynamic-per-tensor") as err:
        quantize_export(onnx_fp32_dir, export_notes, tmp_path / "int8", cfg)
    assert "weight-only-int8" in str(err.value) and "weight-only-int4" not in str(err.value)
    assert not (tmp_path / "int8").exists()
    assert scheme_name(SCHEMES["weight-only-int4"]) == "weight-only-int4" and scheme_name(QuantScheme()) == "custom"


def test_the_int8_gate_refuses_a_broken_graph_not_quantisation_error():
    """int8 is judged by mean self-cosine (a broken graph) and then by recall; fp32 by the worst cosine difference."""
    import numpy as np

    from notellm.export import OnnxExportConfig
    from notellm.export.onnx import compare_embeddings

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(16, 8)).astype(np.float32)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    noisy = ref + 0.15 * rng.normal(size=ref.shape).astype(np.float32)  # quantisation-like error on every row
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    broken = np.roll(ref, 1, axis=0)  # another note's vector: what a graph that computes something else gives
    int8, fp32 = OnnxExportConfig(quantize="int8"), OnnxExportConfig()
    near, far = compare_embeddings(ref, noisy), compare_embeddings(ref, broken)
    assert near["mean_self_cosine"] > 0.9 and near["max_abs_pairwise_cosine_diff"] > 0.1  # the old gate refused it
    assert int8.refusal(near, noisy) is None
    assert "mean self-cosine" in int8.refusal(far, broken)
    assert "non-finite" in int8.refusal(near, np.full_like(noisy, np.nan))
    assert "max cosine difference" in fp32.refusal(near, noisy)
    assert fp32.refusal(compare_embeddings(ref, ref), ref) is None
