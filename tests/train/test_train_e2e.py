"""End-to-end `train` on the tiny backbone: files, falling loss on planted topics, kill-and-resume equality.

Run: PYTHONPATH=. python -m pytest tests/train/test_train_e2e.py -q -p no:cacheprovider
"""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file
from train_toy import tiny_config

from notellm.train.loop import train


def _weights(model_dir) -> dict[str, torch.Tensor]:
    tensors = load_file(str(model_dir / "backbone" / "model.safetensors"))
    tensors.update({f"head.{k}": v for k, v in load_file(str(model_dir / "notellm_head.safetensors")).items()})
    return tensors


def test_train_writes_files_and_loss_falls(tiny_backbone_dir, toy_data_dir, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config(
        tiny_backbone_dir,
        toy_data_dir,
        out,
        "train.max_steps=10",
        "train.eval_every=5",
        "train.val_max_pairs=8",
        "train.tensorboard=true",
    )
    result = train(cfg)
    assert result.completed and result.steps == 10 and result.stop_reason == "done"
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "train_result.json",
        "model/notellm.json",
        "model/notellm_head.safetensors",
        "model/backbone/model.safetensors",
        "model/train_config.yaml",
    ):
        assert (out / name).is_file(), name
    assert list((out / "tensorboard").iterdir())
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000010"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert set(rows[0]) == {"step", "val_loss", "val_gcl", "val_csft"} and rows[0]["step"] == 0  # baseline
    rows = rows[1:]
    assert [r["step"] for r in rows] == list(range(1, 11))
    assert {"loss", "gcl", "csft", "tau", "lr", "pairs_per_s", "seconds"} <= set(rows[0])
    assert {"val_loss", "val_gcl", "val_csft"} <= set(rows[4]) and "val_loss" not in rows[3]
    first = sum(r["gcl"] for r in rows[:3]) / 3
    last = sum(r["gcl"] for r in rows[-3:]) / 3
    assert last < 0.8 * first, (first, last)  # topics are separable: in-batch InfoNCE must fall
    assert rows[0]["tau"] != rows[-1]["tau"]  # τ is learned
    # the saved model loads and embeds
    from notellm.model.notellm import NoteLLM

    model = NoteLLM.from_pretrained(result.model_dir)
    assert model.tau.item() == result.tau


def test_killed_and_resumed_run_matches_uninterrupted(tiny_backbone_dir, toy_data_dir, tmp_path):
    common = ("train.max_steps=4", "train.checkpoint_every=2", "train.grad_accum=2", "train.warmup_ratio=0.2")
    whole = train(tiny_config(tiny_backbone_dir, toy_data_dir, tmp_path / "whole", *common))
    # "kill" after step 2 (clean stop via stop_at_step; the schedule stays the 4-step one), then the same command
    first = train(tiny_config(tiny_backbone_dir, toy_data_dir, tmp_path / "cut", *common, "train.stop_at_step=2"))
    assert not first.completed and first.steps == 2 and first.stop_reason == "stop_at_step"
    second = train(tiny_config(tiny_backbone_dir, toy_data_dir, tmp_path / "cut", *common))
    assert second.completed and second.steps == 4 and second.resumed_from.name == "step-00000002"
    a, b = _weights(whole.model_dir), _weights(second.model_dir)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)  # bitwise on CPU
    assert second.final_loss == whole.final_loss
    rows = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 5))
    # re-running a finished run does no more steps
    again = train(tiny_config(tiny_backbone_dir, toy_data_dir, tmp_path / "cut", *common))
    assert again.steps == 4 and again.completed


class FakeClock:
    """Stands in for the `time` module inside notellm.train.loop: seconds pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_budgeted_run_fits_its_schedule_and_finishes(tiny_backbone_dir, toy_data_dir, tmp_path, monkeypatch):
    """A time budget far below the planned epochs: the schedule is fitted (and re-fitted) so the run still ends
    with a full warmup and decay ("done", LR 0) inside the budget, instead of stopping mid-schedule."""
    import notellm.train.loop as loop

    clock = FakeClock()  # every micro-batch costs exactly 1 s: the outcome does not depend on this machine's speed
    real_step = loop.training_step
    monkeypatch.setattr(loop, "time", clock)
    monkeypatch.setattr(loop, "training_step", lambda *a, **k: clock.advance(1.0) or real_step(*a, **k))
    out = tmp_path / "budget"
    cfg = tiny_config(tiny_backbone_dir, toy_data_dir, out, "train.max_steps=0", "train.epochs=400",
                      "train.max_seconds=8", "train.refit_every=5", "train.eval_every=100000",
                      "train.checkpoint_every=0", "train.log_every=1")
    result = train(cfg)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert result.completed and result.stop_reason == "done", result
    assert result.steps == result.total_steps == rows[-1]["step"] < 400  # 400 epochs planned ≥ 400 steps
    assert result.seconds < 8 * 1.5
    lrs = [r["lr"] for r in rows]
    assert max(lrs) > 0 and lrs[-1] < 0.05 * max(lrs)  # warmed up, then decayed to (almost) zero
