"""The admins' page for API tokens and webhooks ("API et webhooks" on the team page)."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.accounts.models import Role
from portal.accounts.views import require
from portal.api.forms import EVENT_LABELS, TokenForm, WebhookForm
from portal.api.models import ApiToken, WebhookDelivery, WebhookEndpoint
from portal.api.tokens import TokenError, create_token, revoke_token, tokens_of
from portal.api.webhooks import (
    WebhookError,
    endpoints_of,
    recent_deliveries,
    register_endpoint,
    replay,
    set_active,
)
from portal.db import db, utcnow
from portal.tenancy import get_or_404

bp = Blueprint("api_admin", __name__, template_folder="templates")


def _page(
    token_form: TokenForm | None = None,
    webhook_form: WebhookForm | None = None,
    *,
    shown: dict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    org_id = current_user.org_id
    html = render_template(
        "api/admin.html",
        token_form=token_form or TokenForm(formdata=None),
        webhook_form=webhook_form or WebhookForm(formdata=None),
        tokens=tokens_of(org_id),
        endpoints=endpoints_of(org_id),
        deliveries=recent_deliveries(org_id),
        event_labels=EVENT_LABELS,
        shown=shown,
        now=utcnow(),
    )
    return html, status


@bp.route("/organisation/api")
@login_required
def page() -> tuple[str, int]:
    require(Role.admin)
    return _page()


@bp.route("/organisation/api/jetons", methods=["POST"])
@login_required
def token_create() -> tuple[str, int]:
    require(Role.admin)
    form = TokenForm()
    if form.validate_on_submit():
        try:
            row, token = create_token(
                current_user.org_id,
                current_user.ref,
                form.name.data or "",
                form.scope.data or "",
                int(form.days.data or 0),
            )
        except TokenError as exc:
            form.name.errors = [*form.name.errors, exc.message]
        else:
            db.session.commit()
            # Shown on this answer only: it is stored hashed and cannot be shown again.
            return _page(shown={"kind": "token", "name": row.name, "value": token})
    return _page(token_form=form, status=400)


@bp.route("/organisation/api/jetons/<int:token_id>/revoquer", methods=["POST"])
@login_required
def token_revoke(token_id: int) -> Response:
    row = get_or_404(ApiToken, token_id)
    require(Role.admin)
    if revoke_token(row, current_user.ref):
        db.session.commit()
        flash(_("Jeton « %(name)s » révoqué.", name=row.name), "success")
    return redirect(url_for("api_admin.page"))


@bp.route("/organisation/api/webhooks", methods=["POST"])
@login_required
def webhook_create() -> tuple[str, int]:
    require(Role.admin)
    form = WebhookForm()
    if form.validate_on_submit():
        try:
            endpoint, secret = register_endpoint(
                current_user.org_id, current_user.ref, form.url.data or "", form.events.data or []
            )
        except WebhookError as exc:
            form.url.errors = [*form.url.errors, exc.message]
        else:
            db.session.commit()
            return _page(shown={"kind": "secret", "name": endpoint.url, "value": secret})
    return _page(webhook_form=form, status=400)


@bp.route("/organisation/api/webhooks/<int:webhook_id>/activer", methods=["POST"])
@login_required
def webhook_toggle(webhook_id: int) -> Response:
    endpoint = get_or_404(WebhookEndpoint, webhook_id)
    require(Role.admin)
    set_active(endpoint, current_user.ref, not endpoint.active)
    db.session.commit()
    return redirect(url_for("api_admin.page"))


@bp.route("/organisation/api/livraisons/<int:delivery_id>/rejouer", methods=["POST"])
@login_required
def delivery_replay(delivery_id: int) -> Response:
    delivery = get_or_404(WebhookDelivery, delivery_id)
    require(Role.admin)
    copy = replay(delivery, current_user.ref)
    db.session.commit()
    flash(
        _("Livraison %(id)d envoyée à nouveau (n° %(new)d).", id=delivery.id, new=copy.id),
        "success",
    )
    return redirect(url_for("api_admin.page"))
