from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional


class _Versioned(FlaskForm):
    """Every change to a case carries the version the person saw (optimistic lock)."""

    version = HiddenField(validators=[InputRequired()])


class OpenCaseForm(FlaskForm):
    procedure = SelectField(_l("Démarche"), validators=[InputRequired()])
    period = StringField(
        _l("Période"),
        validators=[Optional(), Length(max=20)],
        description=_l(
            "Ce qui est déclaré : un mois (2026-01), un trimestre (2026-T3), une année (2025), "
            "un jour (2026-11-27) ou plusieurs mois d'un coup (2026-03..2026-06). Laissez la "
            "valeur proposée si vous ne savez pas."
        ),
    )
    assigned_user = SelectField(_l("Agent référent"), validators=[Optional()])


class StatusForm(_Versioned):
    status = SelectField(_l("Nouvel état"), validators=[InputRequired()])
    filing_reference = StringField(
        _l("Numéro de dépôt (accusé de réception)"), validators=[Optional(), Length(max=100)]
    )


class AssignForm(_Versioned):
    assigned_user = SelectField(_l("Agent référent"), validators=[Optional()])


class ValueForm(_Versioned):
    value = StringField(_l("Valeur"), validators=[Length(max=200)])


class ReviewForm(_Versioned):
    action = HiddenField(validators=[InputRequired()])
    reason = TextAreaField(_l("Raison"), validators=[Optional(), Length(max=1000)])


class AnswersForm(_Versioned):
    """The case's questions; their radio buttons are written from the catalog in the page."""
