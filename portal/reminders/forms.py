from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, SubmitField
from wtforms.validators import Length

from portal.reminders.rules import MAX_DAYS, MAX_VALUES, MIN_DAYS, Rules


class RulesForm(FlaskForm):
    client_before = BooleanField(_l("Rappeler à l’usager sa démarche avant la date limite"))
    days_before = StringField(
        _l("Combien de jours avant la date limite"),
        validators=[Length(max=60)],
        description=_l(
            "Des nombres de jours séparés par des virgules, de %(min)d à %(max)d, "
            "%(count)d au plus. Par exemple : 14, 7, 2. Le rappel part seulement s’il manque "
            "des éléments obligatoires.",
            min=MIN_DAYS,
            max=MAX_DAYS,
            count=MAX_VALUES,
        ),
    )
    client_overdue = BooleanField(
        _l("Relancer l’usager le lendemain de la date limite si rien n’est déposé")
    )
    agent_digest = BooleanField(
        _l(
            "Envoyer chaque matin à chaque agent la liste de ses dossiers en retard, "
            "de ceux à faire dans les 7 jours et des documents à vérifier"
        )
    )
    submit = SubmitField(_l("Enregistrer"))

    def fill(self, rules: Rules) -> None:
        self.client_before.data = rules.client_before
        self.days_before.data = ", ".join(str(d) for d in rules.days_before)
        self.client_overdue.data = rules.client_overdue
        self.agent_digest.data = rules.agent_digest
