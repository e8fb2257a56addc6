"""Cached frozen layers are exact: losses and gradients equal the uncached run (first pass: misses; second: hits,
some read back from the memory-mapped spill file), for top_n and for LoRA restricted to the top layers.

Run: PYTHONPATH=. python -m pytest tests/train/test_frozen_cache.py -q -p no:cacheprovider
"""

from __future__ import annotations

import pytest
import torch
from test_step_and_modes import _grads, _model, _pairs

from notellm.model.collate import PairCollator
from notellm.model.frozen_cache import FrozenLayerCache
from notellm.train.config import TrainArgs
from notellm.train.modes import apply_mode, frozen_bottom_layers
from notellm.train.step import plain_step


def _loss_and_grads(model, batch) -> tuple[dict, dict]:
    model.zero_grad(set_to_none=True)
    parts = plain_step(model, model, batch, True, 0.01, lambda loss: loss.backward())
    return parts, _grads(model)


@pytest.mark.parametrize("mode", ["top_n", "lora"])
def test_cached_run_equals_uncached(tiny_backbone_dir, tmp_path, mode):
    model = _model(tiny_backbone_dir)
    args = TrainArgs(mode=mode, top_n_layers=1, lora_layers=1, lora_r=4)
    apply_mode(model, args)
    n_frozen = frozen_bottom_layers(model, args)
    assert n_frozen == 1  # the tiny backbone has 2 layers
    collator = PairCollator(model.prompt_builder, hashtag_ratio=0.4, seed=0)
    batches = [collator.collate(_pairs(6)[:4], 0), collator.collate(_pairs(6)[2:], 1)]  # rows overlap: partial hits
    plain = [_loss_and_grads(model, b) for b in batches]

    # A memory budget of ~one row: nearly everything spills to disk and is read back through the memmap.
    cache = FrozenLayerCache(n_frozen, tmp_path / "spill", max_mb=0.001, max_disk_mb=100)
    model.frozen_cache = cache
    for _ in range(2):  # pass 1 fills the cache, pass 2 reads it
        for batch, (loss, grads) in zip(batches, plain, strict=True):
            cached_loss, cached_grads = _loss_and_grads(model, batch)
            assert cached_loss == pytest.approx(loss, rel=1e-5, abs=1e-6)
            assert cached_grads.keys() == grads.keys() and grads
            for name, g in grads.items():
                torch.testing.assert_close(cached_grads[name], g, rtol=1e-4, atol=1e-6, msg=name)
    stats = cache.stats()
    assert stats["hits"] > 0 and stats["misses"] > 0 and stats["disk_mb"] > 0
    assert (tmp_path / "spill" / "frozen_layers.f32").is_file()
    # Frozen parameters got no gradient; only trainable ones appear.
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert not set(frozen) & set(plain[0][1])
    cache.close()
    assert not (tmp_path / "spill" / "frozen_layers.f32").exists()


def test_cache_is_bounded_and_drops_beyond_disk(tmp_path):
    cache = FrozenLayerCache(1, tmp_path, max_mb=2 * 4 * 8 / 2**20, max_disk_mb=4 * 8 / 2**20)  # 2 rows RAM, 1 disk
    rows = {f"k{i}": torch.full((1, 8), float(i)) for i in range(4)}
    for key, value in rows.items():
        cache.put(key, value)
    assert list(cache.memory) == ["k2", "k3"] and list(cache.disk) == ["k0"]  # k1 found the disk full: dropped
    assert "k1" not in cache and len(cache) == 3
    torch.testing.assert_close(cache.get("k0"), rows["k0"])  # read back from the memmap


def test_no_cache_where_everything_trains(tiny_backbone_dir):
    model = _model(tiny_backbone_dir)
    assert frozen_bottom_layers(model, TrainArgs(mode="full")) == 0
    assert frozen_bottom_layers(model, TrainArgs(mode="lora")) == 0  # adapters on every layer
    with pytest.raises(ValueError, match="leave none"):
        FrozenLayerCache(2).hidden(model.causal_lm.get_decoder(), torch.ones(1, 3, dtype=torch.long),
                                   torch.ones(1, 3, dtype=torch.long))
