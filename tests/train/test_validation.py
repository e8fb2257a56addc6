"""Validation inside the budget: the step-0 validation is computed once for runs that differ only in α / GCL, and
equals what each run computes on its own; the schedule fit reserves the validations still to come.

Run: PYTHONPATH=. python -m pytest tests/train/test_validation.py -q -p no:cacheprovider
"""

from __future__ import annotations

import json

import pytest
from train_toy import tiny_config

from notellm.train.config import TrainArgs
from notellm.train.loop import combine_validation, future_validations, train


def _step0(out) -> dict:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return next(r for r in rows if r["step"] == 0 and "val_loss" in r)


def test_step0_validation_is_shared_across_variants(tiny_backbone_dir, toy_data_dir, tmp_path, caplog):
    cache = tmp_path / "val0.json"
    common = ("train.max_steps=1", "train.eval_every=1", "train.val_max_pairs=8", "train.checkpoint_every=0")
    train(tiny_config(tiny_backbone_dir, toy_data_dir, tmp_path / "main", *common, f"train.val0_cache={cache}"))
    assert len(json.loads(cache.read_text())) == 1
    for variant in ("train.alpha=0", "train.gcl=false"):
        with caplog.at_level("INFO", logger="notellm.train.loop"):
            caplog.clear()
            train(tiny_config(tiny_backbone_dir, toy_data_dir, tmp_path / variant, *common, variant,
                              f"train.val0_cache={cache}"))
        assert any("reused" in r.message for r in caplog.records)
        train(tiny_config(tiny_backbone_dir, toy_data_dir, tmp_path / f"alone-{variant}", *common, variant))
        shared, alone = _step0(tmp_path / variant), _step0(tmp_path / f"alone-{variant}")
        assert shared.keys() == alone.keys()
        for key in alone:
            assert shared[key] == pytest.approx(alone[key], rel=1e-6)
    assert len(json.loads(cache.read_text())) == 1  # one entry served all three


def test_combine_validation_by_hand():
    parts = {"gcl": 2.0, "csft": 4.0}
    assert combine_validation(parts, TrainArgs(alpha=1.0)) == {"val_loss": 3.0, "val_csft": 4.0, "val_gcl": 2.0}
    assert combine_validation(parts, TrainArgs(alpha=0.0)) == {"val_loss": 2.0, "val_gcl": 2.0}
    assert combine_validation(parts, TrainArgs(gcl=False)) == {"val_loss": 4.0, "val_csft": 4.0}


def test_future_validations_by_hand():
    assert future_validations(3, 10, 0) == 0
    assert future_validations(3, 10, 4) == 3  # at 4, 8 and the final 10
    assert future_validations(8, 10, 4) == 1  # the final one only
    assert future_validations(3, 8, 4) == 2  # 4, and 8 which is also the final one
