"""Benchmark co-occurrence pair mining on a synthetic power-law behaviour log.

    PYTHONPATH=. python bench/bench_mining.py --events 10000000 --notes 1000000 --out bench/results/mining.json

Users and notes are drawn with Zipf-like popularity (p_i ∝ 1/(i+1)^alpha), timestamps uniformly over one week
(the paper mines one week of logs). Only `mine_pairs_with_stats` is timed; generating the log is reported apart.
Peak RSS is the process's `ru_maxrss` (it includes the generated log itself); the RSS just before mining is
printed too, so the difference is what mining added. The machine is shared: the load average at start and end is
recorded, and wall times on a busy machine are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from notellm.data.mining import MiningConfig, mine_pairs_with_stats
from notellm.machine import cpu_model  # noqa: E402


def _rss_mib() -> float:
    """Current resident set size (MiB) from /proc/self/statm."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (less sensitive than wall time to other jobs on the machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _zipf_choice(rng: np.random.Generator, n_items: int, size: int, alpha: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n_items + 1, dtype=np.float64) ** alpha
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    picks = np.searchsorted(cdf, rng.random(size), side="right")  # (size,)
    return rng.permutation(n_items)[np.minimum(picks, n_items - 1)]  # popularity not tied to id order


def synthetic_log(
    n_events: int, n_notes: int, n_users: int, alpha_users: float, alpha_notes: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A power-law log: (events with user_id, note_id, timestamp, action, weight; notes with note_id, category)."""
    rng = np.random.default_rng(seed)
    users = _zipf_choice(rng, n_users, n_events, alpha_users)
    notes = _zipf_choice(rng, n_notes, n_events, alpha_notes)
    start = pd.Timestamp("2024-01-01", tz="UTC").value
    week = 7 * 24 * 3600 * 10**9
    ts = start + rng.integers(0, week, n_events)
    note_ids = "n" + pd.Series(np.arange(n_notes)).astype("str")  # pandas' compact (Arrow-backed) strings
    events = pd.DataFrame(
        {
            "user_id": "u" + pd.Series(users).astype("str"),
            "note_id": note_ids.take(notes).reset_index(drop=True),
            "timestamp": pd.to_datetime(ts, utc=True),
            "action": "click",
            "weight": 1.0,
        }
    )
    notes_df = pd.DataFrame({"note_id": note_ids, "category": "c" + pd.Series(np.arange(n_notes) % 50).astype("str")})
    return events, notes_df


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--notes", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=None, help="default: events / 20")
    parser.add_argument("--alpha-users", type=float, default=0.8)
    parser.add_argument("--alpha-notes", type=float, default=0.9)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--max-gap", default=None)
    parser.add_argument("--chunk-events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/mining.json"))
    args = parser.parse_args(argv)
    n_users = args.users or max(args.events // 20, 1)

    load_start = os.getloadavg()
    t0 = time.perf_counter()
    events, notes = synthetic_log(args.events, args.notes, n_users, args.alpha_users, args.alpha_notes, args.seed)
    gen_s = time.perf_counter() - t0
    rss_before = _rss_mib()
    cfg = MiningConfig(window=args.window, max_gap=args.max_gap, chunk_events=args.chunk_events)
    t1, cpu1 = time.perf_counter(), _cpu_seconds()
    pairs, stats = mine_pairs_with_stats(events, notes, cfg, progress=True)
    mine_s, mine_cpu = time.perf_counter() - t1, _cpu_seconds() - cpu1
    load_end = os.getloadavg()

    result = {
        "command": "PYTHONPATH=. python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": cpu_model(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
        "shared_machine_note": "other engineers' jobs share these CPUs; see the load averages",
        "events": args.events,
        "notes": args.notes,
        "users": n_users,
        "config": {"window": args.window, "max_gap": args.max_gap, "chunk_events": args.chunk_events},
        "generate_seconds": round(gen_s, 2),
        "mine_seconds": round(mine_s, 2),
        "mine_cpu_seconds": round(mine_cpu, 2),
        "events_per_second": round(args.events / mine_s),
        "rss_before_mining_mib": round(rss_before, 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "mining_stats": stats,
        "pairs": len(pairs),
    }
    rows = [
        ("events", f"{args.events:,}"),
        ("notes", f"{args.notes:,}"),
        ("users", f"{n_users:,}"),
        ("window / max_gap", f"{args.window} / {args.max_gap}"),
        ("generate log (s)", f"{gen_s:.1f}"),
        ("mine pairs, wall (s)", f"{mine_s:.1f}"),
        ("mine pairs, CPU user+sys (s)", f"{mine_cpu:.1f}"),
        ("candidate pairs", f"{stats['candidate_pairs']:,}"),
        ("pairs kept", f"{len(pairs):,}"),
        ("RSS before mining (MiB)", f"{rss_before:,.0f}"),
        ("peak RSS (MiB)", f"{_peak_rss_mib():,.0f}"),
        ("load avg start / end", f"{load_start[0]:.2f} / {load_end[0]:.2f}"),
        ("machine", f"{os.cpu_count()} CPUs, {cpu_model()}"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
