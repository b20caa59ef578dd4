"""Dates in words: « 1er janvier », never « 1 janvier », in every template, e-mail and format."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from flask import render_template_string
from flask_babel import force_locale

from portal.dates import format_date, format_datetime
from portal.documents import links
from tests import factories

NEW_YEAR = date(2027, 1, 1)  # a Friday


@pytest.fixture
def request_ctx(app):
    with app.test_request_context():
        yield


@pytest.mark.parametrize(
    ("format", "expected"),
    [
        ("long", "1er janvier 2027"),
        ("full", "vendredi 1er janvier 2027"),
        ("medium", "1er janv. 2027"),
        ("short", "01/01/2027"),
    ],
)
def test_the_first_of_the_month_is_written_1er_in_french(request_ctx, format, expected):
    with force_locale("fr"):
        assert format_date(NEW_YEAR, format) == expected


def test_other_days_and_other_languages_are_left_as_babel_writes_them(request_ctx):
    with force_locale("fr"):
        assert format_date(date(2027, 1, 2), "long") == "2 janvier 2027"
        assert format_date(date(2027, 1, 11), "long") == "11 janvier 2027"
        assert format_date(date(2027, 1, 21), "full") == "jeudi 21 janvier 2027"
    with force_locale("en"):
        assert format_date(NEW_YEAR, "long") == "January 1, 2027"


def test_a_moment_is_dated_in_paris_time_before_choosing_1er(request_ctx):
    # 23:30 UTC on 31 December is already 1 January in Paris.
    moment = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    with force_locale("fr"):
        assert format_date(moment, "long") == "1er janvier 2027"
        assert format_datetime(moment, "long").startswith("1er janvier 2027")
        assert "00:30" in format_datetime(moment, "long")
        assert format_date(datetime(2027, 1, 1, 12, 0, tzinfo=UTC), "long") == "1er janvier 2027"
        assert format_date(datetime(2027, 2, 1, 0, 30, tzinfo=UTC), "long") == "1er février 2027"


def test_the_templates_filters_are_the_same_function(request_ctx):
    with force_locale("fr"):
        out = render_template_string(
            "{{ d | dateformat('long') }} / {{ m | datetimeformat('full') }}",
            d=NEW_YEAR,
            m=datetime(2027, 5, 1, 8, 0, tzinfo=UTC),
        )
    assert out.startswith("1er janvier 2027 / samedi 1er mai 2027")


def test_the_link_email_says_until_1er(org, capsys):
    client = factories.MicroClientFactory(org=org, email="lea@exemple.fr")
    link, token = links.create_link(client, "user:0")
    link.expires_at = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    capsys.readouterr()
    with force_locale("fr"):
        links.send_link(link, token)
    out = capsys.readouterr().out
    assert "Ce lien fonctionne jusqu’au 1er mars 2027." in out
