"""The staff dashboard. For now a placeholder that later issues fill with cases and due dates."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.db import db
from portal.tenancy import scoped

bp = Blueprint("cases", __name__, template_folder="templates")


@bp.get("/")
@login_required
def dashboard() -> str:
    staff = db.session.execute(
        scoped(select(func.count()).select_from(User), User).where(User.active.is_(True))
    ).scalar_one()
    return render_template("cases/dashboard.html", org=current_user.org, staff=staff)
