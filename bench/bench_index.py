"""Benchmark the VectorIndex backends (exact flat = numpy brute force, HNSW, IVF) on random unit vectors: build
time, query throughput and recall@k against exact search.

    PYTHONPATH=. python bench/bench_index.py --n 100000 --dim 128 --queries 1000 --k 10 --out bench/index.json

The machine is shared: the load average at start and end is recorded next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from notellm.machine import cpu_model  # noqa: E402
from notellm.retrieval.exact import l2_normalize
from notellm.retrieval.index import IndexConfig, VectorIndex
from notellm.retrieval.vectors import NoteVectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--kinds", default="flat,hnsw,ivf", help="Comma-separated index kinds; flat runs first.")
    parser.add_argument("--out", default="bench/index.json")
    args = parser.parse_args()
    load_start = os.getloadavg()
    rng = np.random.default_rng(0)
    # clustered data (random unit vectors are a worst case for ANN): 1,000 centres plus noise
    centres = rng.standard_normal((1000, args.dim))
    data = l2_normalize(centres[rng.integers(0, 1000, args.n)] + 0.5 * rng.standard_normal((args.n, args.dim)))
    vectors = NoteVectors([str(i) for i in range(args.n)], data)
    queries = l2_normalize(centres[rng.integers(0, 1000, args.queries)]
                           + 0.5 * rng.standard_normal((args.queries, args.dim)))
    exact = None
    rows = []
    for kind in ["flat"] + [k for k in args.kinds.split(",") if k != "flat"]:  # flat = the exact reference
        t0 = time.perf_counter()
        index = VectorIndex.build(vectors, IndexConfig(kind=kind))
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, labels = index.search(queries, args.k)
        search = time.perf_counter() - t0
        if exact is None:
            exact = labels
        recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(labels.tolist(), exact.tolist())])
        rows.append({"kind": kind, "build_s": round(build, 3), "qps": round(args.queries / search, 1),
                     "recall_at_k_vs_exact": round(float(recall), 4)})
    result = {
        "command": " ".join([sys.executable, *sys.argv]), "nproc": os.cpu_count(), "cpu": cpu_model(),
        "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
        "note": "shared machine: other processes were running; figures are lower bounds",
        "n": args.n, "dim": args.dim, "queries": args.queries, "k": args.k, "rows": rows,
    }
    print(f"{'kind':<6} {'build s':>9} {'QPS':>10} {'recall@k':>9}")
    for r in rows:
        print(f"{r['kind']:<6} {r['build_s']:>9.3f} {r['qps']:>10.1f} {r['recall_at_k_vs_exact']:>9.4f}")
    print(f"nproc {result['nproc']}, {result['cpu']}, loadavg start {load_start} end {result['loadavg_end']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
