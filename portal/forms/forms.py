"""The admin's upload of a newer official version of a form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import FileField
from wtforms.validators import InputRequired


class VersionUploadForm(FlaskForm):
    file = FileField(
        _l("Nouvelle version officielle (PDF)"),
        validators=[InputRequired(_l("Choisissez le PDF officiel à téléverser."))],
    )
