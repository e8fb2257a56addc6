"""Error responses shared by the routers' OpenAPI documentation."""

from __future__ import annotations

from notellm.serve.schemas import ErrorOut

ERRORS = {404: {"model": ErrorOut, "description": "Unknown note id"},
          413: {"model": ErrorOut, "description": "Body too large"}}
