"""`ServeConfig`: every knob of the HTTP service, its limits and its durable store, as one typed dataclass.

Paths (model, index, Milvus URI) are deliberately NOT here: they come only from the command line, so no request
and no config shipped with a request can point the server at a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Re-ranker settings that keep NDCG ≈ 0.9 of the un-reranked order on held-out users' feeds of the shipped Stack
# Exchange data (window 5; docs/diversity.md, feed evaluation). The re-rankers' neutral defaults (θ = λ = 0.5)
# barely change a list of z-scored scores, so a service that diversifies needs settings like these.
DEFAULT_RERANK_PARAMS = {
    "mmr": {"lam": 0.1, "window": 5},
    "dpp": {"theta": 0.2},
    "ssd": {"gamma": 5.7, "window": 5},
    "ssd_star": {"theta": 0.075, "window": 5},
}


@dataclass
class ServeConfig:
    """Limits, batching and durability settings of `notellm serve` (override with `--set serve_key=value`)."""

    max_k: int = 1000
    """Largest `k` a related-notes request may ask for."""
    max_notes_per_request: int = 256
    """Most notes one POST /notes, /embed or /generate request may carry."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Request bodies larger than this are refused with 413 before any parsing."""
    max_title_chars: int = 1000
    """Longest accepted note title."""
    max_content_chars: int = 16000
    """Longest accepted note content (Milvus VARCHAR fields hold 65,535 bytes; 16k chars x 4 bytes fits)."""
    max_hashtags: int = 64
    """Most hashtags one note may carry."""
    max_search_results: int = 100
    """Most notes GET /notes?q= returns."""
    candidate_factor: int = 5
    """Related notes with diversification re-rank the top `candidate_factor * k` nearest neighbours."""
    rerank_params: dict = field(default_factory=lambda: {m: dict(p) for m, p in DEFAULT_RERANK_PARAMS.items()})
    """Keyword arguments per re-ranker for `diversify=` (method -> {param: value})."""
    embed_batch_size: int = 32
    """Micro-batching: one model call embeds at most this many notes (several requests merged)."""
    embed_max_wait_ms: float = 5.0
    """Micro-batching: how long the first request of a batch waits for others to join it."""
    generate_chunk_notes: int = 4
    """/generate runs this many notes per model call; a pending embedding (POST /notes, /embed) goes between."""
    compact_every: int = 2000
    """Local store: fold the write-ahead log into a new snapshot after this many logged records (0 = never)."""
    milvus_collection: str = "notellm_notes"
    """Milvus backend: the collection holding vectors and note metadata."""
    allowed_hosts: list[str] = field(default_factory=list)
    """Host-header names answered besides localhost/127.0.0.1/::1 and the bound interface (DNS-rebinding guard;
    "*" = any, for a proxy that checks Host itself)."""

    def __post_init__(self) -> None:
        for name in ("max_k", "max_notes_per_request", "max_body_bytes", "max_title_chars", "max_content_chars",
                     "max_search_results", "candidate_factor", "embed_batch_size", "generate_chunk_notes"):
            if getattr(self, name) < 1:
                raise ValueError(f"serve.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_hashtags < 0 or self.compact_every < 0:
            raise ValueError("serve.max_hashtags and serve.compact_every must be >= 0")
        if self.embed_max_wait_ms < 0:
            raise ValueError(f"serve.embed_max_wait_ms must be >= 0, got {self.embed_max_wait_ms}")
        if self.max_content_chars > 16000:
            raise ValueError("serve.max_content_chars is capped at 16000 (Milvus VARCHAR limit of 65,535 bytes)")
        if not self.milvus_collection.replace("_", "").isalnum():
            raise ValueError(f"serve.milvus_collection must be letters, digits and _, got {self.milvus_collection!r}")
