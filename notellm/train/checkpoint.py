"""Resumable training checkpoints: atomic directories `checkpoints/step-XXXXXXXX`, newest K kept.

Choices:
- `accelerate.Accelerator.save_state` / `load_state` do the writing: trainable weights, optimizer, every process's
  RNG states (python, numpy, torch, cuda) and registered objects (the LR scheduler and `RunState`: step and data
  position). Under DeepSpeed / FSDP accelerate writes the sharded engine states its own way.
- Only trainable parameters are stored (a pre-save hook filters the state dict; frozen weights are rebuilt from the
  backbone on resume), so LoRA / top-N checkpoints stay small. Resuming checks that the stored names are exactly the
  trainable ones, so a checkpoint of another mode is refused with a clear error.
- Atomic and power-safe: state goes to `.tmp-step-…`, every file in it and the folder are fsynced, then it is
  renamed into place and the parent fsynced; only then are older checkpoints pruned. A kill mid-write leaves only a
  temp directory, which the next save cleans up.
- Nothing is unpickled on resume: the LR schedule and `RunState` are saved as JSON (`notellm_state.json`) by a
  save hook instead of accelerate's `register_for_checkpointing` (whose loader uses `torch.load(weights_only=False)`);
  accelerate loads weights, optimizer and RNG states with `weights_only=True`.
- A resumed run must be the same run: the JSON records max_steps, epochs, lr, warmup_ratio, batch_pairs,
  grad_accum, seed and a fingerprint of the data files; any change is refused (the old schedule or sampler
  position would silently apply to the new settings) unless `train.reset_schedule=true`, which keeps the weights
  and optimizer, starts a fresh schedule at step 0 and moves the old checkpoints and metrics aside.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from notellm.atomicdir import fsync_path, fsync_tree

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
STATE_FILE = "notellm_state.json"
RESUME_KEYS = ("max_steps", "epochs", "lr", "warmup_ratio", "batch_pairs", "grad_accum", "seed", "group_by_length")
LEGACY_DEFAULTS = {"group_by_length": False}  # keys added later: what a checkpoint written before them meant
_STEP_DIR = re.compile(r"^step-(\d{8})$")
_WEIGHTS = "model.safetensors"


@dataclass
class RunState:
    """Where a run is: optimizer steps done, micro-batches consumed (the data position), seconds trained."""

    step: int = 0
    micro: int = 0
    seconds: float = 0.0

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.step, self.micro, self.seconds = int(state["step"]), int(state["micro"]), float(state["seconds"])


def checkpoint_dirs(out_dir: str | Path) -> list[Path]:
    """Complete checkpoint directories of a run, oldest first."""
    root = Path(out_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    dirs = checkpoint_dirs(out_dir)
    return dirs[-1] if dirs else None


def _uses_plain_weights(accelerator) -> bool:
    from accelerate.utils import DistributedType

    return accelerator.distributed_type not in (DistributedType.DEEPSPEED, DistributedType.FSDP)


def install_trainable_only_hooks(accelerator) -> None:
    """Make `save_state` keep only trainable parameters and `load_state` verify them (plain / DDP models)."""

    def trainable(model) -> set[str]:
        return {name for name, p in model.named_parameters() if p.requires_grad}

    def save_hook(models, weights, output_dir) -> None:
        for i, (model, state) in enumerate(zip(models, weights, strict=False)):
            keep = trainable(model)
            weights[i] = {k: v for k, v in state.items() if k in keep}

    def load_hook(models, input_dir) -> None:
        from safetensors import safe_open

        path = Path(input_dir) / _WEIGHTS
        if not path.is_file() or not models:
            return
        with safe_open(str(path), framework="pt") as handle:
            stored = set(handle.keys())
        expected = trainable(models[0])
        if stored != expected:
            missing, extra = sorted(expected - stored)[:5], sorted(stored - expected)[:5]
            raise RuntimeError(
                f"checkpoint {input_dir} does not match this run's trainable parameters (was it written with another "
                f"train.mode?). Missing: {missing}; unexpected: {extra}. Use a new out_dir or train.resume=false."
            )

    if _uses_plain_weights(accelerator):
        accelerator.register_save_state_pre_hook(save_hook)
        accelerator.register_load_state_pre_hook(load_hook)


class ResumeConfigError(ValueError):
    """A checkpoint was written by a run with other settings or data (or by an older, pickling notellm)."""


def data_fingerprint(data_dir: str | Path) -> str:
    """SHA-256 over the names and bytes of the data folder's files (what the sampler's positions index into)."""
    digest = hashlib.sha256()
    root = Path(data_dir)
    for path in sorted(p for p in root.iterdir() if p.is_file() and p.suffix in (".parquet", ".json", ".jsonl")):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def run_fingerprint(args) -> dict[str, Any]:
    """The settings a checkpoint's schedule and data position are only valid for (see the module docstring)."""
    return {**{key: getattr(args, key) for key in RESUME_KEYS}, "data": data_fingerprint(args.data_dir)}


