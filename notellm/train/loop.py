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

import hashlib
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from notellm.config import save_config
from notellm.model.frozen_cache import FrozenLayerCache
from notellm.precision import PrecisionChoice, resolve_precision
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
from notellm.train.data import PairBatchSampler, PairData, load_pair_data, pair_lengths
from notellm.train.losses import gcl_loss
from notellm.train.modes import apply_mode, count_parameters, frozen_bottom_layers
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
    frozen_cache: dict | None = None  # FrozenLayerCache.stats() of this invocation (top_n / lora_layers modes)
    precision: dict | None = None  # PrecisionChoice.as_dict(): what this invocation computed in, and its peak


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


def affordable_total_steps(step: int, seconds_per_step: float, remaining_seconds: float, total: int,
                           validation_seconds: float, eval_every: int) -> int:
    """`fitted_total_steps` with the validations the fitted schedule itself will run (every `eval_every` and at its
    end) paid from the same remaining time. Reserving the validations of the *planned* schedule instead would, on a
    slow machine, reserve more than the budget (2,242 planned steps validate 22 times) and leave one step."""
    def fits(n: int) -> bool:  # n steps in all, with the validations they trigger
        left = remaining_seconds - validation_seconds * future_validations(step, n, eval_every)
        return n <= fitted_total_steps(step, seconds_per_step, left, total)

    # `fits` is monotone (more steps, at least as many validations): the largest n that fits, by bisection
    lo, hi = step + 1, fitted_total_steps(step, seconds_per_step, remaining_seconds, total)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def refit_due(step: int, calibration_steps: int, refit_every: int) -> bool:
    """Whether the schedule is fitted to the budget after `step`: at `calibration_steps`, then every `refit_every`."""
    if step == calibration_steps:
        return True
    return refit_every > 0 and step > calibration_steps and (step - calibration_steps) % refit_every == 0


def _accelerator(args: TrainArgs, precision: PrecisionChoice):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state()  # each train() call is its own run (tests call it repeatedly in one process)
    GradientState._reset_state()
    return Accelerator(
        mixed_precision="bf16" if precision.bf16 else "no",
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
    params = decay + no_decay + tau
    fused = args.fused_adamw and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=args.lr, betas=(0.9, 0.999), eps=1e-8,
                             fused=fused or None)


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


def validation_parts(model, raw, collator, data: PairData, args: TrainArgs, accelerator,
                     progress: bool = False) -> dict[str, float]:
    """Mean GCL and CSFT loss on (at most `val_max_pairs`) val pairs, in file order, same negatives rule.

    Both parts are always computed, so one pass serves every α and the GCL-off ablation (`combine_validation`);
    the extra cost is the LM head at the supervised positions only."""
    pairs = data.pairs[: args.val_max_pairs] if args.val_max_pairs else data.pairs
    sampler = PairBatchSampler(
        pairs,
        args.batch_pairs,
        accelerator.num_processes,
        seed=args.seed,
        no_duplicates=args.no_duplicates,
        shuffle=False,
    )
    sums = {"csft": 0.0, "gcl": 0.0}
    n = sampler.batches_per_epoch(0)
    view = PairData(notes=data.notes, pairs=pairs)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for micro in tqdm(range(n), desc="validate", unit="batch", disable=not progress, leave=False,
                          dynamic_ncols=True):
            indices = sampler.local_indices(micro, accelerator.process_index)
            batch = collator.collate(_batch_notes(view, indices), 10**9 + micro).to(accelerator.device)
            out = model(batch, need_generation_loss=True)
            sums["gcl"] += float(gcl_loss(out.embeddings, raw.logit_scale))
            sums["csft"] += float(out.generation_loss)
    model.train(was_training)
    means = torch.tensor([sums[k] / n for k in sorted(sums)], device=accelerator.device)
    means = accelerator.reduce(means, reduction="mean")
    return dict(zip(sorted(sums), means.tolist(), strict=True))


