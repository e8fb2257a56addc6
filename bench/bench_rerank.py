"""Re-ranking speed, notellm vs pyversity, in one run: MMR, DPP, SSD* at N = 100/1k/10k, k = 10/50, d = 64/128/256.

PYTHONPATH=. python bench/bench_rerank.py                       # full grid, writes bench/results/rerank.json
PYTHONPATH=. python bench/bench_rerank.py --quick               # N = 100, 1000 only

Where the algorithms coincide we also check that both pick the same items (read from pyversity 0.2 source):
- MMR:  ours `mmr(lam=λ, normalize_scores=False)` == `pyversity.mmr(diversity=1-λ)`; pyversity clips cosine to
  [0, 1], so they coincide when no pairwise cosine is negative. The bench data (Gaussian + a shared offset, like
  real sentence embeddings) has none; we verify that.
- DPP:  ours `dpp(alpha=β)` == `pyversity.dpp(diversity, scale=1)` with β = 1 - diversity: same kernel
  diag(e^{β z}) S diag(e^{β z}) on z-scored scores. pyversity never stops early; ours applies Chen's ε rule, so they
  differ only once the kernel's rank is exhausted (k > d), which this grid never reaches.
- SSD*: ours `ssd_star(theta=1-diversity, gamma, window=w)` == `pyversity.ssd(diversity, gamma, window=w-1)`
  (our window counts the new item); both no-eviction by default. The original product-form SSD and the
  sliding-window DPP have no pyversity counterpart; they are timed for ours only.
Timings: median of repeated calls after one warm-up, one request per call, float32, single process, BLAS limited to
one thread for both libraries (as in a serving worker, and because 2-thread BLAS on a loaded shared machine
measures scheduler stalls, not algorithms); export OPENBLAS_NUM_THREADS / OMP_NUM_THREADS to override.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads its BLAS

import numpy as np  # noqa: E402

from notellm.machine import cpu_model  # noqa: E402
from notellm.rerank import dpp, mmr, ssd, ssd_star  # noqa: E402

DIVERSITY = 0.5  # pyversity's knob; ours: λ = θ = β = 1 - DIVERSITY


def timeit(fn, budget_s: float) -> tuple[float, np.ndarray]:
    """Median ms per call over as many calls as fit in `budget_s` (at least 3), after one warm-up call."""
    out = fn()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget_s and len(times) < 200):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3), out


def data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = (rng.normal(size=(n, d)) + 1.0).astype(np.float32)  # shared offset: cosines ≈ 0.5, none negative
    return rng.random(n).astype(np.float32), emb


def cases(pv):
    lam = theta = beta = 1.0 - DIVERSITY
    yield (
        "mmr",
        (lambda s, e, k: mmr(s, e, k, lam=lam, normalize_scores=False)),
        ((lambda s, e, k: pv.mmr(e, s, k, diversity=DIVERSITY).indices) if pv else None),
    )
    yield (
        "dpp",
        (lambda s, e, k: dpp(s, e, k, alpha=beta)),
        ((lambda s, e, k: pv.dpp(e, s, k, diversity=DIVERSITY).indices) if pv else None),
    )
    yield (
        "ssd_star",
        (lambda s, e, k: ssd_star(s, e, k, theta=theta, gamma=1.0)),
        ((lambda s, e, k: pv.ssd(e, s, k, diversity=DIVERSITY, gamma=1.0).indices) if pv else None),
    )
    yield (
        "ssd_star w=10",
        (lambda s, e, k: ssd_star(s, e, k, theta=theta, gamma=1.0, window=10)),
        ((lambda s, e, k: pv.ssd(e, s, k, diversity=DIVERSITY, gamma=1.0, window=9).indices) if pv else None),
    )
    yield "ssd (product)", (lambda s, e, k: ssd(s, e, k, gamma=1.0)), None
    yield "dpp_window w=10", (lambda s, e, k: dpp(s, e, k, alpha=beta, window=10)), None


def batched_case(n_req: int, n: int, d: int, k: int, budget: float, pv) -> list[dict]:
    """Throughput for many requests: ours batched (R, N, d) in one call vs pyversity looping over requests."""
    rng = np.random.default_rng(1)
    emb = (rng.normal(size=(n_req, n, d)) + 1.0).astype(np.float32)
    scores = rng.random((n_req, n)).astype(np.float32)
    rows = []
    for name, ours, theirs in [
        (
            "mmr",
            lambda: mmr(scores, emb, k, lam=0.5, normalize_scores=False),
            lambda: [pv.mmr(emb[r], scores[r], k, diversity=0.5).indices for r in range(n_req)],
        ),
        (
            "dpp",
            lambda: dpp(scores, emb, k, alpha=0.5),
            lambda: [pv.dpp(emb[r], scores[r], k, diversity=0.5).indices for r in range(n_req)],
        ),
        (
            "ssd_star",
            lambda: ssd_star(scores, emb, k, theta=0.5),
            lambda: [pv.ssd(emb[r], scores[r], k, diversity=0.5).indices for r in range(n_req)],
        ),
    ]:
        ms_ours, got = timeit(ours, budget)
        ms_pv, want = timeit(theirs, budget) if pv else (float("nan"), None)
        same = None if want is None else bool(np.array_equal(got, np.stack(want)))
        rows.append(
            {
                "method": name,
                "requests": n_req,
                "N": n,
                "k": k,
                "d": d,
                "ours_ms": ms_ours,
                "pyversity_ms": ms_pv,
                "speedup": ms_pv / ms_ours,
                "identical": same,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 100 and 1000 only")
    ap.add_argument("--budget", type=float, default=0.6, help="seconds of timing per case and library")
    ap.add_argument("--out", type=Path, default=Path("bench/results/rerank.json"))
    args = ap.parse_args()
    try:
        import pyversity as pv

        pv_version = getattr(pv, "__version__", None) or __import__("importlib.metadata").metadata.version("pyversity")
    except ImportError:
        pv, pv_version = None, None
        print("pyversity not installed: timing notellm only (pip install pyversity)")
    load_start = os.getloadavg()
    started = time.time()
    rows = []
    sizes = [100, 1000] if args.quick else [100, 1000, 10000]
    header = f"{'method':<16}{'N':>7}{'k':>4}{'d':>5}{'ours ms':>10}{'pyversity ms':>14}{'speedup':>9}  identical"
    print(header)
    print("-" * len(header))
    for n in sizes:
        for k in (10, 50):
            for d in (64, 128, 256):
                scores, emb = data(n, d, seed=n + k + d)
                sims = emb[:200] / np.linalg.norm(emb[:200], axis=1, keepdims=True)
                min_cos = float((sims @ sims.T).min())
                for name, ours, theirs in cases(pv):
                    ms_ours, got = timeit(lambda: ours(scores, emb, k), args.budget)
                    if theirs is not None:
                        ms_pv, want = timeit(lambda: theirs(scores, emb, k), args.budget)
                        same = bool(np.array_equal(got, np.asarray(want)))
                    else:
                        ms_pv, same = float("nan"), None
                    row = {
                        "method": name,
                        "N": n,
                        "k": k,
                        "d": d,
                        "ours_ms": ms_ours,
                        "pyversity_ms": ms_pv,
                        "speedup": ms_pv / ms_ours,
                        "identical": same,
                        "min_cos_sample": min_cos,
                    }
                    rows.append(row)
                    ident = "-" if same is None else ("yes" if same else "NO")
                    print(
                        f"{name:<16}{n:>7}{k:>4}{d:>5}{ms_ours:>10.3f}{ms_pv:>14.3f}{row['speedup']:>9.2f}  {ident}",
                        flush=True,
                    )
    print("\nbatched: R requests in one call (ours) vs a loop of single calls (pyversity)")
    batched = batched_case(256, 100, 128, 10, args.budget * 2, pv) if pv else []
    for r in batched:
        print(
            f"{r['method']:<10} R={r['requests']} N={r['N']} k={r['k']} d={r['d']}: ours {r['ours_ms']:.1f} ms, "
            f"pyversity {r['pyversity_ms']:.1f} ms, speedup {r['speedup']:.1f}x, identical {r['identical']}"
        )
    load_end = os.getloadavg()
    meta = {
        "command": " ".join([sys.executable, *sys.argv]),
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "numpy": np.__version__,
        "blas_threads": {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "pyversity": pv_version,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "seconds": time.time() - started,
        "note": "shared machine: other engineers' jobs ran concurrently; see the load averages. Both libraries "
        "were timed interleaved in the same process, so the comparison is fair but absolute ms are noisy.",
    }
    print(f"\nmachine: {meta['nproc']} cores, {meta['cpu']}; load avg start {load_start}, end {load_end}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "single": rows, "batched": batched}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
