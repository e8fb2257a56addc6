"""Fixtures for the model tests: a NoteLLM on the tiny random backbone, and a handful of realistic notes."""

from __future__ import annotations

import copy

import pytest

from notellm.data.schema import Note


@pytest.fixture(scope="session")
def _tiny_model_master(tiny_backbone_dir):
    from notellm.model.notellm import NoteLLM, NoteLLMConfig

    return NoteLLM.from_backbone(NoteLLMConfig(backbone=str(tiny_backbone_dir), emb_dim=16))


@pytest.fixture
def tiny_model(_tiny_model_master):
    """A fresh copy per test (tests may train or wrap it)."""
    return copy.deepcopy(_tiny_model_master)


@pytest.fixture
def builder(_tiny_model_master):
    return _tiny_model_master.prompt_builder


@pytest.fixture
def tokenizer(_tiny_model_master):
    return _tiny_model_master.tokenizer


@pytest.fixture
def notes() -> list[Note]:
    return [
        Note(
            "b1",
            "How do I brew a stout at home?",
            "I want to brew an imperial stout with roasted barley. "
            "Which yeast should I use, and how long should it ferment?",
            ("brewing", "stout", "yeast"),
            "beer/brewing",
        ),
        Note(
            "c1",
            "Espresso tastes sour",
            "My shots pull in 20 seconds and taste sour. Grind finer?",
            ("espresso", "grinding"),
            "coffee",
        ),
        Note(
            "q1",
            "What is a qubit?",
            "How is a qubit different from a classical bit?",
            ("qubit",),
            "quantumcomputing/qubit",
        ),
        Note(
            "a1",
            "Is backprop biologically plausible?",
            "Neurons do not seem to send error signals backwards. " * 8,
            ("neural-networks", "backpropagation", "biology", "learning", "theory", "neuroscience"),
            "ai",
        ),
        Note(
            "m1", "Teaching fractions", "Ideas for a first lesson on fractions for ten-year-olds?", (), "matheducators"
        ),
        Note("x1", "No category here", "A note without a category but with tags.", ("misc", "other"), ""),
    ]
