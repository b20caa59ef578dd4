from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField, SubmitField
from wtforms.fields import SelectChoice
from wtforms.validators import Email, EqualTo, InputRequired, Length, ValidationError

from portal.accounts.models import Role
from portal.accounts.operations import MAX_PASSWORD, password_problems

ROLE_LABELS = {
    Role.admin: _l("Administrateur"),
    Role.agent: _l("Agent"),
    Role.viewer: _l("Lecture seule"),
}


def role_choices() -> list[SelectChoice]:
    return [SelectChoice(role.value, label) for role, label in ROLE_LABELS.items()]


class LoginForm(FlaskForm):
    email = EmailField(
        _l("Adresse e-mail"),
        validators=[InputRequired(_l("Indiquez votre adresse e-mail.")), Length(max=254)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        _l("Mot de passe"),
        validators=[InputRequired(_l("Indiquez votre mot de passe.")), Length(max=MAX_PASSWORD)],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField(_l("Se connecter"))


class _NewPassword:
    """Checks a new password with the same rules the operations enforce."""

    def __init__(self, email_field: str | None = None) -> None:
        self.email_field = email_field

    def __call__(self, form: FlaskForm, field: PasswordField) -> None:
        email = getattr(form, self.email_field).data if self.email_field else None
        email = email or getattr(form, "account_email", None)
        problems = password_problems(field.data or "", email)
        if problems:
            raise ValidationError(" ".join(str(p) for p in problems))


class SetPasswordForm(FlaskForm):
    password = PasswordField(
        _l("Nouveau mot de passe"),
        validators=[InputRequired(_l("Choisissez un mot de passe.")), _NewPassword()],
        description=_l("Au moins 12 caractères. Une phrase de plusieurs mots convient très bien."),
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Confirmez le mot de passe"),
        validators=[
            InputRequired(_l("Confirmez le mot de passe.")),
            EqualTo("password", _l("Les deux mots de passe ne sont pas identiques.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField(_l("Enregistrer le mot de passe"))


class ChangePasswordForm(SetPasswordForm):
    current = PasswordField(
        _l("Mot de passe actuel"),
        validators=[InputRequired(_l("Indiquez votre mot de passe actuel."))],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField(_l("Changer le mot de passe"))


class InviteForm(FlaskForm):
    name = StringField(
        _l("Nom et prénom"),
        validators=[InputRequired(_l("Indiquez le nom.")), Length(max=120)],
    )
    email = EmailField(
        _l("Adresse e-mail"),
        validators=[
            InputRequired(_l("Indiquez l’adresse e-mail.")),
            Email(_l("Cette adresse e-mail n’est pas valide."), check_deliverability=False),
            Length(max=254),
        ],
    )
    role = SelectField(_l("Rôle"), choices=role_choices, default=Role.agent.value)
    submit = SubmitField(_l("Inviter"))


class RoleForm(FlaskForm):
    role = SelectField(_l("Rôle"), choices=role_choices)
    submit = SubmitField(_l("Changer le rôle"))


class ActionForm(FlaskForm):
    """A bare form for one-button actions (deactivate, log out): only the CSRF token."""

    submit = SubmitField()


class LocaleForm(FlaskForm):
    locale = SelectField(
        _l("Langue de l’interface"),
        choices=[SelectChoice("fr", "Français"), SelectChoice("en", "English")],
    )
    submit = SubmitField(_l("Enregistrer"))
