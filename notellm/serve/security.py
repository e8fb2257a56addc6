"""`SecurityHeadersMiddleware`: a Host-header allow-list (DNS rebinding) and a Content-Security-Policy.

Pure ASGI (no per-request objects beyond one header scan) so it costs next to nothing on the hot read path. The
service has no authentication and is meant to sit on loopback or behind a proxy: a page on another origin that
rebinds its DNS name to 127.0.0.1 reaches the service with its own name in `Host`, which is refused here (400).
The CSP allows scripts, styles and fetches from the service's own origin only, so even a link or text that
slipped past validation cannot run script in the page; the OpenAPI docs page (/docs, /redoc) loads Swagger UI
from its CDN with an inline bootstrap script and gets a policy that allows exactly that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
            "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")
_DOCS_PATHS = ("/docs", "/redoc")


def install_security(app, allowed: Iterable[str]) -> None:
    """Wire the Host check + CSP middleware and a 422 handler that can render any invalid input into `app`."""
    from fastapi.exceptions import RequestValidationError

    app.add_middleware(SecurityHeadersMiddleware, hosts=allowed_hosts(allowed))
    app.add_exception_handler(RequestValidationError, _validation_error)


async def _validation_error(_request, exc):
    """FastAPI's 422, rendered with ASCII escapes: the default echoes the input as UTF-8, and an input holding a
    lone surrogate (refused for exactly that reason) cannot be encoded, which turned the 422 into a 500."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import Response

    body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True, default=str)
    return Response(body, status_code=422, media_type="application/json")


def allowed_hosts(configured: Iterable[str], bound_host: str | None = None) -> frozenset[str]:
    """Host names (no port, lower case) the service answers: loopback names, the bound host, the configured ones.

    "*" among `configured` allows any host (for deployments behind a proxy that checks Host itself).
    """
    names = {h.strip().lower().strip("[]") for h in (*LOOPBACK_HOSTS, *configured) if h.strip()}
    if bound_host and bound_host not in ("0.0.0.0", "::"):
        names.add(bound_host.lower().strip("[]"))
    return frozenset(names)


def _host_name(value: bytes) -> str:
    """The name part of a Host header value ("[::1]:8000" -> "::1", "Example.org:80" -> "example.org")."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


class SecurityHeadersMiddleware:
    """Refuse requests whose Host is not allowed; add CSP and related headers to every HTTP response."""

    def __init__(self, app, hosts: frozenset[str]) -> None:
        self.app, self.hosts, self.any_host = app, hosts, "*" in hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.any_host:
            host = next((v for k, v in scope["headers"] if k == b"host"), b"")
            if _host_name(host) not in self.hosts:
                await _refuse(send, host)
                return
        csp = (DOCS_CSP if scope["path"].startswith(_DOCS_PATHS) else PAGE_CSP).encode("ascii")

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"content-security-policy", csp),
                                      (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                                      (b"x-frame-options", b"DENY")]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(send, host: bytes) -> None:
    shown = host[:100].decode("latin-1")
    body = json.dumps({"detail": f"Host header {shown!r} is not allowed; add the name to serve.allowed_hosts"}
                      ).encode("utf-8")
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
