"""Run the service on an index folder with the hashing test embedder (a subprocess for the kill -9 and the worker
tests).

    python tests/serve/run_server.py INDEX_DIR PORT [COMPACT_EVERY] [WORKERS] [RELATED_CACHE_K]

WORKERS > 1 runs `serve_workers` (this process writes, WORKERS read-only processes follow its log), as
`notellm serve --workers` does.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import uvicorn  # noqa: E402
from serve_testkit import HashingEmbedder  # noqa: E402

from notellm.serve.app import create_app  # noqa: E402
from notellm.serve.config import ServeConfig  # noqa: E402
from notellm.serve.store import LocalNoteIndex  # noqa: E402
from notellm.serve.workers import serve_workers  # noqa: E402

if __name__ == "__main__":
    index_dir, port = sys.argv[1], int(sys.argv[2])
    compact_every = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    cfg = ServeConfig(compact_every=compact_every, related_cache_k=int(sys.argv[5]) if len(sys.argv) > 5 else 0)
    index = LocalNoteIndex.open(index_dir, compact_every=compact_every)
    app = create_app(index, HashingEmbedder(dim=32), cfg)
    try:
        if workers > 1:
            serve_workers(app, Path(index_dir), cfg, workers=workers, host="127.0.0.1", port=port,
                          log_level="warning")
        else:
            uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        index.close()
