"""Resumable training checkpoints: atomic directories `checkpoints/step-XXXXXXXX`, newest K kept.

Choices:
- `accelerate.Accelerator.save_state` / `load_state` do the writing: trainable weights, optimizer, every process's
  RNG states (python, numpy, torch, cuda) and registered objects (the LR scheduler and `RunState`: step and data
  position). Under DeepSpeed / FSDP accelerate writes the sharded engine states its own way.
- Only trainable parameters are stored (a pre-save hook filters the state dict; frozen weights are rebuilt from the
  backbone on resume), so LoRA / top-N checkpoints stay small. Resuming checks that the stored names are exactly the
  trainable ones, so a checkpoint of another mode is refused with a clear error.
- Atomic: state goes to `.tmp-step-…` and is renamed into place once every process has written its part; a kill
  mid-write leaves only a temp directory, which the next save cleans up.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

CHECKPOINTS = "checkpoints"
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


def save_checkpoint(accelerator, out_dir: str | Path, step: int, keep: int) -> Path:
    """Write the accelerator state for `step` atomically and prune to the newest `keep` checkpoints."""
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
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for old in checkpoint_dirs(out_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in root.glob(".tmp-step-*"):
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, path: str | Path) -> None:
    """Restore everything `save_checkpoint` wrote (frozen weights are expected to be loaded already)."""
    kwargs = {"strict": False} if _uses_plain_weights(accelerator) else {}
    accelerator.load_state(str(path), **kwargs)
