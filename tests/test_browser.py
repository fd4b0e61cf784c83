"""The chat page in headless Chromium: type a question, wait for the answer, check it, keep a screenshot."""

from __future__ import annotations

import shutil

import pytest

from contoso_chat.serving import tokens as sign_in
from contoso_chat.backends.settings import resolve
from contoso_chat.paths import build_dir
from contoso_chat.serving.local_service import start_service, stop_service

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]

pytestmark = pytest.mark.skipif(not shutil.which("chromium"),
                                reason="Debian's chromium is not installed (make test installs it when run as root)")


def test_chat_page_shows_the_answer_and_its_citations():
    from playwright.sync_api import sync_playwright

    token = sign_in.issue_token("C1001", sign_in.signing_secret(resolve({})))
    service = start_service()
    screenshot = build_dir() / "screenshots" / "chat_page.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1000, "height": 760})
            page.goto(f"{service.url}/#token={token}")
            assert "token=" not in page.url, "the token must leave the address bar"
            page.fill("#question", "How much does the Summit Dome 2 Tent weigh when packed?")
            with page.expect_response("**/api/chat", timeout=120_000) as reply:
                page.click("#send")
            body = reply.value.json()
            answer = page.wait_for_selector("#messages li.assistant", timeout=30_000)
            text = answer.inner_text()
            page.screenshot(path=str(screenshot), full_page=True)
            browser.close()
    finally:
        stop_service()
    shown = " ".join(text.split())
    assert body["answer"].strip() and " ".join(body["answer"].split()) in shown
    # the page shows the sources the service returned, and none when it returned none
    if body["citations"]:
        assert "Sources: " + ", ".join(body["citations"]) in shown
    else:
        assert "Sources:" not in shown
    assert screenshot.stat().st_size > 10_000
