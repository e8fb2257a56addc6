"""`JSONBytes`: a JSON response encoded by orjson from plain dicts and lists.

Hot routes build their body as plain Python data (already in the shape of their documented `response_model`) and
return this, skipping FastAPI's per-item pydantic validation and the standard-library encoder; the schemas still
document the routes in OpenAPI.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response


class JSONBytes(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
