"""A live server in a thread, Debian's Chromium for Playwright (never `playwright install`),
and axe-core (from npm, `scripts/setup.sh --test`) to check every page state a test visits."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from flask import Flask
from playwright.sync_api import Page, Route
from werkzeug.serving import make_server

from tests.services import REPO

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling home on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@cache
def _axe_source() -> str:
    if not AXE_JS.is_file():
        raise AssertionError(f"{AXE_JS} is missing: run `bash scripts/setup.sh --test` (npm ci)")
    return AXE_JS.read_text(encoding="utf-8")


# Every rule axe runs by default (WCAG 2.x A/AA and best practices: landmarks, headings...).
_RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({
      target: n.target.map((t) => [].concat(t).join(" >> ")).join(", "),
      summary: n.failureSummary || "",
    })),
  }));
}"""
# The HTML parser's scripting flag: off when the page runs without JavaScript (noscript parses).
_SCRIPTS_ON = """() => {
  const probe = document.createElement("div");
  probe.innerHTML = "<noscript><p></p></noscript>";
  return probe.querySelector("noscript p") === null;
}"""
_SCRIPT_TAG = re.compile(r"<script\b.*?</script>", re.DOTALL | re.IGNORECASE)


def _violations(page: Page) -> list[dict[str, Any]]:
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # Through the DevTools protocol: the page's Content-Security-Policy does not apply.
        page.evaluate(_axe_source())
    return page.evaluate(_RUN_AXE)


def _violations_without_scripts(page: Page) -> list[dict[str, Any]]:
    """axe needs timers, which a page without JavaScript never fires: check the same DOM
    (its scripts removed, so nothing changes it) at the same address in a scripted page."""
    html = _SCRIPT_TAG.sub("", page.content())
    assert page.context.browser is not None
    context = page.context.browser.new_context(viewport=page.viewport_size)
    try:
        twin = context.new_page()

        def serve(route: Route) -> None:
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

        address = page.url.split("#")[0]
        twin.route(lambda url: url.split("#")[0] == address, serve)
        twin.goto(page.url)
        return _violations(twin)
    finally:
        context.close()


def assert_accessible(page: Page, what: str = "") -> None:
    """axe-core finds no violation on the page as it is now: one call per distinct state."""
    scripted = page.evaluate(_SCRIPTS_ON)
    violations = _violations(page) if scripted else _violations_without_scripts(page)
    if not violations:
        return
    lines = [f"axe-core: {len(violations)} violation(s) on {what or page.url} ({page.url}):"]
    for v in violations:
        lines.append(f"- {v['id']} [{v['impact']}] {v['help']}")
        for node in v["nodes"]:
            lines.append(f"    {node['target']}")
            summary = " ".join(node["summary"].split())
            if summary:
                lines.append(f"      {summary[:300]}")
    raise AssertionError("\n".join(lines))