@dataclass
class ResumeGuard:
    """What `track_state_as_json` saw on load: whether the stored schedule was dropped (`reset_schedule`)."""

    reset_from_step: int | None = None


def track_state_as_json(accelerator, scheduler, run: RunState, fingerprint: dict[str, Any],
                        reset_schedule: bool = False) -> ResumeGuard:
    """Save/load the LR scheduler and `RunState` as JSON in every checkpoint, checking the run's fingerprint."""
    guard = ResumeGuard()

    def save_hook(models, weights, output_dir) -> None:
        if accelerator.is_main_process:
            payload = {"format": 1, "run": run.state_dict(), "scheduler": scheduler.state_dict(),
                       "fingerprint": fingerprint}
            (Path(output_dir) / STATE_FILE).write_text(json.dumps(payload, indent=1), encoding="utf-8")

    def load_hook(models, input_dir) -> None:
        path = Path(input_dir) / STATE_FILE
        if not path.is_file():
            raise ResumeConfigError(
                f"{input_dir} has no {STATE_FILE} (an older notellm pickled this state, and pickles are never "
                "loaded): start a new out_dir, or train.resume=false")
        payload = json.loads(path.read_text(encoding="utf-8"))
        stored = payload.get("fingerprint", {})
        changed = {k: (stored.get(k, LEGACY_DEFAULTS.get(k)), v) for k, v in fingerprint.items()
                   if stored.get(k, LEGACY_DEFAULTS.get(k)) != v}
        if changed and not reset_schedule:
            shown = "; ".join(f"{k}: {old!r} -> {new!r}" if k != "data" else "data: the files changed"
                              for k, (old, new) in changed.items())
            raise ResumeConfigError(
                f"{input_dir} was written by a run with other settings ({shown}). Resuming would keep the old "
                "schedule and data position. Pass train.reset_schedule=true (--reset-schedule) to continue from "
                "its weights with a fresh schedule, train.resume=false to start over, or a new out_dir.")
        if reset_schedule:
            guard.reset_from_step = int(payload["run"]["step"])
            logger.warning("reset_schedule: continuing from the weights of %s with a fresh schedule at step 0",
                           input_dir)
            return
        scheduler.load_state_dict(payload["scheduler"])
        run.load_state_dict(payload["run"])

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)
    return guard


def save_config_keeping_previous(config: Any, path: Path, save_config: Callable[[Any, Path], None]) -> None:
    """Write the run's config.yaml; a different earlier one is kept as config.previous-<UTC time>.yaml, not lost."""
    tmp = path.with_name(path.name + ".tmp")
    save_config(config, tmp)
    if path.is_file() and path.read_bytes() != tmp.read_bytes():
        kept = path.with_name(f"config.previous-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.yaml")
        os.replace(path, kept)
        logger.warning("%s changed: the previous one is kept as %s", path, kept.name)
    os.replace(tmp, path)


def save_checkpoint(accelerator, out_dir: str | Path, step: int, keep: int) -> Path:
    """Write the accelerator state for `step` atomically (fsync, rename, fsync) and prune to the newest `keep`."""
    root = Path(out_dir) / CHECKPOINTS
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "notellm_checkpoint.json").write_text(json.dumps({"step": step}), encoding="utf-8")
        fsync_tree(tmp)  # durable contents before the rename publishes them
        if final.exists():
            os.rename(final, root / f".old-step-{step:08d}")
        os.rename(tmp, final)
        fsync_path(root)
        shutil.rmtree(root / f".old-step-{step:08d}", ignore_errors=True)
        # prune only once the new checkpoint is durable; a pruned folder is first renamed out of the step-* names,
        # so a kill mid-delete never leaves a half-deleted checkpoint that a resume would pick
        for old in checkpoint_dirs(out_dir)[:-keep]:
            os.rename(old, root / f".old-{old.name}")
        fsync_path(root)
        for stale in [*root.glob(".tmp-step-*"), *root.glob(".old-step-*")]:
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, path: str | Path, guard: ResumeGuard | None = None) -> None:
    """Restore everything `save_checkpoint` wrote (frozen weights are expected to be loaded already).

    If `guard` says the schedule was reset, the old checkpoints and metrics are moved to
    `checkpoints/before-reset-<step>/`, so the fresh schedule's checkpoints are the newest again.
    """
    kwargs = {"strict": False} if _uses_plain_weights(accelerator) else {}
    accelerator.load_state(str(path), **kwargs)
    if guard is not None and guard.reset_from_step is not None and accelerator.is_main_process:
        run_dir = Path(path).parent.parent
        archive = run_dir / CHECKPOINTS / f"before-reset-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
        archive.mkdir(parents=True)
        for old in checkpoint_dirs(run_dir):
            os.rename(old, archive / old.name)
        if (run_dir / "metrics.jsonl").is_file():
            os.rename(run_dir / "metrics.jsonl", archive / "metrics.jsonl")
    accelerator.wait_for_everyone()