def combine_validation(parts: dict[str, float], args: TrainArgs) -> dict[str, float]:
    """The metrics row of a validation: the run's loss L = (L_gcl + α·L_csft)/(1 + α) (a mean of per-batch losses
    is this combination of the per-part means, L being linear in them) and the parts the run trains."""
    if not args.gcl:
        return {"val_loss": parts["csft"], "val_csft": parts["csft"]}
    if args.alpha == 0:
        return {"val_loss": parts["gcl"], "val_gcl": parts["gcl"]}
    loss = (parts["gcl"] + args.alpha * parts["csft"]) / (1.0 + args.alpha)
    return {"val_loss": loss, "val_csft": parts["csft"], "val_gcl": parts["gcl"]}


def validate(model, raw, collator, data: PairData, args: TrainArgs, accelerator, progress: bool = False):
    """The validation row (`val_loss`, `val_gcl`, `val_csft`) of the model as it is now."""
    return combine_validation(validation_parts(model, raw, collator, data, args, accelerator, progress), args)


def val0_key(cfg: TrainConfig, data: PairData, precision: str, world: int) -> str:
    """What the untrained model's validation depends on: the model, the val sample, batching and precision (not α,
    not GCL on/off, which only combine the parts differently, and not the training mode)."""
    from notellm.config import to_dict

    args = cfg.train
    pairs = data.pairs[: args.val_max_pairs] if args.val_max_pairs else data.pairs
    notes = {i for pair in pairs for i in pair}
    blob = json.dumps({
        "model": to_dict(cfg.model), "pairs": pairs, "notes": sorted((data.notes[i].note_id, data.notes[i].title,
                                                                      data.notes[i].content) for i in notes),
        # not the mode: the untrained model is the same in every mode (LoRA starts with B = 0)
        "train": {k: getattr(args, k) for k in ("batch_pairs", "seed", "hashtag_ratio", "no_duplicates")},
        "precision": precision, "world": world}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


def _read_val0(path: str, key: str) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")).get(key)
    except (OSError, json.JSONDecodeError):
        return None


def _write_val0(path: str, key: str, entry: dict) -> None:
    target = Path(path)
    try:
        table = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        table = {}
    table[key] = entry
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=1), encoding="utf-8")
    tmp.replace(target)


def future_validations(step: int, total: int, eval_every: int) -> int:
    """Validations still to run after `step` in a schedule of `total` steps: every `eval_every`, and at the end."""
    if not eval_every:
        return 0
    return 1 + max(0, (total - 1) // eval_every - step // eval_every)


@dataclass
class TrainingRun:
    """Everything one `train` invocation works with, built by `setup_run` and advanced by the named steps below."""

    cfg: TrainConfig
    precision: PrecisionChoice
    started: float  # perf_counter at the start of the invocation (the budget clock)
    accelerator: object
    train_data: PairData
    val_data: PairData | None
    sampler: PairBatchSampler
    raw: object  # the unwrapped NoteLLM
    model: object  # what accelerate prepared (DDP/FSDP wrapper or the model itself)
    collator: object
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    plan: SchedulePlan
    planned_total: int  # a budget fit may shorten the schedule, and a later fit lengthen it back to this
    total_steps: int
    state: RunState
    resumed_from: Path | None
    log: MetricsLog
    trainable: int
    total: int
    val_seconds: float = 0.0  # one validation's cost, reserved from the budget when the schedule is fitted
    paced_from: tuple[int, float] | None = None  # (step, time) the pace of the next budget fit is measured from

    @property
    def args(self) -> TrainArgs:
        return self.cfg.train

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.train.out_dir)

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process


def _total_steps(args: TrainArgs, sampler: PairBatchSampler, n_pairs: int) -> int:
    if args.max_steps:
        return args.max_steps
    micro_total = sum(sampler.batches_per_epoch(e) for e in range(args.epochs))
    total_steps = micro_total // args.grad_accum
    if total_steps == 0:
        raise ValueError(
            f"{n_pairs} train pairs give {micro_total} micro-batches, fewer than "
            f"train.grad_accum={args.grad_accum}: lower batch_pairs / grad_accum or set max_steps"
        )
    return total_steps


