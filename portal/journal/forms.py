"""The journal's filters: a GET form (no CSRF: it changes nothing), its values kept in the URL."""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.fields import SelectChoice
from wtforms.validators import Length

from portal.journal.queries import LINK_ACTORS, SYSTEM_ACTORS

DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y")


class JournalFilterForm(FlaskForm):
    class Meta:
        csrf = False

    personne = SelectField(_l("Fait par"), choices=[SelectChoice("", _l("Toutes"))], default="")
    usager = StringField(
        _l("Usager"),
        validators=[Length(max=40)],
        description=_l("Sa référence (ou son numéro de fiche)."),
    )
    action = SelectField(_l("Action"), choices=[SelectChoice("", _l("Toutes"))], default="")
    du = StringField(_l("Du"), validators=[Length(max=10)])
    au = StringField(_l("Au"), validators=[Length(max=10)])
    submit = SubmitField(_l("Filtrer"))

    def set_people(self, users: list[tuple[int, str]]) -> None:
        self.personne.choices = [
            SelectChoice("", _l("Toutes")),
            SelectChoice(LINK_ACTORS, _l("Lien usager (l’usager lui-même)")),
            SelectChoice(SYSTEM_ACTORS, _l("Système (tâches automatiques)")),
            *(SelectChoice(f"user:{user_id}", name) for user_id, name in users),
        ]

    def set_actions(self, actions: list[tuple[str, str]]) -> None:
        self.action.choices = [
            SelectChoice("", _l("Toutes")),
            *(SelectChoice(value, label) for value, label in actions),
        ]


def parse_day(raw: str | None) -> date | None:
    """AAAA-MM-JJ (a date field) or JJ/MM/AAAA (typed); None when empty; ValueError else."""
    text = (raw or "").strip()
    if not text:
        return None
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ValueError(text)
