"""The NoteLLM training recipe: setup → train → save (paper §4–5; docs/method.md §4, §6).

    notellm train --config notellm/configs/smollm2_135m.yaml --data /tmp/se-data --out runs/se
    accelerate launch --config_file notellm/configs/accelerate/ddp.yaml -m notellm.train --config ...   # many GPUs
    torchrun --nproc_per_node 2 -m notellm.train --config notellm/configs/tiny.yaml ...                    # CPU, gloo

Choices:
- `accelerate.Accelerator` carries device placement, DDP / FSDP / DeepSpeed (from `accelerate launch` configs),
  bf16 autocast (CPU and GPU; weights stay fp32) and gradient accumulation; the loop itself is explicit.
- One optimizer step = `grad_accum` micro-batches of `batch_pairs` pairs per process; each micro-batch's GCL
  negatives are the 2 × batch_pairs × world notes of that micro-batch (gathered with gradients across ranks).
- AdamW (no decay on norms / biases / τ), linear warmup then linear decay (`get_linear_schedule_with_warmup`);
  the schedule length is fixed by epochs or max_steps, never by when a run is stopped.
- The data position is the micro-batch counter; the sampler and the collator are pure functions of
  (seed, position, rank), so a resumed run sees exactly the batches the uninterrupted run would.
- Re-running the same command resumes from the newest checkpoint; a finished run only re-saves what is missing.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from notellm.config import save_config
from notellm.train.checkpoint import (
    RunState,
    install_trainable_only_hooks,
    latest_checkpoint,
    load_checkpoint,
    run_fingerprint,
    save_checkpoint,
    save_config_keeping_previous,
    track_state_as_json,
)
from notellm.train.config import TrainArgs, TrainConfig
from notellm.train.data import PairBatchSampler, PairData, load_pair_data
from notellm.train.losses import notellm_loss
from notellm.train.modes import apply_mode, count_parameters
from notellm.train.step import training_step

logger = logging.getLogger(__name__)

MODEL_DIR = "model"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.yaml"
RESULT_FILE = "train_result.json"


@dataclass
class TrainResult:
    """What a `train` call produced."""

    out_dir: Path
    model_dir: Path  # NoteLLM.save_pretrained folder (LoRA merged)
    metrics_path: Path  # metrics.jsonl
    steps: int  # optimizer steps done so far (over all invocations)
    total_steps: int  # steps of the full schedule
    completed: bool  # False when stopped by max_seconds / stop_at_step (re-run the same command to continue)
    stop_reason: str  # "done" | "max_seconds" | "stop_at_step"
    first_loss: float | None  # training loss of the run's first logged step
    final_loss: float | None  # training loss of the last logged step
    tau: float  # τ at the end (scale e^τ)
    seconds: float  # training seconds over all invocations
    resumed_from: Path | None
    trainable_params: int
    total_params: int


@dataclass
class SchedulePlan:
    """LR multiplier: linear warmup over ⌈warmup_ratio·total⌉ steps, then linear decay to 0 at `total`.

    The same curve as transformers' `get_linear_schedule_with_warmup`, but as a callable object, so `total` can be
    shortened once to fit a time budget and LambdaLR's state_dict saves and restores it (it keeps the `__dict__` of
    callable objects), which makes a resumed run follow the fitted schedule.
    """

    total: int
    warmup_ratio: float

    def warmup(self) -> int:
        return math.ceil(self.warmup_ratio * self.total)

    def __call__(self, step: int) -> float:
        warm = self.warmup()
        if step < warm:
            return step / max(1, warm)
        return max(0.0, (self.total - step) / max(1, self.total - warm))


def fitted_total_steps(step: int, seconds_per_step: float, remaining_seconds: float, total: int) -> int:
    """Steps the schedule should span so it ends inside the budget: `step` done plus what the remaining time affords
    at `seconds_per_step`, keeping 5% slack for evaluation and checkpoints. Never longer than `total` (the planned
    schedule), never shorter than `step + 1`."""
    affordable = int(0.95 * max(0.0, remaining_seconds) / max(seconds_per_step, 1e-9))
    return max(step + 1, min(total, step + affordable))


def refit_due(step: int, calibration_steps: int, refit_every: int) -> bool:
    """Whether the schedule is fitted to the budget after `step`: at `calibration_steps`, then every `refit_every`."""
    if step == calibration_steps:
        return True
    return refit_every > 0 and step > calibration_steps and (step - calibration_steps) % refit_every == 0


def _accelerator(args: TrainArgs):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state()  # each train() call is its own run (tests call it repeatedly in one process)
    GradientState._reset_state()
    return Accelerator(
        mixed_precision="bf16" if args.precision == "bf16" else "no",
        gradient_accumulation_steps=args.grad_accum,
        step_scheduler_with_optimizer=False,
        cpu=not torch.cuda.is_available(),  # accelerate only sets up gloo multi-process CPU runs when told "cpu"
    )


def _optimizer(model, args: TrainArgs) -> torch.optim.Optimizer:
    decay, no_decay, tau = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name == "tau":
            tau.append(p)
        elif p.ndim < 2:
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
        {"params": tau, "weight_decay": 0.0, "lr": args.tau_lr or args.lr},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=args.lr, betas=(0.9, 0.999), eps=1e-8)


class MetricsLog:
    """metrics.jsonl (+ TensorBoard) on the main process; rows past a resumed step are dropped from the file."""

    def __init__(self, out_dir: Path, enabled: bool, tensorboard: bool, resume_step: int) -> None:
        self.path = out_dir / METRICS_FILE
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        if self.path.exists():  # keep history up to the checkpoint we resume from
            keep = [
                line
                for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= resume_step
            ]
            self.path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=resume_step + 1)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(
                        f"train/{key}" if not key.startswith("val_") else f"val/{key[4:]}", value, row["step"]
                    )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _batch_notes(data: PairData, indices: list[int]):
    return [(data.notes[data.pairs[i][0]], data.notes[data.pairs[i][1]]) for i in indices]


def validate(model, raw, collator, data: PairData, args: TrainArgs, accelerator) -> dict[str, float]:
    """Mean GCL / CSFT / total loss on (at most `val_max_pairs`) val pairs, in file order, same negatives rule."""
    pairs = data.pairs[: args.val_max_pairs] if args.val_max_pairs else data.pairs
    sampler = PairBatchSampler(
        pairs,
        args.batch_pairs,
        accelerator.num_processes,
        seed=args.seed,
        no_duplicates=args.no_duplicates,
        shuffle=False,
    )
    sums: dict[str, float] = {}
    n = sampler.batches_per_epoch(0)
    view = PairData(notes=data.notes, pairs=pairs)
    was_training = model.training
    model.eval()
    need_generation = args.alpha > 0 or not args.gcl
    with torch.no_grad():
        for micro in range(n):
            indices = sampler.local_indices(micro, accelerator.process_index)
            batch = collator.collate(_batch_notes(view, indices), 10**9 + micro).to(accelerator.device)
            out = model(batch, need_generation_loss=need_generation)
            lo = notellm_loss(
                out.embeddings if args.gcl else None,
                raw.logit_scale if args.gcl else None,
                out.generation_loss,
                alpha=args.alpha,
                use_gcl=args.gcl,
            )
            for key, value in lo.log_dict().items():
                sums[key] = sums.get(key, 0.0) + value
    model.train(was_training)
    means = torch.tensor([sums[k] / n for k in sorted(sums)], device=accelerator.device)
    means = accelerator.reduce(means, reduction="mean")
    return {f"val_{k}": float(v) for k, v in zip(sorted(sums), means.tolist(), strict=True)}


def train(cfg: TrainConfig) -> TrainResult:
    """Train NoteLLM as `cfg` says; resumable, multi-process under accelerate/torchrun. See the module docstring."""
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from notellm.model.collate import PairCollator
    from notellm.model.notellm import NoteLLM

    args = cfg.train
    if not args.data_dir:
        raise ValueError("train.data_dir is empty: pass --data DIR (a folder with notes.parquet and pairs.parquet)")
    out_dir = Path(args.out_dir)
    started = time.perf_counter()
    accelerator = _accelerator(args)
    main = accelerator.is_main_process
    set_seed(args.seed)
    if args.grad_cache_pairs and accelerator.distributed_type.value == "DEEPSPEED":
        raise ValueError(
            "train.grad_cache_pairs is not supported under DeepSpeed (its engine owns backward); "
            "use plain batches (grad_cache_pairs=0) or FSDP"
        )

    # --- setup -------------------------------------------------------------------------------------------------
    train_data = load_pair_data(args.data_dir, "train")
    val_data = load_pair_data(args.data_dir, "val") if args.eval_every else None
    if val_data is not None and not val_data.pairs:
        logger.warning("%s has no val pairs: validation is skipped", args.data_dir)
        val_data = None
    sampler = PairBatchSampler(
        train_data.pairs, args.batch_pairs, accelerator.num_processes, seed=args.seed, no_duplicates=args.no_duplicates
    )
    if args.max_steps:
        total_steps = args.max_steps
    else:
        micro_total = sum(sampler.batches_per_epoch(e) for e in range(args.epochs))
        total_steps = micro_total // args.grad_accum
        if total_steps == 0:
            raise ValueError(
                f"{len(train_data.pairs)} train pairs give {micro_total} micro-batches, fewer than "
                f"train.grad_accum={args.grad_accum}: lower batch_pairs / grad_accum or set max_steps"
            )

    raw = NoteLLM.from_backbone(cfg.model, dtype=torch.float32)
    apply_mode(raw, args)
    if args.gradient_checkpointing:
        raw.causal_lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    trainable, total = count_parameters(raw)
    collator = PairCollator(raw.prompt_builder, hashtag_ratio=args.hashtag_ratio, seed=args.seed)
    optimizer = _optimizer(raw, args)
    model, optimizer = accelerator.prepare(raw, optimizer)
    raw = accelerator.unwrap_model(model)
    plan = SchedulePlan(total=total_steps, warmup_ratio=args.warmup_ratio)
    planned_total = total_steps  # a budget fit may shorten the schedule, and a later fit lengthen it back to this
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, plan)
    state = RunState()
    guard = track_state_as_json(accelerator, scheduler, state, run_fingerprint(args), args.reset_schedule)  # no pickle
    install_trainable_only_hooks(accelerator)

    resumed_from = latest_checkpoint(out_dir) if args.resume else None
    if resumed_from is not None:
        load_checkpoint(accelerator, resumed_from, guard)
        total_steps = plan.total  # a schedule fitted to an earlier invocation's budget is kept
        if main:
            logger.info("resumed from %s (step %d, micro-batch %d)", resumed_from, state.step, state.micro)
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config_keeping_previous(cfg, out_dir / CONFIG_FILE, save_config)
    log = MetricsLog(out_dir, main, args.tensorboard, state.step)
    if main:
        logger.info(
            "training %s: %d / %d parameters trainable (%s), %d steps of %d pairs × %d micro-batches",
            cfg.model.backbone,
            trainable,
            total,
            args.mode,
            total_steps,
            sampler.global_batch,
            args.grad_accum,
        )

    # --- train -------------------------------------------------------------------------------------------------
    stop_reason = "done"
    first_loss = final_loss = None
    seconds_before = state.seconds
    loop_start = time.perf_counter()
    bar = tqdm(total=total_steps, initial=state.step, desc="train", unit="step", disable=not main, dynamic_ncols=True)
    if val_data is not None and state.step == 0:  # the zero-shot baseline the curve starts from
        log.write({"step": 0, **validate(model, raw, collator, val_data, args, accelerator)})
    model.train()
    while state.step < total_steps:
        if args.stop_at_step and state.step >= args.stop_at_step:
            stop_reason = "stop_at_step"
            break
        step_start = time.perf_counter()
        sums: dict[str, float] = {}
        for _ in range(args.grad_accum):
            indices = sampler.local_indices(state.micro, accelerator.process_index)
            batch_index = state.micro * accelerator.num_processes + accelerator.process_index
            batch = collator.collate(_batch_notes(train_data, indices), batch_index).to(accelerator.device)
            with accelerator.accumulate(model):
                parts = training_step(
                    model,
                    raw,
                    batch,
                    args.gcl,
                    args.alpha,
                    accelerator.backward,
                    args.grad_cache_pairs,
                    accelerator.no_sync,
                )
            state.micro += 1
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value / args.grad_accum
        if not accelerator.sync_gradients:
            raise RuntimeError("gradient accumulation is out of step with the optimizer (accelerate state)")
        grad_norm = None
        if args.max_grad_norm:
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        step_seconds = time.perf_counter() - step_start
        if state.step == 1:
            paced_from = (1, time.perf_counter())  # the first step pays one-time costs: pace is timed after it
        fit = args.max_seconds and not args.max_steps and args.fit_schedule_to_budget and not resumed_from
        if fit and refit_due(state.step, args.calibration_steps, args.refit_every):
            now = time.perf_counter()
            pace = (now - paced_from[1]) / (state.step - paced_from[0])  # s/step since the last fit
            paced_from = (state.step, now)
            remaining = args.max_seconds - (now - started)
            fitted = fitted_total_steps(state.step, pace, remaining, planned_total)
            fitted = int(accelerator.reduce(torch.tensor(fitted, device=accelerator.device), reduction="min").item())
            if fitted != total_steps:
                if main:
                    logger.info("LR schedule fitted to a %.0f s budget at step %d: %d steps (planned %d)",
                                args.max_seconds, state.step, fitted, planned_total)
                plan.total = total_steps = fitted
                bar.total = total_steps
        state.seconds = seconds_before + (time.perf_counter() - loop_start)

        metrics = accelerator.reduce(
            torch.tensor([sums[k] for k in sorted(sums)], device=accelerator.device), reduction="mean"
        )
        row = {"step": state.step, **{k: float(v) for k, v in zip(sorted(sums), metrics.tolist(), strict=True)}}
        row.update(
            tau=float(raw.tau.detach()),
            lr=scheduler.get_last_lr()[0],
            pairs_per_s=sampler.global_batch * args.grad_accum / step_seconds,
            seconds=round(state.seconds, 3),
        )
        if grad_norm is not None:
            row["grad_norm"] = float(grad_norm)
        first_loss = row["loss"] if first_loss is None else first_loss
        final_loss = row["loss"]
        if val_data is not None and (state.step % args.eval_every == 0 or state.step == total_steps):
            row.update(validate(model, raw, collator, val_data, args, accelerator))
        if state.step % args.log_every == 0 or state.step == total_steps:
            log.write(row)
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.4f}", tau=f"{row['tau']:.3f}", pairs_s=f"{row['pairs_per_s']:.1f}")

        out_of_time = args.max_seconds and time.perf_counter() - started >= args.max_seconds
        out_of_time = bool(
            accelerator.reduce(torch.tensor(float(out_of_time), device=accelerator.device), reduction="sum").item()
        )  # every rank stops at the same step
        if out_of_time and state.step < total_steps:
            stop_reason = "max_seconds"
            break
        if args.checkpoint_every and state.step % args.checkpoint_every == 0 and state.step < total_steps:
            save_checkpoint(accelerator, out_dir, state.step, args.keep_checkpoints)
    bar.close()

    # --- save --------------------------------------------------------------------------------------------------
    completed = state.step >= total_steps
    if completed:
        stop_reason = "done"
    last = latest_checkpoint(out_dir)
    if last is None or last.name != f"step-{state.step:08d}":
        save_checkpoint(accelerator, out_dir, state.step, args.keep_checkpoints)
    model_dir = out_dir / MODEL_DIR
    if main:
        raw.save_pretrained(model_dir, merge_lora=True)
        save_config(cfg, model_dir / "train_config.yaml")
    log.close()
    if main and log.path.is_file():  # first/last loss of the whole run, across resumed invocations
        rows = [json.loads(line) for line in log.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        losses = [row["loss"] for row in rows if "loss" in row]
        if losses:
            first_loss, final_loss = losses[0], losses[-1]
    result = TrainResult(
        out_dir=out_dir,
        model_dir=model_dir,
        metrics_path=out_dir / METRICS_FILE,
        steps=state.step,
        total_steps=total_steps,
        completed=completed,
        stop_reason=stop_reason,
        first_loss=first_loss,
        final_loss=final_loss,
        tau=float(raw.tau.detach()),
        seconds=state.seconds,
        resumed_from=resumed_from,
        trainable_params=trainable,
        total_params=total,
    )
    if main:
        payload = {k: (str(v) if isinstance(v, Path) else v) for k, v in result.__dict__.items()}
        (out_dir / RESULT_FILE).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return result
