from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    SearchField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from portal.clients.models import Activity, Client, ClientKind, Periodicity
from portal.clients.operations import FIELDS, LENGTHS, MAX_HOUSEHOLD, ClientData
from portal.clients.places import PostcodeError, departement_from_postcode

KIND_LABELS = {
    ClientKind.person: _l("Particulier"),
    ClientKind.micro_entrepreneur: _l("Micro-entrepreneur"),
}
ACTIVITY_LABELS = {
    Activity.vente: _l("Vente de marchandises (BIC)"),
    Activity.services_bic: _l("Prestations de services (BIC)"),
    Activity.bnc: _l("Profession libérale (BNC, Sécurité sociale des indépendants)"),
    Activity.bnc_cipav: _l("Profession libérale (BNC, CIPAV)"),
}
PERIODICITY_LABELS = {
    Periodicity.monthly: _l("Mensuelle"),
    Periodicity.quarterly: _l("Trimestrielle"),
}
CAF_CYCLE_LABELS = {
    1: _l("Janvier, avril, juillet, octobre"),
    2: _l("Février, mai, août, novembre"),
    3: _l("Mars, juin, septembre, décembre"),
}
_NONE = SelectChoice("", _l("— Non renseigné —"))
# Form switch -> reminder kind (the values of portal.reminders.models.CLIENT_KINDS; clients
# come before reminders in the feature chain, so the kinds are written out here).
REMINDER_SWITCHES = {
    "no_reminder_before": "client_before",
    "no_reminder_overdue": "client_overdue",
}


def _choices(labels: dict) -> list[SelectChoice]:
    return [SelectChoice(str(getattr(key, "value", key)), label) for key, label in labels.items()]


def _known_postcode(_form: FlaskForm, field: StringField) -> None:
    """Said with the other field errors, not only once they are fixed."""
    try:
        departement_from_postcode(field.data or "")
    except PostcodeError as exc:
        raise ValidationError(str(exc.message)) from None


