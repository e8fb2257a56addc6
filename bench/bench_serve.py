"""Load test of `notellm serve` on loopback with a native load generator: throughput, latency tail and errors.

    python bench/bench_serve.py --backbone tiny --index-notes 3750 --connections 50 --duration 10
    python bench/bench_serve.py --backbone tiny --synthetic-notes 1000000 --index-kind hnsw \
        --index-set hnsw_m=16 --index-set hnsw_ef_construction=40 --index-set hnsw_ef_search=32 \
        --phases related,related_ssd_star
    python bench/bench_serve.py --driver python ...           # the asyncio/httpx client, when wrk is missing

Starts the real CLI server (`notellm serve`, FAISS backend unless --backend milvus; an untrained NoteLLM on the
chosen backbone) as a subprocess on 127.0.0.1 and drives it with `wrk` (Debian package, installed by setup.sh)
through bench/serve_load.lua: one phase per request kind, each a fixed --duration at --connections open
connections: related notes without and with each re-ranker, POST /notes (one new note each), POST /embed, and a
weighted mix of all of them. With 2+ CPUs the server is pinned to one core and wrk to another (`taskset`), so the
load generator does not steal the server's CPU; with `--workers N` (N reader processes + the writer) the server
gets every core and wrk is pinned to one of them. Per phase it records requests/s, p50/p90/p99/p99.9 latency,
errors (socket errors, timeouts and HTTP status >= 400, as wrk counts them), the server's CPU time per request,
the time the server's threads waited for a CPU (run-queue wait, /proc/<pid>/task/*/schedstat: other processes
on its core), its garbage-collector pauses (from /metrics), wrk's own CPU time and the load average (the machine
may be shared: say so with any figure). With an approximate index (HNSW/IVF) it also measures the served
related lists' recall@k against exact search on a sample of notes. Prints a table and writes JSON to
bench/results/serve_<backbone>_<backend>[_<N>].json (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import psutil
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

LUA = Path(__file__).with_name("serve_load.lua")
RERANKERS = ("ssd_star", "ssd", "dpp", "mmr")
PHASES = ("related", *(f"related_{m}" for m in RERANKERS), "post_notes", "embed", "mix")
# the mix phase: mostly plain related reads (a feed's impressions), some diversified, a few writes and embeds
MIX = {"related:none": 70, "related:ssd_star": 10, "related:ssd": 3, "related:dpp": 3, "related:mmr": 3,
       "post_notes": 6, "embed": 5}


def server_pids(pid: int) -> list[int]:
    """The server process and every process under it (the reader workers of `--workers N`)."""
    proc = psutil.Process(pid)
    return [pid, *(child.pid for child in proc.children(recursive=True))]


def server_cpu_seconds(pid: int) -> float:
    """utime + stime of the server's processes (all their threads), from /proc."""
    total = 0
    for one in server_pids(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a process that ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_queue_wait_seconds(pid: int) -> float:
    """Time the server's threads spent runnable but waiting for a CPU (schedstat field 2, ns), summed."""
    total = 0
    for one in server_pids(pid):
        try:
            tasks = list(Path(f"/proc/{one}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
                continue
    return total / 1e9


def wait_until_idle(pid: int, quiet_cpu_s: float = 0.05, timeout: float = 300) -> None:
    """Wait until the server's processes use almost no CPU for a second: with --workers, /health answers as soon
    as one reader is up while the others are still loading the index."""
    deadline = time.monotonic() + timeout
    before = server_cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = server_cpu_seconds(pid)
        if now - before < quiet_cpu_s:
            return
        before = now


def gc_pauses(metrics_text: str) -> dict[str, tuple[float, float]]:
    """generation -> (count, seconds) of the server's garbage-collector passes so far (notellm_gc_pause_seconds)."""
    out: dict[str, list[float]] = {}
    for kind, gen, value in re.findall(r'^notellm_gc_pause_seconds_(count|sum)\{generation="(\d)"\} ([\d.e+-]+)$',
                                       metrics_text, re.M):
        out.setdefault(gen, [0.0, 0.0])[0 if kind == "count" else 1] = float(value)
    return {g: (c, s) for g, (c, s) in out.items()}


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def phase_request(phase: str) -> tuple[str, str]:
    """(wrk kind, diversify method) of a phase name."""
    if phase == "related":
        return "related", "none"
    if phase.startswith("related_"):
        return "related", phase.removeprefix("related_")
    return phase, "none"


def run_wrk(base: str, phase: str, args, ids_file: Path, bodies_file: Path, out: Path, cpu: int | None) -> dict:
    kind, method = phase_request(phase)
    env = dict(os.environ, NOTELLM_KIND=kind, NOTELLM_METHOD=method, NOTELLM_K=str(args.k),
               NOTELLM_IDS=str(ids_file), NOTELLM_BODIES=str(bodies_file), NOTELLM_OUT=str(out),
               NOTELLM_SEED=str(args.seed), NOTELLM_MIX=",".join(f"{n}={w}" for n, w in MIX.items()))
    cmd = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration:g}s", "--timeout", f"{args.timeout:g}s",
           "-s", str(LUA), base]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    raw = json.loads(out.read_text())
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    errors = sum(raw["errors"].values())
    return {"driver": "wrk", "requests": raw["requests"], "errors": errors, "error_kinds": raw["errors"],
            "seconds": round(seconds, 2), "throughput_rps": round(raw["requests"] / seconds, 1),
            **{f"{p}_ms": round(lat[p] / 1000, 2) for p in ("p50", "p90", "p99", "p999")},
            "max_ms": round(lat["max"] / 1000, 2), "wrk_command": " ".join(cmd)}


async def run_python(base: str, connections: int, duration: float, make_request) -> dict:
    """Fallback driver: `connections` asyncio/httpx clients send make_request(i) -> (method, url, json)."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(10**9))
    deadline = time.monotonic() + duration

    async def client(http: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            method, url, body = make_request(next(counter))
            start = time.perf_counter()
            try:
                response = await http.request(method, url, json=body)
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:100]}")
                    continue
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
                continue
            latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(connections)))
        wall = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000
    pct = {f"{name}_ms": round(float(np.percentile(ms, q)), 2) if len(ms) else None
           for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9))}
    return {"driver": "python", "requests": len(latencies), "errors": len(errors), "error_samples": errors[:3],
            "seconds": round(wall, 2), "throughput_rps": round(len(latencies) / wall, 1) if wall else 0.0, **pct,
            "max_ms": round(float(ms.max()), 2) if len(ms) else None}


def python_requests(phase: str, ids: list[str], bodies: list[dict], k: int, seed: int):
    rng = random.Random(seed)
    kind, method = phase_request(phase)
    names, weights = list(MIX), list(MIX.values())

    def make(i: int, name: str | None = None):
        name = name or (kind if kind != "related" else f"related:{method}")
        if name == "mix":
            return make(i, rng.choices(names, weights)[0])
        if name == "post_notes":
            return "POST", "/notes", {"notes": [dict(bodies[i % len(bodies)], note_id=f"bench-py-{i}")]}
        if name == "embed":
            return "POST", "/embed", {"notes": [bodies[i % len(bodies)]]}
        return "GET", f"/notes/{quote(rng.choice(ids), safe='')}/related?k={k}&diversify={name.split(':')[1]}", None

    return make


def synthetic_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """`n` unit vectors around 1,000 random centres (clustered like topics).  -> (n, dim)"""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, 1000, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def synthetic_index(out: Path, n: int, dim: int, seed: int, index) -> Path:
    """An index folder of `n` synthetic notes (`synthetic_vectors`) with the vector index `index` (IndexConfig)."""
    from notellm.data.schema import Note
    from notellm.serve.store import LocalNoteIndex

    notes = [Note(note_id=f"syn:{i}", title=f"synthetic note {i}", content="", hashtags=("synthetic",),
                  category="synthetic") for i in range(n)]
    return LocalNoteIndex.create(out, notes, synthetic_vectors(n, dim, seed), overwrite=True, index=index)


def related_recall(base: str, vectors: np.ndarray, ids: list[str], k: int, sample: int, seed: int) -> dict:
    """recall@k of the served related lists (GET /related, diversify=none) against exact search, on `sample`
    random notes (vectors: every note's vector, row-aligned with ids)."""
    rng = np.random.default_rng(seed + 1)
    rows = rng.choice(len(ids), size=min(sample, len(ids)), replace=False)
    found = 0
    for row in rows.tolist():
        sims = vectors @ vectors[row]
        sims[row] = -np.inf
        exact = {ids[i] for i in np.argpartition(-sims, k)[:k].tolist()}
        served = httpx.get(f"{base}/notes/{quote(ids[row], safe='')}/related", params={"k": k}, timeout=60).json()
        found += len(exact & {item["note_id"] for item in served["items"]})
    return {"recall_at_k": round(found / (k * len(rows)), 4), "k": k, "sample": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="tiny", help="tiny, smollm2-135m, or a local HF folder")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="serve this saved folder instead (a NoteLLM folder, or an ONNX export: --runtime onnx)")
    parser.add_argument("--index-notes", type=int, default=3750, help="Stack Exchange notes to index (0 = all)")
    parser.add_argument("--synthetic-notes", type=int, default=0,
                        help="index this many synthetic vectors instead of Stack Exchange notes (scale runs)")
    parser.add_argument("--connections", "--clients", type=int, default=50,
                        help="open connections (concurrent requests)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--timeout", type=float, default=10.0, help="wrk: a request slower than this is an error")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--driver", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=["faiss", "milvus"], default="faiss",
                        help="milvus = embedded milvus-lite file in the workdir, seeded from the index")
    parser.add_argument("--index-kind", default="auto", help="vector index of the served folder: flat (exact), hnsw, "
                        "ivf, auto (exact up to 200,000 notes)")
    parser.add_argument("--index-set", action="append", default=[], metavar="KEY=VALUE",
                        help="IndexConfig override, e.g. hnsw_m=16 (repeatable)")
    parser.add_argument("--recall-sample", type=int, default=200,
                        help="approximate index: notes whose served related lists are checked against exact search")
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="extra `notellm serve` argument (repeatable), e.g. --serve-arg=--set=related_cache_k=50")
    parser.add_argument("--profile", default="", metavar="PHASE",
                        help="sample the server with py-spy during this phase and print where its time goes")
    parser.add_argument("--workers", type=int, default=1,
                        help="`notellm serve --workers N`: N read-only processes + the writer; the server then gets "
                             "every core and wrk shares one of them")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and load generator to cores")
    parser.add_argument("--reuse-index", action="store_true", help="keep an index already built in the workdir")
    parser.add_argument("--build-only", action="store_true",
                        help="build the index folder in the workdir and stop (then run with --reuse-index)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "notellm-bench")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    phases = [p for p in args.phases.split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; choose from {PHASES}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    from notellm.config import load_config
    from notellm.retrieval.index import IndexConfig

    index_cfg = load_config(IndexConfig, None, [f"kind={args.index_kind}", *args.index_set])
    index_tag = "-".join([index_cfg.kind, *sorted(s.replace("=", "") for s in args.index_set)])

    cpus = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(cpus) >= 2
    server_cpu, client_cpu = (cpus[0], cpus[1]) if pin else (None, None)

    model_dir = args.model_dir or save_model(args.backbone, args.workdir)
    args.backbone = str(args.model_dir or args.backbone)
    pool = stackexchange_notes(args.workdir, 0)
    t = time.perf_counter()
    if args.synthetic_notes:
        from notellm.data.schema import Note
        from notellm.inference.load import load_encoder

        probe = Note(note_id="p", title="p", content="")
        dim = load_encoder(model_dir, None, precision="fp32").encode([probe]).shape[1]
        index_dir = args.workdir / f"index-synthetic-{args.synthetic_notes}-{dim}-{index_tag}"
        if not (args.reuse_index and (index_dir / "index.json").exists()):
            synthetic_index(index_dir, args.synthetic_notes, dim, args.seed, index_cfg)
        ids = [f"syn:{i}" for i in range(args.synthetic_notes)]
        extra = pool
    else:
        indexed, extra = pool[: args.index_notes or len(pool)], pool[args.index_notes or len(pool) :]
        index_dir = args.workdir / f"index-{Path(args.backbone).name}-{len(indexed)}-{index_tag}"
        if not (args.reuse_index and (index_dir / "index.json").exists()):
            build_index(model_dir, indexed, index_dir, index=index_cfg)
        ids = [n.note_id for n in indexed]
    if args.build_only:
        print(f"built {index_dir} in {time.perf_counter() - t:.1f} s (load average {os.getloadavg()[0]:.2f})")
        return
    served = args.workdir / "served-index"  # the server writes into a copy; the built index stays pristine
    shutil.rmtree(served, ignore_errors=True)
    index_dir = Path(shutil.copytree(index_dir, served))
    build_s = time.perf_counter() - t

    ids_file = args.workdir / "bench-ids.txt"
    ids_file.write_text("".join(quote(i, safe="") + "\n" for i in ids), encoding="utf-8")
    bodies = [{"title": n.title, "content": n.content, "hashtags": list(n.hashtags), "category": n.category}
              for n in (extra or pool)[:2000]]
    bodies_file = args.workdir / "bench-bodies.jsonl"
    bodies_file.write_text("".join(json.dumps(b) + "\n" for b in bodies), encoding="utf-8")

    port = free_port()
    t = time.perf_counter()
    server_args = list(args.serve_arg)
    if args.backend == "milvus":
        db = args.workdir / f"bench-{Path(args.backbone).name}.db"
        shutil.rmtree(db, ignore_errors=True)  # a fresh collection each run (milvus-lite keeps a folder)
        db.unlink(missing_ok=True) if db.is_file() else None
        server_args += ["--backend", "milvus", "--milvus-uri", str(db)]
    if args.workers > 1:  # several server processes: they get every core, wrk shares one (client_cpu)
        server_args += ["--workers", str(args.workers)]
        server_cpu = ",".join(map(str, cpus)) if pin else None
    own_affinity = os.sched_getaffinity(0)
    if pin:  # torch: one thread per process (the writer of --workers too: its idle pool threads spin on the cores)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    if pin and args.workers == 1:  # the server (and its threads) inherit this affinity
        os.sched_setaffinity(0, {server_cpu})
    try:
        proc = start_server(model_dir, index_dir, port, server_args, log=args.workdir / "server.log")
    finally:
        os.sched_setaffinity(0, {client_cpu} if pin else own_affinity)
    if args.workers > 1:
        wait_until_idle(proc.pid)
    startup_s = time.perf_counter() - t
    base = f"http://127.0.0.1:{port}"
    index_kind = json.loads((index_dir / "index.json").read_text())["index_kind"]

    results = {}
    recall = None
    try:
        if index_kind != "flat" and args.recall_sample:
            vectors = synthetic_vectors(args.synthetic_notes, dim, args.seed) if args.synthetic_notes else \
                load_index_vectors(index_dir, ids)
            recall = related_recall(base, vectors, ids, args.k, args.recall_sample, args.seed)
            del vectors
            print(f"related lists vs exact search: recall@{args.k} {recall['recall_at_k']} "
                  f"on {recall['sample']} notes", flush=True)
        for phase in phases:
            load = os.getloadavg()[0]
            cpu0, wait0, wrk0 = server_cpu_seconds(proc.pid), run_queue_wait_seconds(proc.pid), children_cpu_seconds()
            gc0 = gc_pauses(httpx.get(base + "/metrics").text)
            spy = None
            if phase == args.profile:
                raw = args.workdir / f"profile-{phase}.txt"
                spy = subprocess.Popen(["py-spy", "record", "--pid", str(proc.pid), "--format", "raw", "--rate", "200",
                                        "--duration", f"{int(args.duration)}", "--nonblocking", "-o", str(raw)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if args.driver == "wrk":
                out = args.workdir / f"wrk-{phase}.json"
                result = run_wrk(base, phase, args, ids_file, bodies_file, out, client_cpu)
            else:
                make = python_requests(phase, ids, bodies, args.k, args.seed)
                result = asyncio.run(run_python(base, args.connections, args.duration, make))
            cpu = server_cpu_seconds(proc.pid) - cpu0
            result["server_run_queue_wait_s"] = round(run_queue_wait_seconds(proc.pid) - wait0, 3)
            result["wrk_cpu_s"] = round(children_cpu_seconds() - wrk0, 2)
            gc1 = gc_pauses(httpx.get(base + "/metrics").text)
            result["gc_pauses"] = {g: {"count": int(c - gc0.get(g, (0, 0))[0]),
                                       "seconds": round(s - gc0.get(g, (0, 0))[1], 4)} for g, (c, s) in gc1.items()}
            if args.workers > 1:  # each /metrics scrape may reach another reader: differences mean nothing
                result["gc_pauses"] = {}
            if spy is not None:
                spy.wait()
                print(profile_summary(raw))
            result["server_cpu_ms_per_request"] = round(1000 * cpu / max(result["requests"], 1), 3)
            result["loadavg_1m_start"], result["loadavg_1m_end"] = round(load, 2), round(os.getloadavg()[0], 2)
            repeat = sum(key.split("#")[0] == phase for key in results)  # a phase listed twice: phase#2, ...
            results[f"{phase}#{repeat + 1}" if repeat else phase] = result
            print(f"{phase}: {result['throughput_rps']} req/s, p99 {result['p99_ms']} ms, "
                  f"{result['errors']} errors", flush=True)
        metrics = httpx.get(base + "/metrics").text
        health = httpx.get(base + "/health").json()
        notes_after = health["notes"]
    finally:
        stop_server(proc)
    load_end = os.getloadavg()

    result = {
        "benchmark": "serve", "command": command_line(), "machine": machine(),
        "loadavg_start": [round(x, 2) for x in load_start], "loadavg_end": [round(x, 2) for x in load_end],
        "note": "the load average counts other users' jobs on this machine; " + (
            "the server had one core, wrk another" if args.workers == 1 else
            f"the server's {args.workers} readers + writer had every core, wrk shared cpu {client_cpu}; "
            "gc_pauses are one reader's (each process has its own /metrics)"),
        "workers": args.workers,
        "driver": args.driver, "pinned": {"server_cpu": server_cpu, "client_cpu": client_cpu},
        "backbone": args.backbone, "runtime": health["runtime"], "precision": health["precision"],
        "backend": args.backend, "serve_args": server_args, "index_kind": index_kind,
        "index_config": vars(index_cfg), "related_recall": recall,
        "indexed_notes": len(ids), "synthetic": bool(args.synthetic_notes),
        "connections": args.connections, "duration_s": args.duration, "k": args.k, "mix": MIX,
        "index_build_s": round(build_s, 1), "server_startup_s": round(startup_s, 1),
        "phases": results, "notes_after": notes_after,
        "embedding": (embed_batches(metrics) if args.workers == 1
                      else "not collected: the writer's /metrics is private"),
    }
    suffix = (f"_{len(ids)}" if args.synthetic_notes else "") + (f"_{index_kind}" if index_kind != "flat" else "") \
        + (f"_w{args.workers}" if args.workers > 1 else "")
    name = f"serve_{Path(args.backbone).name}_{args.backend}{suffix}.json"
    out = args.out or Path(__file__).parent / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(f"\nnotellm serve load test ({args.driver}): backbone={args.backbone}, runtime={health['runtime']} "
          f"({health['precision']}), backend={args.backend}, "
          f"{len(ids)} notes, {args.connections} connections, {args.duration:g} s per phase, "
          f"{machine()['nproc']} CPUs ({machine()['cpu']}), server ({args.workers} worker(s)) on cpu {server_cpu}, "
          f"load on cpu {client_cpu}")
    print(f"load average start {load_start[0]:.2f}, end {load_end[0]:.2f} (other jobs count too)")
    print(f"{'phase':<18}{'requests':>9}{'errors':>7}{'req/s':>9}{'p50':>8}{'p90':>8}{'p99':>8}{'p99.9':>8}"
          f"{'cpu ms/req':>11}{'rq wait s':>10}{'gc s':>7}{'wrk cpu s':>10}")
    for name, p in results.items():
        gc_s = sum(g["seconds"] for g in p["gc_pauses"].values())
        print(f"{name:<18}{p['requests']:>9}{p['errors']:>7}{p['throughput_rps']:>9}{p['p50_ms']!s:>8}"
              f"{p['p90_ms']!s:>8}{p['p99_ms']!s:>8}{p['p999_ms']!s:>8}{p['server_cpu_ms_per_request']:>11}"
              f"{p['server_run_queue_wait_s']:>10}{gc_s:>7.3f}{p['wrk_cpu_s']:>10}")
    print(f"latency in ms; model calls for writes: {result['embedding']}; wrote {out}")
    if any(p["errors"] for p in results.values()):
        raise SystemExit("errors during the load test: " + str({k: p.get("error_kinds", p.get("error_samples"))
                                                               for k, p in results.items() if p["errors"]}))


def load_index_vectors(index_dir: Path, ids: list[str]) -> np.ndarray:
    """The vectors of `ids` from an index folder's snapshot (for the recall check).  -> (len(ids), d)"""
    from notellm.retrieval.index import VectorIndex

    manifest = json.loads((index_dir / "index.json").read_text())
    return VectorIndex.load(index_dir / manifest["snapshot"]).vectors(ids)


def profile_summary(raw: Path, top: int = 25) -> str:
    """Share of py-spy samples per function: self (innermost frame) and total (anywhere on the stack)."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [re.sub(r" \((.*/)?([^/]+):\d+\)$", r" (\2)", f) for f in stack.split(";")]
        n = int(count)
        samples += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + n
    if not samples:
        return f"py-spy: no samples in {raw}"
    lines = [f"py-spy: {samples} samples of the server ({raw}); share of samples, self | total"]
    for frame, n in sorted(own.items(), key=lambda t: -t[1])[:top]:
        lines.append(f"  {100 * n / samples:5.1f}% | {100 * total[frame] / samples:5.1f}%  {frame}")
    lines.append("  top inclusive:")
    for frame, n in sorted(total.items(), key=lambda t: -t[1])[:top]:
        lines.append(f"  {100 * n / samples:5.1f}%  {frame}")
    return "\n".join(lines)


def embed_batches(metrics_text: str) -> dict:
    """Mean notes per model call, from the server's Prometheus histogram (evidence of micro-batching)."""
    total = re.search(r"^notellm_embed_batch_notes_sum ([\d.e+]+)$", metrics_text, re.M)
    count = re.search(r"^notellm_embed_batch_notes_count ([\d.e+]+)$", metrics_text, re.M)
    if not total or not count or float(count.group(1)) == 0:
        return {"model_calls": 0}
    return {"model_calls": int(float(count.group(1))),
            "mean_notes_per_call": round(float(total.group(1)) / float(count.group(1)), 2)}


if __name__ == "__main__":
    main()
