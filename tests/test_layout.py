"""What every page carries in its head: the favicon (no 404 on each page view)."""

from __future__ import annotations

import re

_ICON = re.compile(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">')


def test_staff_and_client_pages_name_a_favicon_that_is_served(app):
    http = app.test_client()
    staff = http.get("/connexion").get_data(as_text=True)  # base.html
    client = http.get("/l/" + "A" * 32).get_data(as_text=True)  # the client's base_public.html
    for page in (staff, client):
        found = _ICON.search(page)
        assert found and found.group(1) == "/static/favicon.svg"
    icon = http.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.get_data(as_text=True).startswith('<svg xmlns="http://www.w3.org/2000/svg"')
