"""Issue #13 case 4: no script from data (urls, CSP) and no DNS rebinding (Host allow-list), on both backends."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from fastapi.testclient import TestClient

from notellm.data.schema import Note
from notellm.serve.app import WEB_DIR, create_app
from notellm.serve.config import ServeConfig
from notellm.serve.security import allowed_hosts


def test_a_foreign_host_header_is_refused(client):
    assert client.get("/health", headers={"host": "attacker.example:8000"}).status_code == 400
    assert client.get("/notes/coffee-0", headers={"host": "rebind.attacker.example"}).status_code == 400
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert client.get("/health", headers={"host": host}).status_code == 200


def test_configured_and_bound_hosts_are_answered(backend, embedder):
    assert allowed_hosts(["notes.internal"]) >= {"localhost", "127.0.0.1", "::1", "notes.internal"}
    assert "0.0.0.0" not in allowed_hosts([], bound_host="0.0.0.0")
    cfg = ServeConfig(allowed_hosts=["notes.internal"])
    with TestClient(create_app(backend, embedder, cfg), base_url="http://notes.internal") as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health", headers={"host": "other.example"}).status_code == 400


def test_every_response_carries_a_content_security_policy(client):
    for path in ("/", "/health", "/notes/coffee-0", "/static/app.js"):
        policy = client.get(path).headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
    assert client.get("/").headers["x-content-type-options"] == "nosniff"


def test_non_http_urls_never_reach_the_page(client):
    body = {"notes": [{"note_id": "x1", "title": "t", "url": "javascript:alert(document.domain)"}]}
    response = client.post("/notes", json=body)
    assert response.status_code == 422 and "url" in response.text
    assert Note(note_id="a", title="t", content="", extra={"url": "javascript:alert(1)"}).url == ""
    assert Note(note_id="a", title="t", content="", extra={"url": "https://ok.org/1"}).url == "https://ok.org/1"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_page_only_links_http_urls():
    source = (WEB_DIR / "app.js").read_text(encoding="utf-8")
    start = source.index("function safeHttpUrl")
    function = source[start : source.index("\n}\n", start) + 3]
    cases = ["https://ok.org/q/1", "http://ok.org", "javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x",
             "vbscript:x", "/relative", "not a url"]
    script = function + f"console.log(JSON.stringify({json.dumps(cases)}.map(safeHttpUrl)));"
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(out) == ["https://ok.org/q/1", "http://ok.org/", None, None, None, None, None, None]