class CheckboxesField(SelectMultipleField):
    """Several choices as a list of check boxes (a <select multiple> is hard on a phone)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ClientForm(FlaskForm):
    reference = StringField(
        _l("Référence du dossier"),
        validators=[
            InputRequired(_l("Indiquez la référence du dossier.")),
            Length(max=LENGTHS["reference"]),
        ],
        description=_l("Votre numéro de dossier, unique dans l’organisation."),
    )
    last_name = StringField(
        _l("Nom"),
        validators=[InputRequired(_l("Indiquez le nom.")), Length(max=LENGTHS["last_name"])],
    )
    first_name = StringField(
        _l("Prénom"),
        validators=[InputRequired(_l("Indiquez le prénom.")), Length(max=LENGTHS["first_name"])],
    )
    birth_on = DateField(_l("Date de naissance"), validators=[Optional()])
    birth_place = StringField(
        _l("Lieu de naissance"),
        validators=[Optional(), Length(max=LENGTHS["birth_place"])],
        description=_l("Commune (et pays si à l’étranger), pour les formulaires officiels."),
    )
    email = EmailField(
        _l("Adresse e-mail"),
        validators=[
            Optional(),
            Email(_l("Cette adresse e-mail n’est pas valide."), check_deliverability=False),
            Length(max=LENGTHS["email"]),
        ],
    )
    phone = StringField(_l("Téléphone"), validators=[Optional(), Length(max=LENGTHS["phone"])])
    address = TextAreaField(
        _l("Adresse postale"),
        validators=[Optional(), Length(max=LENGTHS["address"])],
        render_kw={"rows": 2},
    )
    postcode = StringField(
        _l("Code postal"),
        validators=[Optional(), _known_postcode],
        description=_l("5 chiffres. Le département en est déduit (zones des impôts)."),
        render_kw={"inputmode": "numeric", "maxlength": 6, "autocomplete": "postal-code"},
    )
    kind = SelectField(
        _l("Type d’usager"), choices=_choices(KIND_LABELS), default=ClientKind.person.value
    )
    activities = CheckboxesField(
        _l("Activités"),
        choices=_choices(ACTIVITY_LABELS),
        description=_l(
            "Micro-entrepreneurs uniquement. Cochez chaque catégorie déclarée à l’URSSAF "
            "(par exemple vente et prestations de services)."
        ),
    )
    periodicity = SelectField(
        _l("Périodicité des déclarations URSSAF"),
        choices=[_NONE, *_choices(PERIODICITY_LABELS)],
        description=_l("Micro-entrepreneurs uniquement."),
    )
    versement_liberatoire = BooleanField(_l("A opté pour le versement libératoire de l’impôt"))
    activity_started_on = DateField(_l("Début de l’activité"), validators=[Optional()])
    household_size = IntegerField(
        _l("Nombre de personnes dans le foyer"),
        default=1,
        validators=[
            InputRequired(_l("Indiquez le nombre de personnes du foyer.")),
            NumberRange(
                1,
                MAX_HOUSEHOLD,
                _l("La taille du foyer va de 1 à %(n)d personnes.", n=MAX_HOUSEHOLD),
            ),
        ],
    )
    receives_rsa = BooleanField(_l("Perçoit le RSA"))
    receives_prime_activite = BooleanField(_l("Perçoit la prime d’activité"))
    caf_dtr_cycle = SelectField(
        _l("Mois des déclarations trimestrielles CAF"),
        choices=[_NONE, *_choices(CAF_CYCLE_LABELS)],
        description=_l("Indiqués par la CAF sur l’espace personnel de l’allocataire."),
    )
    c2s_rights_end_on = DateField(
        _l("Fin des droits à la Complémentaire santé solidaire"), validators=[Optional()]
    )
    jobseeker = BooleanField(_l("Inscrit à France Travail"))
    paper_filer = BooleanField(
        _l("Déclare ses revenus sur papier"),
        description=_l(
            "Pas d’internet à domicile, ou pas en mesure de déclarer en ligne : la date limite "
            "du papier, plus tôt, s’applique."
        ),
    )
    no_email = BooleanField(_l("Ne souhaite pas recevoir de rappels par e-mail"))
    # One switch per reminder the client may refuse (Client.reminders_off holds the kinds).
    no_reminder_before = BooleanField(_l("Pas de rappel avant la date limite d’une démarche"))
    no_reminder_overdue = BooleanField(_l("Pas de relance le lendemain de la date limite"))
    assigned_user_id = SelectField(_l("Référent"), choices=[_NONE])
    submit = SubmitField(_l("Enregistrer"))

    def set_referents(self, users: list[tuple[int, str]]) -> None:
        self.assigned_user_id.choices = [
            _NONE,
            *(SelectChoice(str(user_id), name) for user_id, name in users),
        ]

    def fill(self, client: Client) -> None:
        """Prefill from a client (GET of the edit page)."""
        data = ClientData.of(client)
        for name in FIELDS:
            value = getattr(data, name)
            value = getattr(value, "value", value)
            if name in ("periodicity", "caf_dtr_cycle", "assigned_user_id"):
                value = "" if value is None else str(value)
            elif name == "activities":
                value = [str(getattr(item, "value", item)) for item in value]
            getattr(self, name).data = value
        off = client.reminders_off or []
        self.no_reminder_before.data = REMINDER_SWITCHES["no_reminder_before"] in off
        self.no_reminder_overdue.data = REMINDER_SWITCHES["no_reminder_overdue"] in off

    def reminders_off(self) -> list[str]:
        """The reminder kinds the client refuses, from the switches."""
        return [kind for name, kind in REMINDER_SWITCHES.items() if getattr(self, name).data]

    def to_data(self) -> ClientData:
        def optional_int(text: str | None) -> int | None:
            return int(text) if text and text.isdigit() else None

        return ClientData(
            reference=self.reference.data or "",
            first_name=self.first_name.data or "",
            last_name=self.last_name.data or "",
            birth_on=self.birth_on.data,
            birth_place=self.birth_place.data,
            email=self.email.data,
            phone=self.phone.data,
            address=self.address.data,
            postcode=self.postcode.data,
            kind=ClientKind(self.kind.data),
            activities=tuple(Activity(code) for code in self.activities.data or ()),
            periodicity=Periodicity(self.periodicity.data) if self.periodicity.data else None,
            versement_liberatoire=bool(self.versement_liberatoire.data),
            activity_started_on=self.activity_started_on.data,
            household_size=self.household_size.data,
            receives_rsa=bool(self.receives_rsa.data),
            receives_prime_activite=bool(self.receives_prime_activite.data),
            caf_dtr_cycle=optional_int(self.caf_dtr_cycle.data),
            c2s_rights_end_on=self.c2s_rights_end_on.data,
            jobseeker=bool(self.jobseeker.data),
            paper_filer=bool(self.paper_filer.data),
            no_email=bool(self.no_email.data),
            assigned_user_id=optional_int(self.assigned_user_id.data),
        )


class ClientFilterForm(FlaskForm):
    """The list's filters: a GET form, so they stay in the URL (bookmarks, back button)."""

    class Meta:
        csrf = False

    q = SearchField(_l("Rechercher"), description=_l("Nom, prénom ou référence"))
    referent = SelectField(_l("Référent"), choices=[SelectChoice("", _l("Tous"))])
    type = SelectField(_l("Type"), choices=[SelectChoice("", _l("Tous")), *_choices(KIND_LABELS)])
    archives = BooleanField(_l("Inclure les usagers archivés"))

    def set_referents(self, users: list[tuple[int, str]]) -> None:
        self.referent.choices = [
            SelectChoice("", _l("Tous")),
            *(SelectChoice(str(user_id), name) for user_id, name in users),
        ]


class ConsentForm(FlaskForm):
    # The text shown (its version): a page older than a new text cannot agree to the new one.
    version = HiddenField()
    agreed = BooleanField(
        _l("L’usager a lu ce texte, ou se l’est fait lire, et il est d’accord."),
        validators=[DataRequired(_l("Cochez la case pour confirmer l’accord de l’usager."))],
    )
    submit = SubmitField(_l("Enregistrer le consentement"))


class ImportForm(FlaskForm):
    file = FileField(
        _l("Fichier CSV"),
        validators=[FileRequired(_l("Choisissez un fichier CSV."))],
        description=_l(
            "Une ligne par usager, la première ligne donnant le nom des colonnes. "
            "Séparateur point-virgule ou virgule ; dates au format JJ/MM/AAAA."
        ),
        render_kw={"accept": ".csv,text/csv"},
    )
    submit = SubmitField(_l("Vérifier le fichier"))


class ImportConfirmForm(FlaskForm):
    payload = HiddenField()
    submit = SubmitField(_l("Importer"))
