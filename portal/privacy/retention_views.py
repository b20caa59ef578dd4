"""The retention settings page for admins: how long data is kept, and what is due now.

Its form lives here rather than in portal/privacy/forms.py: it is the page's only form and the
export and erasure screens own that module.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import Length

from portal.accounts.models import Role
from portal.accounts.views import require
from portal.cases.periods import french_today
from portal.db import db
from portal.privacy import retention
from portal.privacy.retention import (
    CASE_MONTHS,
    CLIENT_MONTHS,
    LINK_KEEP_DAYS,
    NOTICE_DAYS,
    Retention,
    RetentionError,
    parse_months,
    retention_of,
    save_retention,
)

bp = Blueprint("retention", __name__, template_folder="templates")


class RetentionForm(FlaskForm):
    case_months = StringField(
        _l("Documents et pochettes des dossiers terminés : garder pendant (mois)"),
        validators=[Length(max=20)],
        description=_l(
            "Compté à partir du jour où le dossier a été déposé, clos ou annulé : de %(low)d à "
            "%(high)d mois. Le dossier et sa liste restent, sans les documents ni les valeurs "
            "saisies.",
            low=CASE_MONTHS[0],
            high=CASE_MONTHS[1],
        ),
    )
    client_months = StringField(
        _l("Usagers archivés : effacer après (mois)"),
        validators=[Length(max=20)],
        description=_l(
            "Compté à partir de l’archivage : de %(low)d à %(high)d mois. Les administrateurs "
            "sont prévenus par e-mail %(days)d jours avant ; restaurer l’usager l’empêche.",
            low=CLIENT_MONTHS[0],
            high=CLIENT_MONTHS[1],
            days=NOTICE_DAYS,
        ),
    )
    submit = SubmitField(_l("Enregistrer"))


@bp.route("/organisation/donnees", methods=["GET", "POST"])
@login_required
def settings() -> str | Response | tuple[str, int]:
    require(Role.admin)
    org = current_user.org
    current = retention_of(org)
    form = RetentionForm()
    if request.method == "GET":
        form.case_months.data = str(current.case_months)
        form.client_months.data = str(current.client_months)
    if form.validate_on_submit():
        wanted: dict[str, int] = {}
        for name, bounds in (("case_months", CASE_MONTHS), ("client_months", CLIENT_MONTHS)):
            field = getattr(form, name)
            try:
                wanted[name] = parse_months(field.data, bounds, name)
            except RetentionError as exc:
                field.errors = [*field.errors, exc.message]
        if not form.errors:
            changed = save_retention(org, current_user.ref, Retention(**wanted))
            db.session.commit()
            flash(
                _("Durées de conservation enregistrées.") if changed else _("Aucune modification."),
                "success",
            )
            return redirect(url_for("retention.settings"))
    today = french_today()
    page = render_template(
        "privacy/retention.html",
        form=form,
        settings=current,
        due=retention.due_for(org, today),
        scheduled=retention.scheduled_erasures(org.id, current.client_months),
        notice_days=NOTICE_DAYS,
        link_days=LINK_KEEP_DAYS,
    )
    return (page, 400) if form.errors else page
