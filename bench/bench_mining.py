"""Benchmark co-occurrence pair mining with each engine (pandas, DuckDB, Spark) on a synthetic power-law log.

    PYTHONPATH=. python bench/bench_mining.py --events 10000000 --notes 1000000 --engines pandas,duckdb,spark
    PYTHONPATH=. python bench/bench_mining.py --events 100000000 --notes 10000000 --engines duckdb \
        --duckdb-memory-limit 6GB

The log (users and notes drawn with Zipf-like popularity p_i ∝ 1/(i+1)^alpha, timestamps uniform over one week, as
the paper mines one week) is written once to Parquet under --workdir in chunks (memory stays ~1 GiB whatever its
size) and reused by later runs with the same parameters; it is never committed. Each engine then runs in a fresh
child process that reads that Parquet and mines it (`mine_with_engine`: pandas reads the file into memory, DuckDB
streams it, Spark reads it on its executors). Measured from outside, over the child's whole process tree (Spark's
JVM included): wall time, CPU time (user + system) and peak resident memory (sum over the tree, sampled every
0.1 s). The engines' pairs are compared (count and a digest of ids and 9-decimal scores). The machine is shared:
the load average is recorded, and wall times on a busy machine are upper bounds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
CHUNK = 5_000_000  # events generated per Parquet row group


def _zipf_sampler(rng: np.random.Generator, n_items: int, alpha: float):
    """A function drawing item ids with p_i ∝ 1/(i+1)^alpha; popularity not tied to id order."""
    weights = 1.0 / np.arange(1, n_items + 1, dtype=np.float64) ** alpha
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    perm = rng.permutation(n_items)
    return lambda size: perm[np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), n_items - 1)]


def write_synthetic_log(folder: Path, n_events: int, n_notes: int, n_users: int, alpha_users: float,
                        alpha_notes: float, seed: int) -> Path:
    """notes.parquet (note_id, category) and events.parquet (user_id, note_id, timestamp ns UTC, action, weight)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "DONE"
    if done.is_file():
        return folder
    rng = np.random.default_rng(seed)
    note_ids = pa.array(np.char.add("n", np.arange(n_notes).astype(str)))
    pq.write_table(pa.table({"note_id": note_ids, "category": pa.array(
        np.char.add("c", (np.arange(n_notes) % 50).astype(str)))}), folder / "notes.parquet")
    users, notes = _zipf_sampler(rng, n_users, alpha_users), _zipf_sampler(rng, n_notes, alpha_notes)
    start = pd.Timestamp("2024-01-01", tz="UTC").value
    week = 7 * 24 * 3600 * 10**9
    ns_utc = pa.timestamp("ns", tz="UTC")
    schema = pa.schema([("user_id", pa.string()), ("note_id", pa.string()), ("timestamp", ns_utc),
                        ("action", pa.string()), ("weight", pa.float64())])
    with pq.ParquetWriter(folder / "events.parquet", schema) as writer:
        for begin in range(0, n_events, CHUNK):
            size = min(CHUNK, n_events - begin)
            u = np.char.add("u", users(size).astype(str))
            writer.write_table(pa.table({
                "user_id": pa.array(u), "note_id": note_ids.take(pa.array(notes(size))),
                "timestamp": pa.array(start + rng.integers(0, week, size), pa.timestamp("ns", tz="UTC")),
                "action": pa.array(["click"] * size), "weight": pa.array(np.ones(size)),
            }, schema=schema))
    (folder / "manifest.json").write_text("{}")
    done.write_text("ok")
    return folder


def run_engine(folder: Path, engine: str, window: int, max_gap: str | None, duckdb_memory: str,
               spark_master: str, spark_conf: list[str]) -> dict:
    """In the child process: mine with one engine; pairs digest and counts on stdout as JSON."""
    from notellm.data.mining import MiningConfig
    from notellm.data.mining_engine import DuckDBSettings, SparkSettings, mine_with_engine, open_engine
    from notellm.spark_session import parse_conf

    notes = pd.read_parquet(folder / "notes.parquet")
    cfg = MiningConfig(window=window, max_gap=max_gap)
    miner = open_engine(engine, folder, notes, duckdb=DuckDBSettings(memory_limit=duckdb_memory,
                                                                      temp_directory=str(folder / "duckdb_tmp")),
                        spark=SparkSettings(master=spark_master, conf=parse_conf(spark_conf)))
    try:
        pairs, stats = mine_with_engine(miner, notes, cfg)
    finally:
        miner.close()
    digest = hashlib.sha256()
    for column in ("note_id_a", "note_id_b"):
        digest.update("\x1f".join(pairs[column].astype(str)).encode())
    digest.update(np.rint(pairs["score"].to_numpy() * 1e9).astype(np.int64).tobytes())
    return {"pairs": len(pairs), "pairs_sha256": digest.hexdigest(), "stats": stats}


