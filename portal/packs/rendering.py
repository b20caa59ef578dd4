"""HTML to PDF for the pack's own pages (cover, values, guide, checklist), with WeasyPrint.

One way in, `render_pdf`, and one URL fetcher: the pack's HTML may reference the app's static
files (its stylesheet) and nothing else. No `file:` URL, no network, no `data:` URL, no path
that climbs out of `portal/static`: a refused URL stops the rendering (it can only come from a
bug or from user text that escaped its escaping, and both must fail loudly, never fetch).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import segno
from flask import current_app
from jinja2 import Environment, FileSystemLoader, Template

if TYPE_CHECKING:
    from portal.packs.content import PackContent

STATIC_DIR = (Path(__file__).resolve().parent.parent / "static").resolve()
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_PREFIX = "/static/"
# A scheme urllib does not join relative references against: "/static/css/pack.css" reaches
# the fetcher exactly as written in the HTML, and anything else stays recognisably foreign.
BASE_URL = "pochette-pack:"
# What the pack's pages may load; anything else (HTML, scripts...) is refused.
ALLOWED_TYPES = {
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
}


class RefusedURL(ValueError):
    """A URL the pack's renderer will not fetch."""


def static_path(url: str) -> Path:
    """The file under portal/static that `url` ("/static/css/pack.css") names, or RefusedURL."""
    if not isinstance(url, str) or not url.startswith(STATIC_PREFIX):
        raise RefusedURL(f"only {STATIC_PREFIX} URLs are served: {url[:80]!r}")
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or parts.query or parts.fragment:
        raise RefusedURL(f"not a plain static path: {url[:80]!r}")
    relative = unquote(parts.path[len(STATIC_PREFIX) :])
    pieces = relative.split("/")
    if any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in pieces):
        raise RefusedURL(f"not a plain static path: {url[:80]!r}")
    path = (STATIC_DIR / relative).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        raise RefusedURL(f"no such static file: {url[:80]!r}")
    if path.suffix.lower() not in ALLOWED_TYPES:
        raise RefusedURL(f"file type not served to the pack: {url[:80]!r}")
    return path


@cache
def _import_weasyprint() -> None:
    """Import WeasyPrint once, and undo the global it flips on import.

    `weasyprint.images` sets Pillow's process-wide `ImageFile.LOAD_TRUNCATED_IMAGES = True`.
    Left so, every later decode in the same process (upload screening in the embedded mode,
    normalisation in the worker) would accept cut JPEGs instead of refusing them. Packs only
    draw our own static files, which are never truncated, so the strict default costs nothing.
    """
    import weasyprint  # noqa: F401
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False


@cache
def _fetcher_type() -> type:
    """Built on first use: importing WeasyPrint costs half a second, only the worker needs it."""
    _import_weasyprint()
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnlyFetcher(URLFetcher):  # type: ignore[misc]
        """WeasyPrint's fetcher, reduced to reading portal/static (WeasyPrint 70 API)."""

        def __init__(self) -> None:
            # fail_on_errors: a refusal stops the render instead of a silent warning.
            super().__init__(allowed_protocols=(), allow_redirects=False, fail_on_errors=True)

        def fetch(self, url: str, headers: Any = None) -> Any:
            path = static_path(url)
            content_type = ALLOWED_TYPES[path.suffix.lower()]
            headers = {"Content-Type": content_type}
            return URLFetcherResponse(url, path.read_bytes(), headers=headers)

        def open(self, url: Any, data: Any = None, timeout: Any = None) -> Any:
            # Never urllib's handlers: everything goes through fetch above.
            return self.fetch(getattr(url, "full_url", url))

    return StaticOnlyFetcher


def url_fetcher() -> Any:
    """A new fetcher for one render (WeasyPrint keeps per-request state on it)."""
    return _fetcher_type()()


def render_pdf(html: str) -> bytes:
    """The PDF of `html`; its relative URLs resolve only to the app's static files."""
    _import_weasyprint()
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError

    try:
        document = HTML(string=html, base_url=BASE_URL, url_fetcher=url_fetcher())
        return document.write_pdf()
    except FatalURLFetchingError as exc:
        # A BaseException in WeasyPrint: turned into an ordinary error the job can report.
        raise RefusedURL(str(exc)) from exc


# --- the pack's sections -----------------------------------------------------------------


def _environment() -> Environment:
    """The app's Jinja environment (gettext, filters), reading only the pack templates.

    Autoescape is forced on whatever the file name: user text (names, labels, reasons,
    file names) is always escaped; the QR code's SVG is the one `|safe` value.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    env = app.extensions.get("pochette.pack_templates")
    if env is None:
        env = app.jinja_env.overlay(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True)
        app.extensions["pochette.pack_templates"] = env
    return env


def template(name: str) -> Template:
    return _environment().get_template(name)


def qr_svg(url: str) -> str:
    """Inline SVG of a QR code for `url` (the catalog's or the app's, never user input)."""
    return segno.make(url, error="m").svg_inline(scale=4, border=2, svgclass="qr", lineclass=None)


def sections_html(content: PackContent) -> str:
    return template("packs/pdf/pack.html").render(
        pack=content, qr=qr_svg(content.portal_url), link_qr=qr_svg(content.link_page)
    )


def render_sections(content: PackContent) -> bytes:
    """Cover, values to type, filing guide and checklist, one PDF; each section bookmarked."""
    return render_pdf(sections_html(content))
