"""The service's OpenAPI document, as served at /openapi.json; `docs/openapi.json` is this, checked in.

Regenerate after changing the API (a test fails until you do):

    PYTHONPATH=. python -m notellm.serve.openapi docs/openapi.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def openapi_document() -> dict:
    """The OpenAPI schema of `create_app` with the default ServeConfig (no index or model needed)."""
    from notellm.serve.app import create_app

    return create_app(index=None, model=None).openapi()  # the schema never touches index or model


def render(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/openapi.json")
    out.write_text(render(openapi_document()), encoding="utf-8")
    print(f"wrote {out}")