def _measure(cmd: list[str], timeout_s: float) -> dict:
    """Run `cmd`; wall, CPU (whole process tree) and peak tree RSS sampled every 0.1 s."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    root = psutil.Process(proc.pid)
    cpu: dict[int, float] = {}
    peak = 0
    while proc.poll() is None:
        if time.perf_counter() - started > timeout_s:
            for p in [root, *root.children(recursive=True)]:
                p.kill()
            raise TimeoutError(f"{cmd} ran past {timeout_s} s")
        rss = 0
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for p in tree:
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    cpu[p.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        peak = max(peak, rss)
        time.sleep(0.1)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(wall_seconds=round(wall, 1), cpu_seconds=round(sum(cpu.values()), 1),
                  peak_tree_rss_gib=round(peak / 2**30, 2))
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--notes", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=None, help="default: events / 20")
    parser.add_argument("--alpha-users", type=float, default=0.8)
    parser.add_argument("--alpha-notes", type=float, default=0.9)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--max-gap", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engines", default="pandas,duckdb,spark")
    parser.add_argument("--duckdb-memory-limit", default="6GB")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--spark-conf", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=600, help="seconds per engine run")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/notellm-bench-mining"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--run-engine", default=None, help=argparse.SUPPRESS)  # internal: the measured child
    args = parser.parse_args(argv)
    n_users = args.users or max(args.events // 20, 1)
    folder = args.workdir / (f"e{args.events}_n{args.notes}_u{n_users}_a{args.alpha_users}_{args.alpha_notes}"
                             f"_s{args.seed}")
    if args.run_engine:
        print(json.dumps(run_engine(folder, args.run_engine, args.window, args.max_gap, args.duckdb_memory_limit,
                                    args.spark_master, args.spark_conf)))
        return {}
    from notellm.machine import cpu_model

    t0 = time.perf_counter()
    write_synthetic_log(folder, args.events, args.notes, n_users, args.alpha_users, args.alpha_notes, args.seed)
    gen_s = time.perf_counter() - t0
    argv_list = list(argv if argv is not None else sys.argv[1:])
    result: dict = {
        "command": "PYTHONPATH=. python bench/bench_mining.py " + shlex.join(argv_list),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "memory_gib": round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "shared_machine_note": "other engineers' jobs share these CPUs; see the load averages",
        "events": args.events, "notes": args.notes, "users": n_users,
        "config": {"window": args.window, "max_gap": args.max_gap, "duckdb_memory_limit": args.duckdb_memory_limit,
                   "spark_master": args.spark_master, "spark_conf": args.spark_conf},
        "generate_seconds": round(gen_s, 1),
        "events_parquet_gib": round((folder / "events.parquet").stat().st_size / 2**30, 2),
        "engines": {},
    }
    for engine in args.engines.split(","):
        load_start = os.getloadavg()
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv_list, "--run-engine", engine]
        try:
            run = _measure(cmd, args.timeout)
        except (RuntimeError, TimeoutError) as exc:
            run = {"error": str(exc)[-2000:]}
        run["loadavg_start"] = [round(x, 2) for x in load_start]
        run["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        result["engines"][engine] = run
        print(engine, json.dumps({k: v for k, v in run.items() if k != "stats"}), flush=True)
    digests = {e: r.get("pairs_sha256") for e, r in result["engines"].items() if "pairs_sha256" in r}
    result["identical_pairs"] = len(set(digests.values())) == 1 if digests else None
    out = args.out or REPO / "bench" / "results" / f"mining_{args.events}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    if previous.get("events") == args.events and previous.get("notes") == args.notes:
        result["engines"] = {**previous.get("engines", {}), **result["engines"]}  # runs of other engines stay
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
