"""Login, logout, one's own account, and the team screens for admins."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from portal import audit, mail
from portal.accounts import throttle
from portal.accounts.forms import (
    ROLE_LABELS,
    ActionForm,
    ChangePasswordForm,
    InviteForm,
    LocaleForm,
    LoginForm,
    RoleForm,
    SetPasswordForm,
)
from portal.accounts.models import Role, TokenPurpose, User
from portal.accounts.operations import (
    AccountError,
    add_user,
    authenticate,
    change_password,
    change_role,
    end_sessions,
    find_token,
    issue_token,
    set_active,
    set_locale,
    set_password_from_token,
)
from portal.cases import feeds
from portal.db import db
from portal.extensions import limiter
from portal.tenancy import get_or_404, scoped

bp = Blueprint("accounts", __name__, template_folder="templates")


def require(role: Role) -> None:
    """403 when the logged-in user's role is below `role` (call after loading by id)."""
    if not current_user.can(role):
        abort(403)


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/connexion", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP"], methods=["POST"])
def login() -> str | Response | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(url_for("cases.dashboard"))
    form = LoginForm()
    slow = int(current_app.config["LOGIN_SLOW_SECONDS"])
    if form.validate_on_submit():
        gate = throttle.check(form.email.data)
        if not gate.allowed:
            form.form_errors.append(
                _(
                    "Trop d’essais pour ce compte. Par sécurité, attendez %(num)d secondes, "
                    "puis réessayez.",
                    num=gate.wait_seconds,
                )
            )
            return render_template("accounts/login.html", form=form, slow=slow), 429
        user = authenticate(form.email.data, form.password.data)
        db.session.commit()  # the journal keeps failures too
        if user is not None:
            targeted = throttle.under_attack(user.email)
            login_user(user)
            if targeted:
                flash(
                    _(
                        "Beaucoup d’essais de mot de passe ont échoué sur votre compte ces "
                        "dernières minutes. Si ce n’était pas vous, prévenez votre administrateur."
                    ),
                    "error",
                )
            response = redirect(_safe_next(request.args.get("next")) or url_for("cases.dashboard"))
            throttle.remember_device(response, user.email)
            return response
        throttle.failed(form.email.data)
        # Same words whether the e-mail is unknown, the password wrong or the account off.
        form.form_errors.append(_("Adresse e-mail ou mot de passe incorrect."))
        if gate.slowed:
            return render_template("accounts/login.html", form=form, slowed=True, slow=slow)
    return render_template("accounts/login.html", form=form)


@bp.post("/deconnexion")
@login_required
def logout() -> Response:
    if ActionForm().validate_on_submit():
        end_sessions(current_user, "logout")
        db.session.commit()
        logout_user()
        flash(_("Vous êtes déconnecté."), "info")
    return redirect(url_for("accounts.login"))


