"""Fixtures for the export tests: a tiny NoteLLM saved to disk and exported once (fp32 and int8) per session."""

from __future__ import annotations

import pytest

from notellm.data.schema import Note

NOTES = [
    Note("b1", "How do I brew a stout at home?", "I want to brew an imperial stout with roasted barley. Which yeast "
         "should I use, and how long should it ferment?", ("brewing", "stout", "yeast"), "beer/brewing"),
    Note("c1", "Espresso tastes sour", "My shots pull in 20 seconds and taste sour. Grind finer?",
         ("espresso", "grinding"), "coffee"),
    Note("q1", "What is a qubit?", "How is a qubit different from a classical bit?", ("qubit",), "quantumcomputing"),
    Note("a1", "Is backprop biologically plausible?", "Neurons do not seem to send error signals backwards. " * 12,
         ("neural-networks", "backpropagation", "biology"), "ai"),
    Note("m1", "Teaching fractions", "Ideas for a first lesson on fractions for ten-year-olds?", (), "matheducators"),
    Note("x1", "Staking", "", ("ada",), ""),
    Note("g1", "Prompt length and quality", "Do longer prompts give better answers from a chat model, or does it "
         "depend on the task?", ("prompting",), "genai"),
    Note("k1", "Why is my wort cloudy?", "Chill haze after a cold crash; is it protein?", ("clarity",), "beer"),
]


@pytest.fixture(scope="session")
def export_notes() -> list[Note]:
    return list(NOTES)


@pytest.fixture(scope="session")
def tiny_notellm(tiny_backbone_dir):
    from notellm.model.notellm import NoteLLM, NoteLLMConfig

    return NoteLLM.from_backbone(NoteLLMConfig(backbone=str(tiny_backbone_dir), emb_dim=16)).eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_notellm, tmp_path_factory):
    return tiny_notellm.save_pretrained(tmp_path_factory.mktemp("tiny_notellm") / "model")


@pytest.fixture(scope="session")
def onnx_fp32_dir(tiny_notellm, export_notes, tmp_path_factory):
    from notellm.export import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "fp32"
    export_onnx(tiny_notellm, export_notes, out)
    return out


@pytest.fixture(scope="session")
def onnx_int8_dir(tiny_notellm, export_notes, tmp_path_factory):
    from notellm.export import OnnxExportConfig, export_onnx

    out = tmp_path_factory.mktemp("onnx") / "int8"
    export_onnx(tiny_notellm, export_notes, out, OnnxExportConfig(quantize="int8"))
    return out
