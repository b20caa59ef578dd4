"""The accessibility check itself can fail, and says why, with and without JavaScript."""

from __future__ import annotations

import pytest

from tests.browser import assert_accessible

pytestmark = pytest.mark.browser

# An image without text and an empty link; a script that fixes the image when it runs.
_FLAWED = """<!doctype html><html lang="fr"><head><title>Essai</title></head><body>
<main><h1>Essai</h1><a id="vide" href="/ailleurs"></a><img id="sans-texte"></main>
<script>document.getElementById("sans-texte").alt = "corrigé par le script";</script>
</body></html>"""


@pytest.mark.parametrize("scripts", [True, False], ids=["javascript", "no-javascript"])
def test_a_flawed_page_fails_with_rule_impact_and_selector(browser, scripts):
    context = browser.new_context(java_script_enabled=scripts)
    page = context.new_page()
    page.route(
        "http://pochette.test/essai",
        lambda route: route.fulfill(content_type="text/html; charset=utf-8", body=_FLAWED),
    )
    page.goto("http://pochette.test/essai")
    with pytest.raises(AssertionError) as failure:
        assert_accessible(page, "la page d'essai")
    message = str(failure.value)
    assert "violation(s) on la page d'essai (http://pochette.test/essai)" in message
    assert "- link-name [serious]" in message and "    #vide" in message
    # Without JavaScript the script never ran: the image has no text, and that is reported too.
    assert ("- image-alt [critical]" in message) is not scripts
    context.close()
