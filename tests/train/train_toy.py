"""Planted-structure toy data and a tiny-model config for the training tests (imported by conftest and tests)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TOPICS = {
    "coffee": ["espresso", "grinder", "roast", "crema", "bean", "brew"],
    "beer": ["hops", "lager", "yeast", "malt", "stout", "ale"],
    "quantum": ["qubit", "gate", "circuit", "entangle", "measure", "hadamard"],
    "cardano": ["stake", "wallet", "ledger", "token", "pool", "epoch"],
}
NOTES_PER_TOPIC = 12


def write_toy_data(path: Path, seed: int = 0) -> Path:
    """Notes whose words come from one topic; train/val pairs link notes of the same topic only."""
    import random

    rng = random.Random(seed)
    notes, pairs = [], []
    for topic, words in TOPICS.items():
        ids = []
        for i in range(NOTES_PER_TOPIC):
            note_id = f"{topic}-{i}"
            ids.append(note_id)
            picked = rng.sample(words, 3)
            notes.append(
                {
                    "note_id": note_id,
                    "title": f"{picked[0]} {picked[1]} question {i}",
                    "content": " ".join(rng.choice(words) for _ in range(12)),
                    "hashtags": rng.sample(words, 2),
                    "category": f"{topic}/{picked[2]}",
                }
            )
        for i in range(NOTES_PER_TOPIC):
            for j in (1, 2, 3):
                split = "val" if i % 6 == 5 and j == 1 else "train"
                pairs.append(
                    {
                        "note_id_a": ids[i],
                        "note_id_b": ids[(i + j) % NOTES_PER_TOPIC],
                        "score": 1.0 / j,
                        "split": split,
                    }
                )
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(notes).to_parquet(path / "notes.parquet")
    pd.DataFrame(pairs).to_parquet(path / "pairs.parquet")
    return path


def tiny_config(backbone: Path, data: Path, out: Path, *overrides: str):
    from notellm.train.config import load_train_config

    return load_train_config(
        None,
        [
            f"model.backbone={backbone}",
            "model.emb_dim=16",
            f"train.data_dir={data}",
            f"train.out_dir={out}",
            "train.batch_pairs=4",
            "train.lr=2e-3",
            "train.warmup_ratio=0.0",
            "train.tensorboard=false",
            "train.precision=fp32",
            *overrides,
        ],
    )
