"""Cached frozen layers: when only the top N decoder layers train, the bottom layers' outputs are a pure function of
the input tokens, so they are computed once per distinct input and reused; a step then costs only the top layers.

- Key: the exact token sequence of one row (a note under one prompt variant and hashtag draw), hashed. A note seen
  again in another epoch or in validation with the same prompt hits the cache; another draw is another key.
- Exactness: inputs are right padded and attention is causal, so a row's real positions do not depend on the padding
  or on the other rows of the batch; the cached rows are re-padded with zeros (pad positions feed nothing).
- Bounded: rows live in memory up to `max_mb` (least recently used first out); evicted rows spill to one append-only
  float32 file read back through `np.memmap`, up to `max_disk_mb`; beyond that an evicted row is dropped (and
  recomputed if it comes back).
- How the bottom and top stacks run: the decoder's `layers` (and final `norm`) are swapped for a slice for the
  duration of one call, so transformers' own forward (rotary embeddings, masks, Gemma's per-layer attention
  types) runs unchanged; written by hand because no library splits a Hugging Face decoder this way.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn


@contextlib.contextmanager
def decoder_slice(decoder: nn.Module, layers: nn.ModuleList, final_norm: bool):
    """Run `decoder` with only `layers` (and its final norm only if `final_norm`) for the duration of the block."""
    saved_layers, saved_norm = decoder.layers, getattr(decoder, "norm", None)
    decoder.layers = layers
    if not final_norm and saved_norm is not None:
        decoder.norm = nn.Identity()
    try:
        yield decoder
    finally:
        decoder.layers = saved_layers
        if saved_norm is not None:
            decoder.norm = saved_norm


class FrozenLayerCache:
    """Outputs of the first `n_frozen` decoder layers per distinct token row; see the module docstring."""

    def __init__(self, n_frozen: int, spill_dir: str | Path | None = None, max_mb: float = 1024,
                 max_disk_mb: float = 8192) -> None:
        if n_frozen < 1:
            raise ValueError(f"FrozenLayerCache needs at least one frozen layer, got {n_frozen}")
        self.n_frozen = n_frozen
        self.max_bytes, self.max_disk_bytes = int(max_mb * 2**20), int(max_disk_mb * 2**20)
        self.memory: OrderedDict[str, torch.Tensor] = OrderedDict()  # key -> (len, H) float32, CPU
        self.memory_bytes = 0
        self.disk: dict[str, tuple[int, int]] = {}  # key -> (byte offset, rows)
        self.disk_bytes = 0
        self.spill_path = Path(spill_dir) / "frozen_layers.f32" if spill_dir is not None else None
        self.hidden_size: int | None = None
        self.hits = self.misses = 0

    @staticmethod
    def key(tokens: torch.Tensor) -> str:
        return hashlib.blake2b(tokens.to(torch.int64).cpu().numpy().tobytes(), digest_size=16).hexdigest()

    def __contains__(self, key: str) -> bool:
        return key in self.memory or key in self.disk

    def __len__(self) -> int:
        return len(self.memory.keys() | self.disk.keys())

    def stats(self) -> dict:
        return {"rows": len(self), "hits": self.hits, "misses": self.misses,
                "memory_mb": round(self.memory_bytes / 2**20, 1), "disk_mb": round(self.disk_bytes / 2**20, 1)}

    # --- storage ------------------------------------------------------------------------------------------------
    def _spill(self, key: str, rows: torch.Tensor) -> None:
        if self.spill_path is None or key in self.disk or self.disk_bytes + rows.numel() * 4 > self.max_disk_bytes:
            return
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        with self.spill_path.open("ab") as handle:
            offset = handle.tell()
            handle.write(rows.numpy().astype(np.float32, copy=False).tobytes())
        self.disk[key] = (offset, rows.shape[0])
        self.disk_bytes += rows.numel() * 4

    def put(self, key: str, rows: torch.Tensor) -> None:
        rows = rows.detach().to("cpu", torch.float32).contiguous()
        self.hidden_size = rows.shape[1]
        if key in self.memory:
            return
        self.memory[key] = rows
        self.memory_bytes += rows.numel() * 4
        while self.memory_bytes > self.max_bytes and len(self.memory) > 1:
            old_key, old = self.memory.popitem(last=False)
            self.memory_bytes -= old.numel() * 4
            self._spill(old_key, old)

    def get(self, key: str) -> torch.Tensor:
        if key in self.memory:
            self.memory.move_to_end(key)
            return self.memory[key]
        offset, n = self.disk[key]
        view = np.memmap(self.spill_path, dtype=np.float32, mode="r", offset=offset, shape=(n, self.hidden_size))
        return torch.from_numpy(np.array(view))

    def close(self) -> None:
        """Forget everything and delete the spill file."""
        self.memory.clear()
        self.disk.clear()
        self.memory_bytes = self.disk_bytes = 0
        if self.spill_path is not None and self.spill_path.exists():
            self.spill_path.unlink()

    # --- the split forward ----------------------------------------------------------------------------------------
    def hidden(self, decoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The decoder's last hidden state (N, T, H), the bottom `n_frozen` layers read from / written to the cache.

        `input_ids` / `attention_mask` are (N, T), right padded."""
        layers = decoder.layers
        if self.n_frozen >= len(layers):
            raise ValueError(f"{self.n_frozen} frozen layers leave none of the {len(layers)} to train")
        lengths = attention_mask.sum(dim=1).tolist()  # (N,) real tokens per row (right padding)
        keys = [self.key(input_ids[i, :n]) for i, n in enumerate(lengths)]
        have = {k: self.get(k) for k in dict.fromkeys(keys) if k in self}  # read before any put can evict them
        missing = [k for k in dict.fromkeys(keys) if k not in have]
        self.hits += sum(k in have for k in keys)
        self.misses += len(keys) - sum(k in have for k in keys)
        if missing:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            index = torch.tensor([first[k] for k in missing], device=input_ids.device)
            width = int(max(lengths[i] for i in index.tolist()))
            with torch.no_grad(), decoder_slice(decoder, layers[: self.n_frozen], final_norm=False):
                bottom = decoder(input_ids=input_ids[index, :width], attention_mask=attention_mask[index, :width],
                                 use_cache=False).last_hidden_state  # (m, width, H)
            for row, k in enumerate(missing):
                have[k] = bottom[row, : lengths[first[k]]].float()
                self.put(k, have[k])
        states = torch.zeros(input_ids.shape[0], input_ids.shape[1], self.hidden_size,
                             device=input_ids.device)  # (N, T, H); pad positions stay 0
        for i, k in enumerate(keys):
            states[i, : lengths[i]] = have[k].to(input_ids.device)
        with decoder_slice(decoder, layers[self.n_frozen :], final_norm=True):
            return decoder(inputs_embeds=states, attention_mask=attention_mask, use_cache=False).last_hidden_state
