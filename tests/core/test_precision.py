"""precision: auto picks bf16 only where it is native (or probed faster); explicit choices win with a warning."""

from __future__ import annotations

import logging

import pytest
import torch

from notellm import precision as P


@pytest.fixture
def no_peak(monkeypatch):
    monkeypatch.setattr(P, "matmul_peak", lambda dtype, device="cpu": 10.0 if dtype == torch.bfloat16 else 5.0)


@pytest.mark.parametrize(("support", "probe", "expected"), [
    ("native", None, "bf16"), ("none", None, "fp32"), ("uncertain", True, "bf16"), ("uncertain", False, "fp32")])
def test_auto_follows_the_hardware(monkeypatch, no_peak, support, probe, expected):
    monkeypatch.setenv(P.FORCE_ENV, support)
    calls = []
    monkeypatch.setattr(P, "probe_bf16_faster", lambda device="cpu": calls.append(device) or probe)
    choice = P.resolve_precision("auto", "cpu")
    assert choice.name == expected
    assert choice.dtype == (torch.bfloat16 if expected == "bf16" else torch.float32)
    assert choice.peak_gflops == (10.0 if expected == "bf16" else 5.0)  # the peak of the chosen precision
    assert calls == (["cpu"] if support == "uncertain" else [])  # the probe runs only when the answer is uncertain
    assert choice.as_dict()["requested"] == "auto"


def test_cpu_flags_decide_when_onednn_says_yes(monkeypatch):
    monkeypatch.delenv(P.FORCE_ENV, raising=False)
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert P.bf16_support("cpu") == "none"
        return
    monkeypatch.setattr(P, "_cpu_flags", lambda: {"avx2", "avx512f"})
    assert P.bf16_support("cpu") == "uncertain"
    monkeypatch.setattr(P, "_cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert P.bf16_support("cpu") == "native"


@pytest.mark.parametrize(("support", "asked", "warns"), [
    ("none", "bf16", True), ("none", "fp32", False), ("native", "fp32", True), ("native", "bf16", False)])
def test_explicit_choice_wins_and_warns_when_slow(monkeypatch, no_peak, caplog, support, asked, warns):
    monkeypatch.setenv(P.FORCE_ENV, support)
    with caplog.at_level(logging.WARNING, logger="notellm.precision"):
        choice = P.resolve_precision(asked, "cpu", what="train")
    assert choice.name == asked
    assert any("is faster" in r.message for r in caplog.records) == warns


def test_bad_values_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="precision must be one of"):
        P.resolve_precision("fp16")
    monkeypatch.setenv(P.FORCE_ENV, "maybe")
    with pytest.raises(ValueError, match="NOTELLM_BF16_SUPPORT"):
        P.bf16_support("cpu")


def test_probe_times_both_precisions(monkeypatch):
    timed = []
    monkeypatch.setattr(P, "_seconds_per_matmul", lambda dtype, device: timed.append(dtype) or
                        (1.0 if dtype == torch.bfloat16 else 2.0))
    assert P.probe_bf16_faster("cpu") is True
    assert set(timed) == {torch.bfloat16, torch.float32}


def test_encoder_holds_bf16_weights_where_native(monkeypatch, no_peak, tiny_backbone_dir):
    from notellm.data.schema import Note
    from notellm.model.notellm import NoteLLM, NoteLLMConfig
    from notellm.retrieval.encode import NoteLLMEncoder

    notes = [Note(note_id=str(i), title=f"title {i}", content="some words " * i) for i in range(4)]
    monkeypatch.setenv(P.FORCE_ENV, "none")
    fp32 = NoteLLMEncoder(NoteLLM.from_backbone(NoteLLMConfig(backbone=str(tiny_backbone_dir), emb_dim=16)))
    assert next(fp32.model.causal_lm.parameters()).dtype == torch.float32
    monkeypatch.setenv(P.FORCE_ENV, "native")
    bf16 = NoteLLMEncoder(NoteLLM.from_backbone(NoteLLMConfig(backbone=str(tiny_backbone_dir), emb_dim=16)))
    assert next(bf16.model.causal_lm.parameters()).dtype == torch.bfloat16
    assert bf16.model.proj.weight.dtype == torch.float32  # the head stays fp32
    a, b = fp32.encode(notes), bf16.encode(notes)
    assert a.dtype == b.dtype == "float32"
    assert (a * b).sum(axis=1).min() > 0.98  # same model, bf16 rounding only