def setup_run(cfg: TrainConfig) -> TrainingRun:
    """Precision, accelerator, data, model (mode, frozen-layer cache), optimizer, schedule; resume if asked."""
    from accelerate.utils import set_seed

    from notellm.model.collate import PairCollator
    from notellm.model.notellm import NoteLLM

    args = cfg.train
    if not args.data_dir:
        raise ValueError("train.data_dir is empty: pass --data DIR (a folder with notes.parquet and pairs.parquet)")
    out_dir = Path(args.out_dir)
    precision = resolve_precision(args.precision, "cuda" if torch.cuda.is_available() else "cpu", what="train")
    started = time.perf_counter()
    accelerator = _accelerator(args, precision)
    main = accelerator.is_main_process
    if main:
        print(f"train precision: {precision.describe()}", file=sys.stderr, flush=True)
    set_seed(args.seed)
    if args.grad_cache_pairs and accelerator.distributed_type.value == "DEEPSPEED":
        raise ValueError(
            "train.grad_cache_pairs is not supported under DeepSpeed (its engine owns backward); "
            "use plain batches (grad_cache_pairs=0) or FSDP"
        )

    train_data = load_pair_data(args.data_dir, "train")
    val_data = load_pair_data(args.data_dir, "val") if args.eval_every else None
    if val_data is not None and not val_data.pairs:
        logger.warning("%s has no val pairs: validation is skipped", args.data_dir)
        val_data = None
    raw = NoteLLM.from_backbone(cfg.model, dtype=torch.float32)
    lengths = pair_lengths(train_data, raw.prompt_builder) if args.group_by_length else None
    sampler = PairBatchSampler(train_data.pairs, args.batch_pairs, accelerator.num_processes, seed=args.seed,
                               no_duplicates=args.no_duplicates, lengths=lengths)
    total_steps = _total_steps(args, sampler, len(train_data.pairs))

    apply_mode(raw, args)
    n_frozen = frozen_bottom_layers(raw, args)
    if args.cache_frozen_layers and n_frozen > 0:
        raw.frozen_cache = FrozenLayerCache(n_frozen, out_dir / "frozen_cache" / f"rank{accelerator.process_index}",
                                            max_mb=args.frozen_cache_mb, max_disk_mb=args.frozen_cache_disk_mb)
    if args.gradient_checkpointing:
        raw.causal_lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    trainable, total = count_parameters(raw)
    collator = PairCollator(raw.prompt_builder, hashtag_ratio=args.hashtag_ratio, seed=args.seed)
    optimizer = _optimizer(raw, args)
    model, optimizer = accelerator.prepare(raw, optimizer)
    raw = accelerator.unwrap_model(model)
    plan = SchedulePlan(total=total_steps, warmup_ratio=args.warmup_ratio)
    planned_total = total_steps
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
    return TrainingRun(cfg=cfg, precision=precision, started=started, accelerator=accelerator, train_data=train_data,
                       val_data=val_data, sampler=sampler, raw=raw, model=model, collator=collator,
                       optimizer=optimizer, scheduler=scheduler, plan=plan, planned_total=planned_total,
                       total_steps=total_steps, state=state, resumed_from=resumed_from, log=log, trainable=trainable,
                       total=total)


def validate_untrained(run: TrainingRun) -> None:
    """The step-0 row: validation of the untrained model (the zero-shot baseline the curve starts from), read from
    `val0_cache` when a sibling run already computed it."""
    args, accelerator = run.args, run.accelerator
    key = val0_key(run.cfg, run.val_data, run.precision.name, accelerator.num_processes)
    cached = _read_val0(args.val0_cache, key) if args.val0_cache else None
    if cached is None:
        t_val = time.perf_counter()
        parts = validation_parts(run.model, run.raw, run.collator, run.val_data, args, accelerator, progress=run.main)
        run.val_seconds = time.perf_counter() - t_val
        if run.main and args.val0_cache:
            _write_val0(args.val0_cache, key, {"parts": parts, "seconds": run.val_seconds})
    else:
        parts, run.val_seconds = cached["parts"], float(cached["seconds"])
        if run.main:
            logger.info("step-0 validation reused from %s", args.val0_cache)
    run.log.write({"step": 0, **combine_validation(parts, args)})


