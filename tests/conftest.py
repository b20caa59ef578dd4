"""Real services for every run: one PostgreSQL database, one Redis db, one S3 bucket.

Each test runs inside a transaction on one connection; the app's sessions join it through
savepoints, so the code under test commits for real and the test still leaves nothing behind.
Tests that need rows visible to another process (a real RQ worker, a browser's server) use
`committed` instead.
"""

from __future__ import annotations

import contextvars
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, delete, text
from sqlalchemy.engine import Connection, make_url
from werkzeug.test import TestResponse

from portal import create_app
from portal.accounts.models import Organisation, Role, User
from portal.db import db
from portal.extensions import limiter
from portal.storage import store_from_settings
from tests import factories
from tests.services import REPO, Services

RUN_ID = uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    found = Services()
    yield found
    found.stop()


@pytest.fixture(scope="session")
def database_url(services: Services) -> Iterator[str]:
    """A database of our own for this run, dropped at the end."""
    server = make_url(services.database_url)
    name = f"pochette_test_{RUN_ID}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url(services: Services) -> str:
    """Database 15 of the test Redis, emptied at the start of the run."""
    from redis import Redis

    url = re.sub(r"/\d+$", "", services.redis_url) + "/15"
    Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def bucket(services: Services) -> Iterator[str]:
    name = f"pochette-test-{RUN_ID}"
    store = store_from_settings(services.s3_settings(name))
    store.ensure_bucket()
    yield name
    for info in store.list(""):
        store.delete(info.key)
    store.client.delete_bucket(Bucket=name)  # type: ignore[attr-defined]


def app_settings(
    services: Services, database_url: str, redis_url: str, bucket: str
) -> dict[str, Any]:
    return {
        "ENV_NAME": "testing",
        "TESTING": True,
        "SECRET_KEY": "test-secret-" + RUN_ID * 4,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": redis_url,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "PUBLIC_URL": "http://localhost",
        "SERVER_NAME": None,
        **services.s3_settings(bucket),
    }


@pytest.fixture(scope="session")
def settings(services: Services, database_url: str, redis_url: str, bucket: str) -> dict[str, Any]:
    return app_settings(services, database_url, redis_url, bucket)


@pytest.fixture(scope="session")
def app(settings: dict[str, Any]) -> Iterator[Flask]:
    flask_app = create_app(settings)
    flask_app.test_client_class = Http
    with flask_app.app_context():
        flask_migrate.upgrade()  # the schema comes from the migrations, as in production
    yield flask_app
    with flask_app.app_context():
        db.engine.dispose()


@pytest.fixture
def connection(app: Flask) -> Iterator[Connection]:
    """One connection held in a transaction; every session of `app` joins it as a savepoint."""
    with app.app_context():
        conn = db.engine.connect()
    outer = conn.begin()
    db.bind_to(app, conn)
    try:
        yield conn
    finally:
        with app.app_context():
            db.session.remove()
        db.bind_to(app, None)
        outer.rollback()
        conn.close()


@pytest.fixture(autouse=True)
def _transaction(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that uses the app runs in `connection`, unless it asked for `committed`."""
    if "app" in request.fixturenames and "committed" not in request.fixturenames:
        request.getfixturevalue("connection")
        with request.getfixturevalue("app").app_context():
            limiter.reset()
    yield


@pytest.fixture
def committed(app: Flask) -> Iterator[list[int]]:
    """Rows really committed (for other processes); organisations listed here are deleted."""
    org_ids: list[int] = []
    with app.app_context():
        limiter.reset()
        yield org_ids
        db.session.remove()
        with db.engine.begin() as conn:
            for org_id in org_ids:
                conn.execute(delete(Organisation).where(Organisation.id == org_id))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright, one per test module (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def worker_env(settings: dict[str, Any]) -> dict[str, str]:
    """The environment of a real worker process on the test database, Redis and bucket."""
    return {
        **os.environ,
        "POCHETTE_DATABASE_URL": settings["DATABASE_URL"],
        "POCHETTE_REDIS_URL": settings["REDIS_URL"],
        "POCHETTE_SECRET_KEY": settings["SECRET_KEY"],
        "POCHETTE_STORAGE_URL": settings["STORAGE_URL"],
        "POCHETTE_S3_ENDPOINT": settings["S3_ENDPOINT"],
        "AWS_ACCESS_KEY_ID": settings["S3_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": settings["S3_SECRET_ACCESS_KEY"],
        "PYTHONPATH": str(REPO),
    }


def run_worker(settings: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """A real `python -m worker --burst` process on the test database, Redis and bucket."""
    return subprocess.run(
        [sys.executable, "-m", "worker", "--burst"],
        cwd=REPO,
        env=worker_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    """An app context for tests that call operations directly."""
    with app.app_context():
        yield


@pytest.fixture
def org(ctx: None) -> Organisation:
    return factories.OrgFactory(name="Association Les Tilleuls")


@pytest.fixture
def other_org(ctx: None) -> Organisation:
    return factories.OrgFactory(name="CCAS de Saint-Autre")


@pytest.fixture
def admin(org: Organisation) -> User:
    return factories.UserFactory(org=org, role=Role.admin, name="Alice Admin")


@pytest.fixture
def agent(org: Organisation) -> User:
    return factories.UserFactory(org=org, role=Role.agent, name="Bruno Agent")


@pytest.fixture
def viewer(org: Organisation) -> User:
    return factories.UserFactory(org=org, role=Role.viewer, name="Victor Lecteur")


@pytest.fixture
def other_admin(other_org: Organisation) -> User:
    return factories.UserFactory(org=other_org, role=Role.admin, name="Oscar Autre")


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Http(FlaskClient):
    """The Flask test client, plus the two things every test needs: CSRF tokens and login.

    Each request runs in an empty context: without it Flask would reuse the test's own app
    context, and with it `g`, the logged-in user and the database session of the test.
    """

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:  # type: ignore[override]
        return contextvars.Context().run(super().open, *args, **kwargs)

    def csrf_token(self, page: str = "/connexion") -> str:
        html = self.get(page, follow_redirects=True).get_data(as_text=True)
        match = _CSRF.search(html)
        assert match, f"no CSRF token on {page}"
        return match.group(1)

    def post_form(
        self, url: str, data: dict[str, Any] | None = None, *, page: str = "/connexion", **kw: Any
    ) -> TestResponse:
        return self.post(url, data={"csrf_token": self.csrf_token(page), **(data or {})}, **kw)

    def login(self, user: User, password: str = factories.PASSWORD) -> TestResponse:
        response = self.post_form(
            "/connexion", {"email": user.email, "password": password}, follow_redirects=False
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        return response


@pytest.fixture
def http(app: Flask) -> Http:
    return app.test_client()  # type: ignore[return-value]


@pytest.fixture
def login(http: Http) -> Any:
    def _login(user: User) -> Http:
        http.login(user)
        return http

    return _login
