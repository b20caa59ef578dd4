"""Pochette: we prepare everything, you submit."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, g, has_request_context, request
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import background, config, dates, errors, security, storage, tenancy
from portal.db import db
from portal.extensions import babel, csrf, limiter, login_manager, migrate
from portal.uploads import UploadRequest


def _locale() -> str:
    if has_request_context() and request.path.startswith("/api/"):
        # API clients say their language; no cookie session is read there.
        return request.accept_languages.best_match(["fr", "en"]) or "fr"
    if current_user and current_user.is_authenticated:
        return current_user.locale
    return "fr"


def _bind_tenant() -> None:
    if current_user.is_authenticated:
        g.tenant_token = tenancy.bind(current_user.org_id)


def _unbind_tenant(_exc: BaseException | None) -> None:
    token = g.pop("tenant_token", None)
    if token is not None:
        tenancy.unbind(token)


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build an app from the environment; `overrides` wins (tests). No I/O happens here."""
    app = Flask(__name__, instance_path=str(Path(__file__).resolve().parent.parent / "instance"))
    app.request_class = UploadRequest
    app.config.update(config.load(Path(app.instance_path)))
    if overrides:
        app.config.update(overrides)
    if app.config["TRUSTED_PROXIES"]:
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.jinja_env.add_extension("jinja2.ext.do")

    db.init_app(app)
    storage.init_app(app)
    background.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=_locale)
    dates.init_app(app)  # « 1er janvier » in every template's dateformat/datetimeformat
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))

    from portal.accounts.operations import load_session_user

    login_manager.init_app(app)
    login_manager.user_loader(load_session_user)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = None
    login_manager.session_protection = "strong"

    app.before_request(_bind_tenant)
    app.teardown_request(_unbind_tenant)

    from portal.checklists import catalog

    catalog.init_app(app)  # a broken procedure file stops here, naming file and field
    from portal.forms import operations as forms

    forms.init_app(app)  # so does a form map that no longer matches its official PDF

    from portal.accounts.views import bp as accounts_bp
    from portal.api.admin_views import bp as api_admin_bp
    from portal.api.views import bp as api_bp
    from portal.cases.views import bp as cases_bp
    from portal.clients.views import bp as clients_bp
    from portal.documents import interview_views as _interview  # noqa: F401 (adds its routes)
    from portal.documents.link_views import bp as links_bp
    from portal.documents.public import bp as upload_bp
    from portal.documents.views import bp as documents_bp
    from portal.forms.views import bp as forms_bp
    from portal.journal.views import bp as journal_bp
    from portal.packs import public as _packs_on_link_page  # noqa: F401 (adds its routes)
    from portal.packs.views import bp as packs_bp
    from portal.privacy.retention_views import bp as retention_bp
    from portal.privacy.views import bp as privacy_bp
    from portal.reminders.views import bp as reminders_bp

    app.register_blueprint(accounts_bp)
    app.register_blueprint(clients_bp)
    app.register_blueprint(cases_bp)
    app.register_blueprint(documents_bp)
    app.register_blueprint(links_bp)
    app.register_blueprint(upload_bp)
    app.register_blueprint(packs_bp)
    app.register_blueprint(forms_bp)
    app.register_blueprint(reminders_bp)
    app.register_blueprint(privacy_bp)
    app.register_blueprint(retention_bp)
    app.register_blueprint(journal_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(api_admin_bp)

    from portal import cli

    cli.init_app(app)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        from portal.accounts.forms import ActionForm

        # formdata=None: never parse the request body here (it may be what failed, e.g. 413).
        return {
            "logout_form": ActionForm(formdata=None),
            "lang": _locale(),
            "review_count": _review_count,
        }

    return app


def _review_count() -> int:
    """The documents waiting for a decision, for the navigation (staff pages only)."""
    from portal.documents.queries import to_review_count
    from portal.tenancy import NoTenantBound

    try:
        return to_review_count()
    except NoTenantBound:
        return 0
