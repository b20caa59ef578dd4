"""The reminder rules page for admins, and the labels the case page's reminder panel uses."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from portal.accounts.models import Role
from portal.accounts.views import require
from portal.db import db
from portal.reminders import notices  # noqa: F401  (registers the client notice composer)
from portal.reminders.forms import RulesForm
from portal.reminders.models import ReminderKind, ReminderStatus
from portal.reminders.queries import recent_failures
from portal.reminders.rules import Rules, RulesError, parse_days, rules_of, save_rules

bp = Blueprint("reminders", __name__, template_folder="templates")

KIND_LABELS = {
    ReminderKind.client_before: _l("Rappel avant la date limite"),
    ReminderKind.client_overdue: _l("Relance après la date limite"),
    ReminderKind.agent_digest: _l("Résumé du jour"),
    ReminderKind.filed_notice: _l("Avis de dépôt à l’équipe"),
    ReminderKind.retention_notice: _l("Avis d’effacement des usagers archivés"),
    ReminderKind.client_news: _l("Avis à l’usager (document refusé, pochette prête)"),
}
STATUS_LABELS = {
    ReminderStatus.scheduled: _l("Prévu"),
    ReminderStatus.claimed: _l("En cours d’envoi"),
    ReminderStatus.sent: _l("Envoyé"),
    ReminderStatus.failed: _l("Échec"),
    ReminderStatus.dropped: _l("Annulé (plus nécessaire)"),
}


@bp.app_template_filter("reminder_kind")
def kind_label(kind: ReminderKind | str) -> str:
    return str(KIND_LABELS.get(ReminderKind(kind), kind))


@bp.app_template_filter("reminder_status")
def status_label(status: ReminderStatus | str) -> str:
    return str(STATUS_LABELS.get(ReminderStatus(status), status))


@bp.route("/organisation/rappels", methods=["GET", "POST"])
@login_required
def rules_page() -> str | Response | tuple[str, int]:
    require(Role.admin)
    org = current_user.org
    current = rules_of(org)
    form = RulesForm()
    if request.method == "GET":
        form.fill(current)
    if form.validate_on_submit():
        text = (form.days_before.data or "").strip()
        try:
            # Switched off with the field emptied: keep the days for when it is switched on.
            days = parse_days(text) if text or form.client_before.data else current.days_before
        except RulesError as exc:
            form.days_before.errors = [*form.days_before.errors, exc.message]
        else:
            rules = Rules(
                client_before=bool(form.client_before.data),
                days_before=days,
                client_overdue=bool(form.client_overdue.data),
                agent_digest=bool(form.agent_digest.data),
            )
            changed = save_rules(org, current_user.ref, rules)
            db.session.commit()
            flash(
                _("Règles de rappel enregistrées.") if changed else _("Aucune modification."),
                "success",
            )
            return redirect(url_for("reminders.rules_page"))
    page = render_template("reminders/rules.html", form=form, failures=recent_failures(org.id))
    return (page, 400) if form.errors else page
