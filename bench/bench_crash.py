"""Crash test of `notellm serve`: kill -9 the server in the middle of concurrent writes, restart, count notes.

    python bench/bench_crash.py --backbone tiny --rounds 3 --writers 8

Each round starts the real CLI server (FAISS backend, durable store, compaction every 50 log records so that
kills also land during compactions), lets W writer threads POST notes (2 per request) on 127.0.0.1, sends SIGKILL
after a random 2-5 s, restarts the server on the same index folder and asks it for every acknowledged note.
Acknowledged notes lost must be 0. Writes that were fsynced but whose reply the kill cut off may also be present
("unacknowledged but kept"): that is allowed. Writes JSON to bench/results/crash_<backbone>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import tempfile
import threading
import time
from pathlib import Path

import httpx
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


def write_until_killed(port: int, writers: int, round_no: int, kill_after: float, proc) -> tuple[list[str], int]:
    acked: list[str] = []
    attempted = [0]
    lock = threading.Lock()

    def writer(w: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for i in range(100_000):
                ids = [f"crash-r{round_no}-w{w}-{i}-{j}" for j in range(2)]
                notes = [{"note_id": n, "title": f"crash test note {n}", "content": "written while the server dies",
                          "hashtags": ["crash"], "category": "test"} for n in ids]
                with lock:
                    attempted[0] += 2
                try:
                    response = http.post("/notes", json={"notes": notes})
                except httpx.HTTPError:
                    return  # connection died with the server: not acknowledged
                if response.status_code == 200:
                    with lock:
                        acked.extend(response.json()["ids"])

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(writers)]
    for t in threads:
        t.start()
    time.sleep(kill_after)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for t in threads:
        t.join(timeout=60)
    return list(acked), attempted[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="tiny")
    parser.add_argument("--index-notes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "notellm-bench")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    rng = random.Random(args.seed)

    model_dir = save_model(args.backbone, args.workdir)
    index_dir = build_index(model_dir, stackexchange_notes(args.workdir, args.index_notes),
                            args.workdir / f"crash-index-{Path(args.backbone).name}")
    port, log = free_port(), args.workdir / "crash-server.log"
    extra = ["--set", "compact_every=50"]
    rounds = []
    all_acked: list[str] = []
    proc = start_server(model_dir, index_dir, port, extra, log=log)
    for r in range(args.rounds):
        before = httpx.get(f"http://127.0.0.1:{port}/health").json()["notes"]
        kill_after = rng.uniform(2.0, 5.0)
        acked, attempted = write_until_killed(port, args.writers, r, kill_after, proc)
        all_acked.extend(acked)
        t = time.perf_counter()
        proc = start_server(model_dir, index_dir, port, extra, log=log)
        restart_s = time.perf_counter() - t
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            lost = [n for n in all_acked if http.get(f"/notes/{n}").status_code != 200]
            after = http.get("/health").json()["notes"]
        rounds.append({"round": r, "kill_after_s": round(kill_after, 2), "notes_before": before,
                       "attempted": attempted, "acknowledged": len(acked), "notes_after": after,
                       "acknowledged_total": len(all_acked), "acknowledged_lost": len(lost),
                       "unacknowledged_but_kept": after - before - len(acked), "restart_s": round(restart_s, 1)})
        print(rounds[-1], flush=True)
    stop_server(proc)
    load_end = os.getloadavg()
    result = {"benchmark": "crash", "command": command_line(), "machine": machine(),
              "loadavg_start": [round(x, 2) for x in load_start], "loadavg_end": [round(x, 2) for x in load_end],
              "note": "server and writers share this machine's CPUs with other users' jobs",
              "backbone": args.backbone, "writers": args.writers, "rounds": rounds,
              "acknowledged_lost_total": sum(r["acknowledged_lost"] for r in rounds)}
    out = args.out or Path(__file__).parent / "results" / f"crash_{Path(args.backbone).name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nnotellm serve kill -9 test: {args.rounds} rounds, {args.writers} writers, backbone={args.backbone}, "
          f"{machine()['nproc']} CPUs ({machine()['cpu']}); load average {load_start[0]:.2f} -> {load_end[0]:.2f}")
    print(f"{'round':>5}{'kill at s':>10}{'acked':>8}{'lost':>6}{'kept unacked':>14}"
          f"{'notes after':>13}{'restart s':>11}")
    for r in rounds:
        print(f"{r['round']:>5}{r['kill_after_s']:>10}{r['acknowledged']:>8}{r['acknowledged_lost']:>6}"
              f"{r['unacknowledged_but_kept']:>14}{r['notes_after']:>13}{r['restart_s']:>11}")
    print(f"wrote {out}")
    if result["acknowledged_lost_total"]:
        raise SystemExit(f"LOST {result['acknowledged_lost_total']} acknowledged notes")


if __name__ == "__main__":
    main()
