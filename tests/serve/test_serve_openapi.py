"""docs/openapi.json is exactly the schema the app serves (regenerate: python -m notellm.serve.openapi).

    PYTHONPATH=. python -m pytest tests/serve/test_serve_openapi.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

from notellm.serve.openapi import openapi_document, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_checked_in_schema_matches_the_app():
    assert DOC.is_file(), "docs/openapi.json missing: run `python -m notellm.serve.openapi docs/openapi.json`"
    assert DOC.read_text(encoding="utf-8") == render(openapi_document()), (
        "docs/openapi.json is stale: run `PYTHONPATH=. python -m notellm.serve.openapi docs/openapi.json`")


def test_served_schema_is_the_same_document(client):
    assert client.get("/openapi.json").json() == json.loads(DOC.read_text(encoding="utf-8"))
    paths = set(json.loads(DOC.read_text(encoding="utf-8"))["paths"])
    assert {"/notes/{note_id}/related", "/notes/{note_id}", "/notes", "/embed", "/generate", "/health",
            "/metrics"} <= paths
    assert client.get("/docs").status_code == 200
