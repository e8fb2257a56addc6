"""Issue #13 cases 9 and 10: resume never unpickles, refuses a changed run unless told, keeps old configs; saves are
fsynced before they are renamed, and old checkpoints pruned only after.

Run: PYTHONPATH=. python -m pytest tests/train/test_resume_safety.py -q -p no:cacheprovider
"""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from train_toy import tiny_config

from notellm.train.loop import train

COMMON = ("train.max_steps=4", "train.checkpoint_every=2", "train.warmup_ratio=0.25", "train.eval_every=0",
          "train.tensorboard=false")


@pytest.fixture
def cut_run(tiny_backbone_dir, toy_data_dir, tmp_path):
    out = tmp_path / "cut"
    first = train(tiny_config(tiny_backbone_dir, toy_data_dir, out, *COMMON, "train.stop_at_step=2"))
    assert first.steps == 2 and not first.completed
    return out


def test_checkpoints_hold_no_pickles_and_resume_loads_nothing_unsafely(cut_run, tiny_backbone_dir, toy_data_dir,
                                                                       monkeypatch):
    step = cut_run / "checkpoints" / "step-00000002"
    assert not list(step.glob("custom_checkpoint_*.pkl"))  # scheduler + run state are JSON
    unsafe: list[str] = []
    real_load = torch.load

    def checked_load(f, *args, **kwargs):
        if kwargs.get("weights_only") is False:
            unsafe.append(str(f))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", checked_load)
    result = train(tiny_config(tiny_backbone_dir, toy_data_dir, cut_run, *COMMON))
    assert result.completed and result.steps == 4 and result.resumed_from.name == "step-00000002"
    assert unsafe == []


def test_a_changed_run_is_refused_unless_the_schedule_is_reset(cut_run, tiny_backbone_dir, toy_data_dir):
    before = (cut_run / "config.yaml").read_text()
    for change in ("train.max_steps=6", "train.lr=1e-3", "train.warmup_ratio=0.5", "train.batch_pairs=2",
                   "train.seed=7", "train.group_by_length=true"):
        key = change.split("=")[0].split(".")[1]
        with pytest.raises(ValueError, match=f"(?s){key}.*reset_schedule"):
            train(tiny_config(tiny_backbone_dir, toy_data_dir, cut_run, *COMMON, change))
        assert (cut_run / "config.yaml").read_text() == before  # not overwritten by the refused run
    result = train(tiny_config(tiny_backbone_dir, toy_data_dir, cut_run, *COMMON, "train.lr=1e-3",
                               "train.reset_schedule=true"))
    assert result.completed and result.steps == 4
    kept = list(cut_run.glob("config.previous-*.yaml"))
    assert len(kept) == 1 and kept[0].read_text() == before  # the old config is kept beside the new one
    archived = list((cut_run / "checkpoints").glob("before-reset-*/step-00000002"))
    assert len(archived) == 1  # the old schedule's checkpoint is moved aside, not mixed with the new ones


def test_a_length_grouped_run_resumes_on_its_own_batches(tiny_backbone_dir, toy_data_dir, tmp_path):
    grouped = (*COMMON, "train.group_by_length=true")
    whole = train(tiny_config(tiny_backbone_dir, toy_data_dir, tmp_path / "whole", *grouped))
    cut = train(tiny_config(tiny_backbone_dir, toy_data_dir, tmp_path / "cut", *grouped, "train.stop_at_step=2"))
    resumed = train(tiny_config(tiny_backbone_dir, toy_data_dir, tmp_path / "cut", *grouped))
    assert cut.steps == 2 and resumed.completed and resumed.steps == whole.steps == 4
    assert resumed.final_loss == pytest.approx(whole.final_loss, rel=1e-5)  # the same batches after the resume


def test_changed_data_is_refused(cut_run, tiny_backbone_dir, toy_data_dir, tmp_path):
    other = tmp_path / "other-data"
    shutil.copytree(toy_data_dir, other)
    pairs = other / "pairs.parquet"
    pairs.write_bytes(pairs.read_bytes())  # same bytes: same fingerprint
    train(tiny_config(tiny_backbone_dir, other, tmp_path / "cut2", *COMMON, "train.stop_at_step=2"))
    import pandas as pd

    frame = pd.read_parquet(pairs)
    frame.iloc[: len(frame) // 2].to_parquet(pairs, index=False)
    with pytest.raises(ValueError, match="(?s)data.*reset_schedule"):
        train(tiny_config(tiny_backbone_dir, other, tmp_path / "cut2", *COMMON))


def test_checkpoints_are_fsynced_before_rename_and_pruned_after(cut_run, tiny_backbone_dir, toy_data_dir,
                                                                 monkeypatch):
    events: list[tuple[str, str]] = []
    real_fsync, real_rename, real_rmtree = os.fsync, os.rename, shutil.rmtree

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def rename(src, dst, *a, **k):
        events.append(("rename", f"{src}->{dst}"))
        return real_rename(src, dst, *a, **k)

    def rmtree(path, *a, **k):
        events.append(("rmtree", str(path)))
        return real_rmtree(path, *a, **k)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    train(tiny_config(tiny_backbone_dir, toy_data_dir, cut_run, *COMMON, "train.keep_checkpoints=1"))
    renames = [i for i, (kind, what) in enumerate(events)
               if kind == "rename" and what.split("->")[1].endswith("step-00000004")]
    assert renames, events
    at = renames[0]
    synced = {what for kind, what in events[:at] if kind == "fsync"}
    assert any(p.endswith("model.safetensors") and ".tmp-step-00000004" in p for p in synced), synced
    prunes = [i for i, (kind, what) in enumerate(events) if kind == "rmtree" and what.endswith("step-00000002")]
    assert prunes and prunes[0] > at  # the old checkpoint goes only once the new one is in place
