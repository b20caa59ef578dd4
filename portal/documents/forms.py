"""Staff forms for documents (the public link page has its own)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    FileField,
    HiddenField,
    MultipleFileField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from portal.documents.models import RefusalReason
from portal.documents.operations import REFUSAL_LABELS


class UploadForm(FlaskForm):
    files = MultipleFileField(_l("Fichiers (PDF ou photos)"))


class DocumentReviewForm(FlaskForm):
    decision = HiddenField(validators=[InputRequired()])
    reason = SelectField(
        _l("Raison du refus"),
        choices=[SelectChoice("", "—")]
        + [SelectChoice(r.value, REFUSAL_LABELS[r]) for r in RefusalReason],
        validators=[Optional()],
    )
    note = TextAreaField(_l("Précision (l’usager la verra)"), validators=[Length(max=500)])


class FilingForm(FlaskForm):
    reference = StringField(
        _l("Numéro de dépôt donné par le site"), validators=[Optional(), Length(max=100)]
    )
    receipt = FileField(_l("Accusé de réception (PDF ou photo)"))


class DismissCheckForm(FlaskForm):
    """Hiding one automatic check of a document: nothing but the CSRF token."""
