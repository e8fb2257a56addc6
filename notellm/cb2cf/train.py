"""Train CB2CF on ItemCF positive pairs with random negatives (1:k) and binary cross-entropy.

Per step: a batch of B positive pairs (a, b) → label 1, and for each a, `negatives` uniformly random items b' → 0
(drawn from the items that appear in the pairs, so items without behaviour never enter training).
p = ⟨z_a, z_b⟩ = (1 + cos) / 2, clamped to [1e-6, 1 − 1e-6], BCE averaged over all B (1 + k) pairs. A random
"negative" can be a true neighbour; at Stack-Exchange/feed scale that is rare and the paper's recipe accepts it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from notellm.cb2cf.itemcf import itemcf_pairs
from notellm.cb2cf.model import CB2CF, CB2CFConfig

EPS = 1e-6


@dataclass
class TrainLog:
    """What training did: pairs, steps, seconds and the mean loss of each epoch."""

    n_pairs: int
    n_items: int
    steps: int = 0
    seconds: float = 0.0
    epoch_loss: list[float] = field(default_factory=list)


def pair_loss(za: torch.Tensor, zb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE on p = ⟨z_a, z_b⟩ (augmented unit vectors, so p = (1 + cos) / 2).  (B, d+1) x2, (B,) -> scalar"""
    p = (za * zb).sum(dim=1).clamp(EPS, 1 - EPS)  # (B,)
    return torch.nn.functional.binary_cross_entropy(p, labels)


def train_cb2cf(
    text: np.ndarray,
    pairs: pd.DataFrame | np.ndarray,
    cfg: CB2CFConfig | None = None,
    *,
    image: np.ndarray | None = None,
    progress: bool = True,
) -> tuple[CB2CF, TrainLog]:
    """Fit CB2CF on positive `pairs` (rows a, b into `text`) with random negatives.

    Args:
        text: (N, d_text) content features (e.g. SentenceBERT or NoteLLM note embeddings).
        pairs: DataFrame with a, b columns (from `itemcf_pairs`) or an (P, 2) int array.
        cfg: hyperparameters (defaults if None).
        image: optional (N, d_image) second feature matrix, concatenated to `text`.
        progress: show a progress bar.

    Raises:
        ValueError: when there are no pairs or a pair index is out of range.
    """
    cfg = cfg or CB2CFConfig()
    text = np.asarray(text, dtype=np.float32)
    ab = pairs[["a", "b"]].to_numpy(np.int64) if isinstance(pairs, pd.DataFrame) else np.asarray(pairs, np.int64)
    if ab.ndim != 2 or ab.shape[1] != 2 or len(ab) == 0:
        raise ValueError(f"pairs must be a non-empty (P, 2) set of rows, got shape {ab.shape}")
    if ab.min() < 0 or ab.max() >= len(text):
        raise ValueError(f"pair rows must be in [0, {len(text)}), got range [{ab.min()}, {ab.max()}]")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = CB2CF(text.shape[1], cfg, image_dim=0 if image is None else np.asarray(image).shape[1])
    feats_t = torch.as_tensor(text)
    feats_i = None if image is None else torch.as_tensor(np.asarray(image, dtype=np.float32))
    if feats_i is not None and len(feats_i) != len(feats_t):
        raise ValueError(f"image features have {len(feats_i)} rows, text features {len(feats_t)}")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    log = TrainLog(n_pairs=len(ab), n_items=len(np.unique(ab)))
    steps_per_epoch = (len(ab) + cfg.batch_size - 1) // cfg.batch_size
    bar = tqdm(total=cfg.epochs * steps_per_epoch, desc="cb2cf", unit=" step", disable=not progress)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        _epochs(model, opt, ab, feats_t, feats_i, cfg, rng, log, bar, steps_per_epoch)
    finally:
        torch.set_num_threads(threads)
        bar.close()
    model.eval()
    log.seconds = time.perf_counter() - start
    return model, log


def _epochs(model, opt, ab, feats_t, feats_i, cfg, rng, log, bar, steps_per_epoch) -> None:
    pool = np.unique(ab)  # negatives come from items with behaviour only (cold items stay unseen in evaluation)
    model.train()
    for _ in range(cfg.epochs):
        order = rng.permutation(len(ab))
        total = 0.0
        for s in range(steps_per_epoch):
            batch = ab[order[s * cfg.batch_size : (s + 1) * cfg.batch_size]]  # (B, 2)
            neg = pool[rng.integers(0, len(pool), size=(len(batch), cfg.negatives))]  # (B, k)
            left = np.concatenate([batch[:, 0], np.repeat(batch[:, 0], cfg.negatives)])  # (B(1+k),)
            right = np.concatenate([batch[:, 1], neg.reshape(-1)])  # (B(1+k),)
            labels = torch.cat([torch.ones(len(batch)), torch.zeros(neg.size)])
            rows = np.concatenate([left, right])
            z = model(feats_t[rows], None if feats_i is None else feats_i[rows])  # (2M, d+1): one tower, twin use
            loss = pair_loss(z[: len(left)], z[len(left) :], labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            log.steps += 1
            bar.update(1)
        log.epoch_loss.append(total / steps_per_epoch)
        bar.set_postfix(loss=f"{log.epoch_loss[-1]:.4f}")


def fit_from_events(
    text: np.ndarray,
    note_ids: list[str],
    events_df: pd.DataFrame,
    cfg: CB2CFConfig | None = None,
    *,
    image: np.ndarray | None = None,
    progress: bool = True,
) -> tuple[CB2CF, TrainLog]:
    """Mine ItemCF pairs from `events_df` (rows = `note_ids` order), then `train_cb2cf`."""
    cfg = cfg or CB2CFConfig()
    row_of = {str(n): i for i, n in enumerate(note_ids)}
    pairs = itemcf_pairs(events_df, row_of, min_users=cfg.min_users, top_k=cfg.top_k, similarity=cfg.similarity)
    if pairs.empty:
        raise ValueError(
            f"no ItemCF pairs: no two notes with >= {cfg.min_users} users share a user; "
            "lower min_users or supply more events"
        )
    return train_cb2cf(text, pairs, cfg, image=image, progress=progress)
