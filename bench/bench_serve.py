"""Load test of `notellm serve` on loopback: throughput and p50/p99 latency of related-notes reads and note writes.

    python bench/bench_serve.py --backbone tiny --index-notes 3750 --clients 8 --duration 20 [--backend milvus]
    python bench/bench_serve.py --backbone smollm2-135m --index-notes 64 --clients 8 --duration 20 --write-requests 32

Starts the real CLI server (`notellm serve`; FAISS backend unless --backend milvus; an untrained NoteLLM on
the chosen backbone) as a subprocess on 127.0.0.1, indexes the shipped Stack Exchange questions, then runs C
concurrent async clients per phase, each phase bounded by --duration seconds and a request cap. Clients and
server share this machine's CPUs (and, on a shared machine, other people's jobs: the load average is recorded
at start and end). Prints a table and writes JSON to bench/results/serve_<backbone>_<backend>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from serve_setup import (
    build_index,
    command_line,
    free_port,
    machine,
    save_model,
    stackexchange_notes,
    start_server,
    stop_server,
)


async def run_phase(base: str, clients: int, duration: float, max_requests: int, make_request) -> dict:
    """C clients send requests (made by make_request(i) -> (method, url, json)) until duration or the cap."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(max_requests))
    deadline = time.monotonic() + duration

    async def client(http: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            i = next(counter, None)
            if i is None:
                return
            method, url, body = make_request(i)
            start = time.perf_counter()
            try:
                response = await http.request(method, url, json=body)
                ok = response.status_code == 200
                if not ok:
                    errors.append(f"{response.status_code} {response.text[:100]}")
            except httpx.HTTPError as exc:
                ok = False
                errors.append(repr(exc))
            if ok:
                latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000
    return {"requests": len(latencies), "errors": len(errors), "error_samples": errors[:3], "seconds": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 2) if wall else 0.0,
            "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None}


def embed_batches(metrics_text: str) -> dict:
    """Mean notes per model call, from the server's Prometheus histogram (evidence of micro-batching)."""
    total = re.search(r"^notellm_embed_batch_notes_sum ([\d.e+]+)$", metrics_text, re.M)
    count = re.search(r"^notellm_embed_batch_notes_count ([\d.e+]+)$", metrics_text, re.M)
    if not total or not count or float(count.group(1)) == 0:
        return {"model_calls": 0}
    return {"model_calls": int(float(count.group(1))),
            "mean_notes_per_call": round(float(total.group(1)) / float(count.group(1)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="tiny", help="tiny, smollm2-135m, or a local HF folder")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="serve this saved folder instead (a NoteLLM folder, or an ONNX export: --runtime onnx)")
    parser.add_argument("--index-notes", type=int, default=3750, help="Stack Exchange notes to index (0 = all)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase (upper bound)")
    parser.add_argument("--read-requests", type=int, default=20000, help="cap per read phase")
    parser.add_argument("--write-requests", type=int, default=2000, help="cap for the write phase")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--backend", choices=["faiss", "milvus"], default="faiss",
                        help="milvus = embedded milvus-lite file in the workdir, seeded from the index")
    parser.add_argument("--reuse-index", action="store_true", help="keep an index already built in the workdir")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "notellm-bench")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()

    model_dir = args.model_dir or save_model(args.backbone, args.workdir)
    args.backbone = str(args.model_dir or args.backbone)
    pool = stackexchange_notes(args.workdir, 0)
    indexed, extra = pool[: args.index_notes or len(pool)], pool[args.index_notes or len(pool) :]
    t = time.perf_counter()
    index_dir = args.workdir / f"index-{Path(args.backbone).name}-{len(indexed)}"
    if not (args.reuse_index and (index_dir / "index.json").exists()):
        build_index(model_dir, indexed, index_dir)
    served = args.workdir / "served-index"  # the server writes into a copy; the built index stays pristine
    shutil.rmtree(served, ignore_errors=True)
    index_dir = Path(shutil.copytree(index_dir, served))
    build_s = time.perf_counter() - t
    port = free_port()
    t = time.perf_counter()
    server_args: list[str] = []
    if args.backend == "milvus":
        db = args.workdir / f"bench-{Path(args.backbone).name}.db"
        shutil.rmtree(db, ignore_errors=True)  # a fresh collection each run (milvus-lite keeps a folder)
        db.unlink(missing_ok=True) if db.is_file() else None
        server_args = ["--backend", "milvus", "--milvus-uri", str(db)]
    proc = start_server(model_dir, index_dir, port, server_args, log=args.workdir / "server.log")
    startup_s = time.perf_counter() - t
    base = f"http://127.0.0.1:{port}"
    ids = [n.note_id for n in indexed]
    rng = random.Random(0)
    writes = extra or indexed

    def related(method: str):
        return lambda i: ("GET", f"/notes/{rng.choice(ids)}/related?k={args.k}&diversify={method}", None)

    def write(i: int):
        note = writes[i % len(writes)]
        return ("POST", "/notes", {"notes": [{"note_id": f"bench-{i}", "title": note.title, "content": note.content,
                                              "hashtags": list(note.hashtags), "category": note.category}]})

    phases = {}
    try:
        phases["related"] = asyncio.run(run_phase(base, args.clients, args.duration, args.read_requests,
                                                  related("none")))
        phases["related_ssd_star"] = asyncio.run(run_phase(base, args.clients, args.duration, args.read_requests,
                                                           related("ssd_star")))
        phases["post_notes"] = asyncio.run(run_phase(base, args.clients, args.duration, args.write_requests, write))
        phases["embed"] = asyncio.run(run_phase(base, args.clients, args.duration, args.write_requests,
                                                lambda i: ("POST", "/embed", write(i)[2])))
        health = httpx.get(base + "/health").json()
        batching = embed_batches(httpx.get(base + "/metrics").text)
        notes_after = httpx.get(base + "/health").json()["notes"]
    finally:
        stop_server(proc)
    load_end = os.getloadavg()

    result = {
        "benchmark": "serve", "command": command_line(), "machine": machine(),
        "loadavg_start": [round(x, 2) for x in load_start], "loadavg_end": [round(x, 2) for x in load_end],
        "note": "client and server share this machine's CPUs with other users' jobs; see the load averages",
        "backbone": args.backbone, "runtime": health["runtime"], "precision": health["precision"],
        "backend": args.backend, "indexed_notes": len(indexed),
        "clients": args.clients, "k": args.k,
        "index_build_s": round(build_s, 1), "server_startup_s": round(startup_s, 1),
        "phases": phases, "embedding": batching, "notes_after": notes_after,
    }
    out = args.out or Path(__file__).parent / "results" / f"serve_{Path(args.backbone).name}_{args.backend}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(f"\nnotellm serve load test: backbone={args.backbone}, runtime={health['runtime']} ({health['precision']}), "
          f"backend={args.backend}, {len(indexed)} notes, "
          f"{args.clients} clients, {machine()['nproc']} CPUs ({machine()['cpu']})")
    print(f"load average start {load_start[0]:.2f}, end {load_end[0]:.2f} (shared machine)")
    print(f"{'phase':<18}{'requests':>9}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for name, p in phases.items():
        print(f"{name:<18}{p['requests']:>9}{p['errors']:>8}{p['throughput_rps']:>9}{p['p50_ms']!s:>9}"
              f"{p['p99_ms']!s:>9}")
    print(f"model calls for writes: {batching}; wrote {out}")
    if any(p["errors"] for p in phases.values()):
        raise SystemExit("errors during the load test: " + str({k: p["error_samples"] for k, p in phases.items()}))


if __name__ == "__main__":
    main()
