from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from portal.api.events import EVENTS

EVENT_LABELS = {
    "document.received": _l("Document reçu"),
    "case.ready": _l("Dossier prêt"),
    "pack.ready": _l("Pochette prête"),
    "case.filed": _l("Dossier déposé"),
    "client.erased": _l("Usager effacé"),
}


class TokenForm(FlaskForm):
    name = StringField(_l("Nom du jeton"), validators=[DataRequired(), Length(max=80)])
    scope = RadioField(
        _l("Portée"),
        choices=[
            SelectChoice("read", _l("Lecture seule")),
            SelectChoice("write", _l("Lecture et écriture")),
        ],
        default="read",
    )
    days = SelectField(
        _l("Durée de validité"),
        choices=[
            SelectChoice("30", _l("30 jours")),
            SelectChoice("90", _l("90 jours")),
            SelectChoice("365", _l("1 an")),
        ],
        default="90",
    )
    submit = SubmitField(_l("Créer le jeton"))


class WebhookForm(FlaskForm):
    url = StringField(_l("Adresse (URL)"), validators=[DataRequired(), Length(max=500)])
    events = SelectMultipleField(
        _l("Événements"),
        choices=[SelectChoice(e, EVENT_LABELS[e]) for e in EVENTS],
        option_widget=CheckboxInput(),
        widget=ListWidget(prefix_label=False),
    )
    submit = SubmitField(_l("Ajouter le webhook"))
