"""Staff forms for packs."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField
from wtforms.validators import AnyOf


class PackRequestForm(FlaskForm):
    force = BooleanField(
        _l("Préparer quand même (les éléments manquants seront listés sur la couverture)")
    )


class PackShareForm(FlaskForm):
    shared = HiddenField(validators=[AnyOf(("oui", "non"))])


class PackSettingsForm(FlaskForm):
    watermark = BooleanField(
        _l("Marquer chaque page « Transmis pour … – date » (organisme destinataire et date)")
    )