def optimizer_step(run: TrainingRun) -> tuple[dict[str, float], object]:
    """`grad_accum` micro-batches forward + backward, clipping, one optimizer and scheduler step.

    Returns the step's mean loss parts (this rank) and the gradient norm before clipping (None without clipping)."""
    args, accelerator, state, model = run.args, run.accelerator, run.state, run.model
    sums: dict[str, float] = {}
    for _ in range(args.grad_accum):
        indices = run.sampler.local_indices(state.micro, accelerator.process_index)
        batch_index = state.micro * accelerator.num_processes + accelerator.process_index
        batch = run.collator.collate(_batch_notes(run.train_data, indices), batch_index).to(accelerator.device)
        with accelerator.accumulate(model):
            parts = training_step(
                model,
                run.raw,
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
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    state.step += 1
    return sums, grad_norm


def fit_schedule_to_budget(run: TrainingRun, bar) -> None:
    """After the calibration steps (and every `refit_every`), shorten (or lengthen back) the LR schedule to the
    steps the remaining budget affords at the pace since the last fit, validations still to come reserved."""
    args, state, accelerator = run.args, run.state, run.accelerator
    if state.step == 1:
        run.paced_from = (1, time.perf_counter())  # the first step pays one-time costs: pace is timed after it
    fit = args.max_seconds and not args.max_steps and args.fit_schedule_to_budget and not run.resumed_from
    if not (fit and refit_due(state.step, args.calibration_steps, args.refit_every)):
        return
    now = time.perf_counter()
    pace = (now - run.paced_from[1]) / (state.step - run.paced_from[0])  # s/step since the last fit
    run.paced_from = (state.step, now)
    remaining = args.max_seconds - (now - run.started)
    fitted = affordable_total_steps(state.step, pace, remaining, run.planned_total, run.val_seconds,
                                    args.eval_every if run.val_data else 0)
    fitted = int(accelerator.reduce(torch.tensor(fitted, device=accelerator.device), reduction="min").item())
    if fitted != run.total_steps:
        if run.main:
            logger.info("LR schedule fitted to a %.0f s budget at step %d: %d steps (planned %d)",
                        args.max_seconds, state.step, fitted, run.planned_total)
        run.plan.total = run.total_steps = fitted
        bar.total = run.total_steps


def step_row(run: TrainingRun, sums: dict[str, float], grad_norm, step_seconds: float) -> dict:
    """The metrics row of the step just taken (losses averaged over ranks), validated when due."""
    args, accelerator, state = run.args, run.accelerator, run.state
    metrics = accelerator.reduce(
        torch.tensor([sums[k] for k in sorted(sums)], device=accelerator.device), reduction="mean"
    )
    row = {"step": state.step, **{k: float(v) for k, v in zip(sorted(sums), metrics.tolist(), strict=True)}}
    row.update(
        tau=float(run.raw.tau.detach()),
        lr=run.scheduler.get_last_lr()[0],
        pairs_per_s=run.sampler.global_batch * args.grad_accum / step_seconds,
        seconds=round(state.seconds, 3),
    )
    if grad_norm is not None:
        row["grad_norm"] = float(grad_norm)
    if run.val_data is not None and (state.step % args.eval_every == 0 or state.step == run.total_steps):
        t_val = time.perf_counter()
        row.update(validate(run.model, run.raw, run.collator, run.val_data, args, accelerator, progress=run.main))
        run.val_seconds = time.perf_counter() - t_val
    return row


def out_of_time(run: TrainingRun) -> bool:
    """Whether the budget is spent, agreed by every rank (so all stop at the same step)."""
    late = run.args.max_seconds and time.perf_counter() - run.started >= run.args.max_seconds
    device = run.accelerator.device
    return bool(run.accelerator.reduce(torch.tensor(float(late), device=device), reduction="sum").item())


def save_run(run: TrainingRun, stop_reason: str, first_loss, final_loss) -> TrainResult:
    """Final checkpoint, the model (LoRA merged), train_result.json; the frozen-layer cache is dropped."""
    args, accelerator, state, raw, out_dir = run.args, run.accelerator, run.state, run.raw, run.out_dir
    completed = state.step >= run.total_steps
    if completed:
        stop_reason = "done"
    last = latest_checkpoint(out_dir)
    if last is None or last.name != f"step-{state.step:08d}":
        save_checkpoint(accelerator, out_dir, state.step, args.keep_checkpoints)
    cache_stats = None
    if raw.frozen_cache is not None:
        cache_stats = raw.frozen_cache.stats()
        raw.frozen_cache.close()
        raw.frozen_cache = None
    model_dir = out_dir / MODEL_DIR
    if run.main:
        raw.save_pretrained(model_dir, merge_lora=True)
        save_config(run.cfg, model_dir / "train_config.yaml")
    run.log.close()
    if run.main and run.log.path.is_file():  # first/last loss of the whole run, across resumed invocations
        rows = [json.loads(line) for line in run.log.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        losses = [row["loss"] for row in rows if "loss" in row]
        if losses:
            first_loss, final_loss = losses[0], losses[-1]
    result = TrainResult(
        out_dir=out_dir,
        model_dir=model_dir,
        metrics_path=out_dir / METRICS_FILE,
        steps=state.step,
        total_steps=run.total_steps,
        completed=completed,
        stop_reason=stop_reason,
        first_loss=first_loss,
        final_loss=final_loss,
        tau=float(raw.tau.detach()),
        seconds=state.seconds,
        resumed_from=run.resumed_from,
        trainable_params=run.trainable,
        total_params=run.total,
        precision=run.precision.as_dict(),
        frozen_cache=cache_stats,
    )
    if run.main:
        payload = {k: (str(v) if isinstance(v, Path) else v) for k, v in result.__dict__.items()}
        (out_dir / RESULT_FILE).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return result


def train(cfg: TrainConfig) -> TrainResult:
    """Train NoteLLM as `cfg` says; resumable, multi-process under accelerate/torchrun. See the module docstring.

    setup_run → validate_untrained → (optimizer_step → fit_schedule_to_budget → step_row → checkpoint)* → save_run
    """
    run = setup_run(cfg)
    args, state = run.args, run.state
    stop_reason = "done"
    first_loss = final_loss = None
    seconds_before = state.seconds
    loop_start = time.perf_counter()
    bar = tqdm(total=run.total_steps, initial=state.step, desc="train", unit="step", disable=not run.main,
               dynamic_ncols=True)
    if run.val_data is not None and state.step == 0:
        validate_untrained(run)
    run.model.train()
    while state.step < run.total_steps:
        if args.stop_at_step and state.step >= args.stop_at_step:
            stop_reason = "stop_at_step"
            break
        step_start = time.perf_counter()
        sums, grad_norm = optimizer_step(run)
        step_seconds = time.perf_counter() - step_start
        fit_schedule_to_budget(run, bar)
        state.seconds = seconds_before + (time.perf_counter() - loop_start)
        row = step_row(run, sums, grad_norm, step_seconds)
        first_loss = row["loss"] if first_loss is None else first_loss
        final_loss = row["loss"]
        if state.step % args.log_every == 0 or state.step == run.total_steps:
            run.log.write(row)
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.4f}", tau=f"{row['tau']:.3f}", pairs_s=f"{row['pairs_per_s']:.1f}")
        if out_of_time(run) and state.step < run.total_steps:
            stop_reason = "max_seconds"
            break
        if args.checkpoint_every and state.step % args.checkpoint_every == 0 and state.step < run.total_steps:
            save_checkpoint(run.accelerator, run.out_dir, state.step, args.keep_checkpoints)
    bar.close()
    return save_run(run, stop_reason, first_loss, final_loss)
