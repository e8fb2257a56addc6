"""POST /notes latency while a long /generate runs (issue #13, case 8): the write path must not wait for it.

    python bench/bench_generate_contention.py                     # this tree
    PYTHONPATH=/path/to/older/tree python bench/bench_generate_contention.py   # the same against another tree

A test double stands in for the model: embedding is the hashing embedder (instant); generation costs a fixed
`--ms-per-note` of wall time per note (a sleep, so the figure does not depend on how loaded the CPU is). One
client thread sends /generate for `--notes` stored notes in a loop; another sends single-note POST /notes
requests and records each one's latency. Before the fix the model lock was held for the whole /generate request;
after, generation runs in chunks of `generate_chunk_notes` and a pending write goes between chunks.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=64)
    parser.add_argument("--ms-per-note", type=float, default=20.0)
    parser.add_argument("--writes", type=int, default=40)
    args = parser.parse_args()

    from fastapi.testclient import TestClient
    from serve_testkit import HashingEmbedder, planted_notes

    from notellm.serve.app import create_app
    from notellm.serve.config import ServeConfig
    from notellm.serve.store import LocalNoteIndex

    class SlowGenerator(HashingEmbedder):
        def generate_hashtags(self, notes, k=5, constrained=False, vocabulary=None):
            time.sleep(args.ms_per_note / 1000 * len(notes))
            return super().generate_hashtags(notes, k, constrained, vocabulary)

    model, notes = SlowGenerator(dim=32), planted_notes(per_topic=max(8, args.notes // 3 + 1))
    with tempfile.TemporaryDirectory() as tmp:
        index = LocalNoteIndex.open(LocalNoteIndex.create(Path(tmp) / "ix", notes, model.embed(notes)))
        knobs = {f.name for f in fields(ServeConfig)}
        cfg = ServeConfig(max_notes_per_request=256, embed_max_wait_ms=0,
                          **({"allowed_hosts": ["testserver"]} if "allowed_hosts" in knobs else {}))
        chunk = getattr(cfg, "generate_chunk_notes", None)
        ids = [n.note_id for n in notes[: args.notes]]
        latencies: list[float] = []
        stop = threading.Event()
        with TestClient(create_app(index, model, cfg)) as client:
            def generate_loop() -> None:
                while not stop.is_set():
                    assert client.post("/generate", json={"task": "hashtags", "note_ids": ids}).status_code == 200

            generator = threading.Thread(target=generate_loop)
            generator.start()
            time.sleep(0.2)
            for i in range(args.writes):
                started = time.perf_counter()
                response = client.post("/notes", json={"notes": [{"note_id": f"w{i}", "title": "espresso"}]})
                assert response.status_code == 200, response.text
                latencies.append(time.perf_counter() - started)
            stop.set()
            generator.join()
        index.close()
    ms = np.asarray(latencies) * 1000
    result = {"generate_notes": args.notes, "ms_per_note": args.ms_per_note, "generate_chunk_notes": chunk,
              "writes": args.writes, "post_notes_ms_p50": round(float(np.percentile(ms, 50)), 1),
              "post_notes_ms_p95": round(float(np.percentile(ms, 95)), 1),
              "post_notes_ms_max": round(float(ms.max()), 1),
              "loadavg": Path("/proc/loadavg").read_text().split()[:3]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
