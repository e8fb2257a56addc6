"""Typed training configuration: the `train:` section of a config YAML, and the root `TrainConfig` (model + train).

Defaults follow the official NoteLLM script (docs/method.md §6: AdamW, lr 3e-6, weight decay 1e-3, 10% warmup then
linear decay, 1 epoch, α = 0.01, r = 0.4; bf16 where the hardware has it) except the batch, which is per process
here (the paper's 8 pairs × 8 GPUs = 64 pairs; the code's 16 × 8 = 128).
The shipped YAMLs raise lr for the small SmolLM2 backbone.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from notellm.config import load_config, read_config_file
from notellm.model.notellm import NoteLLMConfig

MODES = ("full", "lora", "top_n")
PRECISIONS = ("auto", "bf16", "fp32")
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class TrainArgs:
    """How to train (the `train:` section). Every field can be overridden as `train.<field>=value`."""

    data_dir: str = ""
    """Data folder with notes.parquet and pairs.parquet (written by `notellm import` + `notellm mine`)."""
    out_dir: str = "runs/notellm"
    """Run folder: checkpoints/, model/, metrics.jsonl, tensorboard/, config.yaml."""
    mode: str = "full"
    """What trains: `full` (everything), `lora` (LoRA adapters + proj + τ), `top_n` (top N layers, norm, proj, τ)."""
    top_n_layers: int = 4
    """Mode `top_n`: how many of the last transformer layers train."""
    lora_r: int = 16
    """Mode `lora`: adapter rank."""
    lora_alpha: int = 32
    """Mode `lora`: adapter scaling numerator (scale = lora_alpha / lora_r)."""
    lora_dropout: float = 0.0
    """Mode `lora`: dropout on the adapter input (0 keeps runs bit-reproducible across resume)."""
    lora_layers: int = 0
    """Mode `lora`: put adapters only on the last N decoder layers (0 = every layer); the layers below are then
    frozen and, with `cache_frozen_layers`, computed once per distinct input."""
    lora_target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS))
    """Mode `lora`: module names that get adapters (attention + MLP projections of Llama/Qwen2/Gemma3)."""
    cache_frozen_layers: bool = True
    """Modes `top_n` and `lora` with `lora_layers`: compute the frozen bottom layers once per distinct input and
    keep their outputs (model/frozen_cache.py), so a step costs only the trainable layers. Exact (tested)."""
    frozen_cache_mb: float = 1024
    """Memory for the frozen-layer cache; older rows spill to a memory-mapped file under out_dir/frozen_cache."""
    frozen_cache_disk_mb: float = 8192
    """Disk for spilled rows (deleted when the run ends); beyond it evicted rows are recomputed when they recur."""
    fused_adamw: bool = True
    """Use torch's fused AdamW kernel (CPU and CUDA) when every trainable tensor is a float on one of them."""
    gcl: bool = True
    """Train the contrastive GCL term; false = CSFT only (embedding is zero-shot after SFT; paper Table 4)."""
    alpha: float = 0.01
    """CSFT weight α in L = (L_gcl + α·L_csft)/(1 + α); 0 = GCL only (w/o CSFT)."""
    hashtag_ratio: float = 0.4
    """Share r of notes per batch side that get the hashtag prompt (paper §4.2; Table 5)."""
    batch_pairs: int = 8
    """Related pairs per process per micro-batch (2× notes). In-batch negatives come from all processes."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (each micro-batch has its own in-batch negatives)."""
    grad_cache_pairs: int = 0
    """Gradient caching: embed in sub-batches of this many pairs so batch_pairs can exceed memory; 0 = off."""
    lr: float = 3e-6
    """Peak learning rate (AdamW)."""
    tau_lr: float = 0.0
    """Learning rate of τ; 0 = same as lr."""
    weight_decay: float = 1e-3
    """AdamW weight decay (not applied to norms, biases, τ)."""
    warmup_ratio: float = 0.1
    """Share of the optimizer steps spent in linear warmup; linear decay to 0 after."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm; 0 = no clipping."""
    epochs: int = 1
    """Passes over the training pairs (ignored when max_steps > 0)."""
    max_steps: int = 0
    """Optimizer steps for the whole run (fixes the LR schedule); 0 = derived from epochs."""
    max_seconds: float = 0.0
    """Time budget: stop cleanly (checkpoint + final model) after this many seconds of this invocation; 0 = none."""
    fit_schedule_to_budget: bool = True
    """With max_seconds and no max_steps: after `calibration_steps` steps, shorten the LR schedule to the steps the
    budget affords, so warmup and decay complete inside the budget (otherwise a budgeted run stops mid-warmup)."""
    calibration_steps: int = 3
    """Steps timed before fitting the schedule to the budget (the first step, which pays one-time costs, is
    excluded from the per-step time)."""
    refit_every: int = 10
    """After the first fit, fit again every this many steps at the pace of the steps since the last fit, so a
    machine that gets busier or quieter does not end the run early or cut the decay; 0 = fit once."""
    stop_at_step: int = 0
    """Stop cleanly at this optimizer step without changing the schedule (time-slicing, tests); 0 = run to the end."""
    gradient_checkpointing: bool = False
    """Recompute decoder activations in backward (less memory, ~30% more compute); for 7B backbones."""
    precision: str = "auto"
    """`auto` (bf16 where the hardware computes it natively, else fp32; notellm/precision.py), `bf16` autocast
    (weights stay fp32) or `fp32`. An explicit choice wins, with a warning when it is the slower one here."""
    seed: int = 0
    """Seed of the sampler, the prompt-type draw and all RNGs."""
    no_duplicates: bool = True
    """Keep any note from appearing twice in one global batch (it would be a false negative)."""
    group_by_length: bool = False
    """Batch pairs of similar token length (within windows of 50 shuffled global batches, batch order shuffled
    again): less padding, so fewer wasted FLOPs, but the in-batch negatives then share a length bucket (length can
    no longer tell a negative apart). Off by default; see docs/method.md for the padding it saves."""
    checkpoint_every: int = 0
    """Checkpoint every N optimizer steps (plus at the end / on stop); 0 = only at the end / on stop."""
    keep_checkpoints: int = 2
    """How many of the newest checkpoints to keep."""
    resume: bool = True
    """Resume from the newest checkpoint in out_dir/checkpoints when one exists."""
    reset_schedule: bool = False
    """Resume a run whose settings or data changed: its weights and optimizer, a fresh schedule from step 0."""
    eval_every: int = 0
    """Validation loss on the val pairs every N optimizer steps (and at the end); 0 = never."""
    val_max_pairs: int = 64
    """Use at most this many val pairs (the first ones, a fixed sample) for the validation loss. Validation time
    counts inside `max_seconds` and is reserved for when the schedule is fitted to the budget."""
    val0_cache: str = ""
    """A JSON file holding the step-0 validation of the untrained model, shared by runs that differ only in α /
    GCL (the quickstart's variants): computed once, reused by the others; empty = always compute."""
    log_every: int = 1
    """Write a metrics.jsonl row every N optimizer steps."""
    tensorboard: bool = True
    """Also log to TensorBoard under out_dir/tensorboard."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"train.mode must be one of {MODES}, got {self.mode!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"train.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 0.0 <= self.hashtag_ratio <= 1.0:
            raise ValueError(f"train.hashtag_ratio must be in [0, 1], got {self.hashtag_ratio}")
        if self.alpha < 0:
            raise ValueError(f"train.alpha must be ≥ 0, got {self.alpha}")
        if not self.gcl and self.alpha == 0:
            raise ValueError("train.gcl=false and train.alpha=0 leave nothing to train")
        for name in ("batch_pairs", "grad_accum", "epochs", "keep_checkpoints", "log_every", "top_n_layers", "lora_r"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.calibration_steps < 2:
            raise ValueError(f"train.calibration_steps must be ≥ 2, got {self.calibration_steps}")
        if self.refit_every < 0:
            raise ValueError(f"train.refit_every must be ≥ 0, got {self.refit_every}")
        if self.lora_layers < 0 or self.frozen_cache_mb < 0 or self.frozen_cache_disk_mb < 0:
            raise ValueError("train.lora_layers, frozen_cache_mb and frozen_cache_disk_mb must be ≥ 0")
        for name in ("grad_cache_pairs", "max_steps", "stop_at_step", "checkpoint_every", "eval_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be ≥ 0, got {getattr(self, name)}")
        if self.grad_cache_pairs and self.batch_pairs % self.grad_cache_pairs:
            raise ValueError(
                f"train.batch_pairs ({self.batch_pairs}) must be a multiple of train.grad_cache_pairs "
                f"({self.grad_cache_pairs})"
            )
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.lr <= 0 or self.tau_lr < 0 or self.weight_decay < 0 or self.max_grad_norm < 0 or self.max_seconds < 0:
            raise ValueError("train.lr must be > 0 and tau_lr, weight_decay, max_grad_norm, max_seconds ≥ 0")
        if self.val_max_pairs < 0:
            raise ValueError(f"train.val_max_pairs must be ≥ 0, got {self.val_max_pairs}")


@dataclass
class TrainConfig:
    """Everything `notellm train` needs: the model to build and how to train it."""

    model: NoteLLMConfig = field(default_factory=NoteLLMConfig)
    """The NoteLLM model: backbone, emb_dim, tau_init, prompt."""
    train: TrainArgs = field(default_factory=TrainArgs)
    """How to train."""


SECTIONS = ("model", "train")


def load_train_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Defaults, then the `model:`/`train:` sections of the YAML at `path`, then `section.key=value` overrides.

    Other sections a shared config file may carry (evaluation, serving, ...) are ignored here.
    """
    if path is None:
        return load_config(TrainConfig, None, overrides)
    data = read_config_file(path)
    ours = {key: value for key, value in data.items() if key in SECTIONS}
    with tempfile.TemporaryDirectory() as tmp:
        filtered = Path(tmp) / Path(path).with_suffix(".yaml").name
        filtered.write_text(yaml.safe_dump(ours, allow_unicode=True), encoding="utf-8")
        try:
            return load_config(TrainConfig, filtered, overrides)
        except Exception as exc:
            raise type(exc)(f"{path}: {exc}") from exc