@bp.route("/mot-de-passe/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def set_password(token: str) -> str | Response:
    row = find_token(token)
    if row is None:
        return render_template("accounts/link_invalid.html"), 410  # type: ignore[return-value]
    form = SetPasswordForm()
    form.account_email = row.user.email
    if form.validate_on_submit():
        try:
            set_password_from_token(row, form.password.data)
        except AccountError as exc:
            form.password.errors.append(exc.message)
        else:
            db.session.commit()
            flash(_("Votre mot de passe est enregistré. Vous pouvez vous connecter."), "success")
            return redirect(url_for("accounts.login"))
    return render_template("accounts/set_password.html", form=form, user=row.user)


def _profile_page(
    locale_form: LocaleForm | None = None, password_form: ChangePasswordForm | None = None
) -> str:
    return render_template(
        "accounts/profile.html",
        locale_form=locale_form or LocaleForm(locale=current_user.locale),
        password_form=password_form or ChangePasswordForm(),
    )


@bp.get("/compte")
@login_required
def profile() -> str:
    return _profile_page()


@bp.post("/compte/langue")
@login_required
def profile_locale() -> str | Response:
    form = LocaleForm()
    if not form.validate_on_submit():
        return _profile_page(locale_form=form)
    set_locale(current_user, form.locale.data, current_app.config["LANGUAGES"])
    db.session.commit()
    flash(_("Langue enregistrée."), "success")
    return redirect(url_for("accounts.profile"))


@bp.post("/compte/mot-de-passe")
@login_required
def profile_password() -> str | Response:
    form = ChangePasswordForm()
    form.account_email = current_user.email
    if form.validate_on_submit():
        try:
            change_password(current_user, form.current.data, form.password.data)
        except AccountError as exc:
            form.current.errors.append(exc.message)
        else:
            db.session.commit()
            # The session version changed: re-issue this session (the user, not the proxy).
            login_user(current_user._get_current_object())
            flash(_("Mot de passe changé. Vos autres sessions sont fermées."), "success")
            return redirect(url_for("accounts.profile"))
    return _profile_page(password_form=form)


@bp.get("/equipe")
@login_required
def team() -> str:
    require(Role.admin)
    users = db.session.scalars(scoped(select(User), User).order_by(User.name)).all()
    return render_template("accounts/team.html", users=users, roles=ROLE_LABELS)


def new_password_link(user: User, purpose: TokenPurpose) -> str:
    """Issue a one-time token and return the absolute link that spends it (views and CLI)."""
    hours = current_app.config["INVITATION_TTL_HOURS"]
    token = issue_token(user, purpose, timedelta(hours=hours))
    if has_request_context():
        path = url_for("accounts.set_password", token=token)
    else:
        with current_app.test_request_context():
            path = url_for("accounts.set_password", token=token)
    return current_app.config["PUBLIC_URL"] + path


def _send_invitation(user: User, link: str) -> None:
    hours = current_app.config["INVITATION_TTL_HOURS"]
    mail.send(
        user.email,
        _("Votre accès à Pochette"),
        render_template("accounts/invitation.txt", user=user, org=user.org, link=link, hours=hours),
    )


@bp.route("/equipe/inviter", methods=["GET", "POST"])
@login_required
def invite() -> str | Response:
    require(Role.admin)
    form = InviteForm()
    if form.validate_on_submit():
        try:
            user = add_user(
                current_user.org,
                current_user.ref,
                email=form.email.data,
                name=form.name.data,
                role=Role(form.role.data),
            )
        except AccountError as exc:
            form.email.errors.append(exc.message)
        else:
            link = new_password_link(user, TokenPurpose.invitation)
            db.session.commit()
            _send_invitation(user, link)
            flash(_("Invitation envoyée à %(email)s.", email=user.email), "success")
            return redirect(url_for("accounts.member", user_id=user.id))
    return render_template("accounts/invite.html", form=form)


@bp.get("/equipe/<int:user_id>")
@login_required
def member(user_id: int) -> str:
    user = get_or_404(User, user_id)
    require(Role.admin)
    return render_template(
        "accounts/member.html",
        user=user,
        role_form=RoleForm(role=user.role.value),
        action_form=ActionForm(),
        roles=ROLE_LABELS,
    )


@bp.post("/equipe/<int:user_id>/role")
@login_required
def member_role(user_id: int) -> Response:
    user = get_or_404(User, user_id)
    require(Role.admin)
    form = RoleForm()
    if form.validate_on_submit():
        try:
            change_role(current_user, user, Role(form.role.data))
        except AccountError as exc:
            flash(str(exc.message), "error")
        else:
            db.session.commit()
            flash(_("Rôle mis à jour."), "success")
    else:
        flash(_("Choisissez un rôle dans la liste."), "error")
    return redirect(url_for("accounts.member", user_id=user.id))


def _toggle(user_id: int, active: bool) -> Response:
    user = get_or_404(User, user_id)
    require(Role.admin)
    if ActionForm().validate_on_submit():
        try:
            set_active(current_user, user, active)
        except AccountError as exc:
            flash(str(exc.message), "error")
        else:
            if not active:
                feeds.revoke_feeds_of(user, current_user.ref)
            db.session.commit()
            flash(_("Compte réactivé.") if active else _("Compte désactivé."), "success")
    return redirect(url_for("accounts.member", user_id=user.id))


@bp.post("/equipe/<int:user_id>/desactiver")
@login_required
def member_deactivate(user_id: int) -> Response:
    return _toggle(user_id, active=False)


@bp.post("/equipe/<int:user_id>/activer")
@login_required
def member_activate(user_id: int) -> Response:
    return _toggle(user_id, active=True)


@bp.post("/equipe/<int:user_id>/invitation")
@login_required
def member_reinvite(user_id: int) -> Response:
    user = get_or_404(User, user_id)
    require(Role.admin)
    if ActionForm().validate_on_submit():
        if not user.active:
            flash(_("Réactivez d’abord ce compte."), "error")
        else:
            link = new_password_link(user, TokenPurpose.password_reset)
            audit.record(user.org_id, current_user.ref, "user.link_sent", user.ref)
            db.session.commit()
            _send_invitation(user, link)
            flash(_("Nouveau lien envoyé à %(email)s.", email=user.email), "success")
    return redirect(url_for("accounts.member", user_id=user.id))
