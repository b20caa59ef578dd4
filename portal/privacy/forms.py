"""Forms of the personal-data screens: asking for an export, confirming an erasure."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import Length


class ExportForm(FlaskForm):
    submit = SubmitField(_l("Préparer un export de ses données"))


class ErasureForm(FlaskForm):
    confirmation = StringField(
        _l("Confirmation"),
        validators=[Length(max=60)],
        description=_l("Tapez la référence de l’usager, ou le mot EFFACER."),
    )
    submit = SubmitField(_l("Effacer définitivement"))
