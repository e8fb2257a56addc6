"""Parts of bench/gpu_check.sh that need Python: the all-gather check, the bf16 throughput, the summary JSON.

    torchrun --nproc_per_node 2 bench/gpu_check.py gather --out gather.json
    python bench/gpu_check.py throughput --config configs/smollm2_135m.yaml --data DATA --out throughput.json
    python bench/gpu_check.py summarize --work WORK --out bench/results/gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

LOSS_RTOL = 2e-2  # step-1 losses of DDP / FSDP / ZeRO-3 in bf16: same data and seed, different reduction orders


def gather(out: Path) -> None:
    """Every rank sees every rank's rows, and gradients flow back through the gather (the GCL negatives)."""
    import torch
    import torch.distributed as dist

    from notellm.train.losses import gather_with_grad

    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() else "cpu"
    local = torch.full((4, 8), float(rank + 1), device=device, requires_grad=True)
    full, offset = gather_with_grad(local)
    ok_rows = full.shape == (4 * world, 8) and offset == 4 * rank
    ok_values = all(torch.all(full[4 * r: 4 * r + 4] == r + 1).item() for r in range(world))
    full.sum().backward()  # every rank's loss uses every row: the gather's backward sums over ranks
    ok_grad = torch.allclose(local.grad, torch.full_like(local, float(world)))
    checks = torch.tensor([ok_rows, ok_values, ok_grad], dtype=torch.int32, device=device)
    dist.all_reduce(checks, op=dist.ReduceOp.MIN)
    if rank == 0:
        out.write_text(json.dumps({"world": world, "rows_gathered": ok_rows, "values_from_every_rank": ok_values,
                                   "gradient_through_gather": ok_grad, "all_ranks_ok": bool(checks.min())}))
    dist.destroy_process_group()


def throughput(config: Path, data: Path, out: Path) -> None:
    """bf16 matmul peak (TFLOP/s, measured) and NoteLLM embedding notes/s and achieved TFLOP/s in bf16."""
    import torch

    from notellm.data.store import frame_to_notes, load_notes
    from notellm.model.notellm import NoteLLM
    from notellm.train.config import load_train_config

    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    reps, t0 = 20, time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    peak = 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12
    del a, b
    model = NoteLLM.from_backbone(load_train_config(config).model).to("cuda").eval()
    notes = frame_to_notes(load_notes(data))
    ids = [model.prompt_builder.embedding_ids(note) for note in notes]
    tokens = sum(len(i) for i in ids)
    params = sum(p.numel() for p in model.parameters())
    model.embed(notes[:256], batch_size=256, autocast=True)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.embed(notes, batch_size=256, autocast=True)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    achieved = 2 * params * tokens / seconds / 1e12  # forward FLOPs ≈ 2 × parameters × tokens
    out.write_text(json.dumps({
        "gpu": torch.cuda.get_device_name(), "matmul_bf16_peak_tflops": round(peak, 1), "notes": len(notes),
        "tokens": tokens, "embed_seconds": round(seconds, 2), "notes_per_second": round(len(notes) / seconds, 1),
        "embed_tflops": round(achieved, 2), "fraction_of_peak": round(achieved / peak, 4)}))


def _losses(run: Path) -> list[float]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line)["loss"] for line in path.read_text().splitlines() if '"loss"' in line]


def summarize(work: Path, out: Path, seconds: float) -> None:
    runs = {kind: _losses(work / f"run_{kind}") for kind in ("ddp", "fsdp", "deepspeed_zero3")}
    first = {k: v[0] for k, v in runs.items() if v}
    agree = None
    if len(first) == 3:
        ref = first["ddp"]
        agree = all(abs(v - ref) <= LOSS_RTOL * abs(ref) for v in first.values())
    read = lambda name: json.loads((work / name).read_text()) if (work / name).is_file() else None  # noqa: E731
    result = {"seconds": seconds, "losses": runs, "step1_losses_agree": agree, "loss_rtol": LOSS_RTOL,
              "cross_process_negatives": read("gather.json"), "throughput": read("throughput.json"),
              "work": str(work)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gather")
    g.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--config", type=Path, required=True)
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("summarize")
    s.add_argument("--work", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seconds", type=float, default=0)
    args = parser.parse_args()
    if args.cmd == "gather":
        gather(args.out)
    elif args.cmd == "throughput":
        throughput(args.config, args.data, args.out)
    else:
        summarize(args.work, args.out, args.seconds)


if __name__ == "__main__":
    main()
