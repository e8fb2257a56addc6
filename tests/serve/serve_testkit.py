"""A deterministic, model-free test double for the service: feature-hashed bag-of-words embeddings.

Each lower-cased word maps to a fixed pseudo-random unit vector (seeded by its CRC32); a note's embedding is the
normalised sum over the words of its title, content and hashtags. Notes that share words are therefore close,
which gives the API tests planted structure without loading a model. `generate_*` return simple, predictable
strings so the /generate plumbing can be checked.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

from notellm.data.schema import Note

WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """An `Encoder` (retrieval/encode.py) that can also generate, like the PyTorch NoteLLM behind the service."""

    name, runtime, precision = "hashing", "custom", "fp32"

    def __init__(self, dim: int = 32) -> None:
        self.dim = dim
        self.calls = 0
        self.notes_seen = 0
        self._cache: dict[str, np.ndarray] = {}

    def _word(self, word: str) -> np.ndarray:
        if word not in self._cache:
            v = np.random.default_rng(zlib.crc32(word.encode())).normal(size=self.dim).astype(np.float32)
            self._cache[word] = v / np.linalg.norm(v)
        return self._cache[word]

    def embed_one(self, note: Note) -> np.ndarray:
        text = " ".join([note.title, note.content, *note.hashtags]).lower()
        v = np.zeros(self.dim, dtype=np.float32)
        for word in WORD.findall(text):
            v += self._word(word)
        if not v.any():
            v[0] = 1.0
        return v / np.linalg.norm(v)

    def encode(self, notes: list[Note]) -> np.ndarray:
        self.calls += 1
        self.notes_seen += len(notes)
        return np.stack([self.embed_one(n) for n in notes]).astype(np.float32)  # (N, d)

    def embed(self, notes: list[Note]) -> np.ndarray:
        """Expected vectors for assertions (not counted as model calls)."""
        return np.stack([self.embed_one(n) for n in notes]).astype(np.float32)

    def generate_hashtags(self, notes: list[Note], k: int = 5, constrained: bool = False,
                          vocabulary: list[str] | None = None) -> list[list[str]]:
        if constrained:
            return [vocabulary[:k] for _ in notes]
        return [sorted(set(WORD.findall(n.title.lower())), key=lambda w: (-len(w), w))[:k] for n in notes]

    def generate_category(self, notes: list[Note], constrained: bool = False,
                          categories: list[str] | None = None) -> list[str]:
        if constrained:
            return [categories[0] for _ in notes]
        return [(WORD.findall(n.title.lower()) or ["none"])[0] for n in notes]


TOPICS = {
    "coffee": ["espresso", "grinder", "roast", "beans", "brew", "crema"],
    "beer": ["hops", "lager", "yeast", "malt", "stout", "brewing"],
    "quantum": ["qubit", "entanglement", "gate", "circuit", "superposition", "measurement"],
}


def planted_notes(per_topic: int = 8) -> list[Note]:
    """`per_topic` notes per topic; each note uses 3 of its topic's words (notes of a topic are near each other)."""
    notes = []
    for topic, words in TOPICS.items():
        for i in range(per_topic):
            picked = [words[(i + j) % len(words)] for j in range(3)]
            notes.append(Note(note_id=f"{topic}-{i}", title=f"{topic} {picked[0]} {picked[1]} question {i}",
                              content=" ".join(picked * 2), hashtags=(topic, picked[2]), category=topic))
    return notes
