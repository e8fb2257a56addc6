"""The web page in real headless Chromium: search, related notes, diversify toggle, generate, add a note, find it.

    PYTHONPATH=. python -m pytest tests/serve/test_serve_browser.py -q
Needs Debian's chromium at /usr/bin/chromium (`apt-get install -y chromium`); skipped with that reason otherwise.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from notellm.serve.app import create_app
from notellm.serve.store import LocalNoteIndex

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install -y chromium)"),
]


@pytest.fixture
def server_url(index_dir, embedder, serve_cfg):
    index = LocalNoteIndex.open(index_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(index, embedder, serve_cfg, model_name="hashing"),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    index.close()


def test_page_end_to_end(server_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server_url + "/")
        expect(page.locator("#health")).to_contain_text("24 notes")

        page.fill("#search-input", "quantum qubit")
        page.click("#search-form button")
        results = page.locator("#search-results li")
        expect(results.first).to_contain_text("quantum qubit")
        assert all("quantum qubit" in t for t in results.all_inner_texts())

        results.first.click()
        expect(page.locator("#note-title")).to_contain_text("quantum qubit")
        related = page.locator("#related li")
        expect(related).to_have_count(10)
        categories = page.locator("#related li .category").all_inner_texts()
        assert categories[:3] == ["quantum"] * 3  # the nearest notes share the planted topic
        plain_order = related.all_inner_texts()

        page.select_option("#diversify", "mmr")
        expect(page.locator("#related")).to_have_attribute("data-diversify", "mmr")
        expect(related).to_have_count(10)
        assert related.all_inner_texts() != plain_order  # the diversified list differs

        page.click("#generate-btn")
        expect(page.locator("#generated")).to_contain_text("generated: #")
        expect(page.locator("#generated")).to_contain_text("category: quantum")

        page.fill("#add-id", "web-1")
        page.fill("#add-title", "Steaming milk for a flat white")
        page.fill("#add-content", "espresso crema milk steaming")
        page.fill("#add-hashtags", "coffee, milk")
        page.fill("#add-category", "coffee")
        page.fill("#add-url", "https://coffee.stackexchange.com/q/1")
        page.click("#add-form button")
        expect(page.locator("#add-status")).to_contain_text("saved web-1 (25 notes)")
        expect(page.locator("#search-results li").first).to_contain_text("Steaming milk for a flat white")
        page.locator("#search-results li").first.click()
        expect(page.locator("#note-title")).to_have_text("Steaming milk for a flat white")
        expect(page.locator("#note-source a")).to_have_attribute("href", "https://coffee.stackexchange.com/q/1")
        expect(related.first).to_be_visible()
        assert "coffee" in page.locator("#related li .category").all_inner_texts()

        page.screenshot(path=str(tmp_path / "notellm_page.png"), full_page=True)
        browser.close()
    assert (tmp_path / "notellm_page.png").stat().st_size > 10_000
