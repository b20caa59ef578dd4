"""Operator commands: `flask --app wsgi <command>`."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from portal import config
from portal.db import db

DEMO_ORG = "Association Démo Pochette"
DEMO_USERS = (
    ("admin@demo.pochette.fr", "Camille Admin", "admin"),
    ("agent@demo.pochette.fr", "Sami Agent", "agent"),
)


def _refuse_in_production(what: str) -> None:
    if current_app.config["ENV_NAME"] == config.PRODUCTION:
        raise click.ClickException(f"{what} is refused when POCHETTE_ENV=production")


def ensure_secret_file(instance: Path) -> bool:
    """Write the embedded mode's secret key once; True when a new one was written."""
    path = instance / config.SECRET_FILE
    if path.exists():
        return False
    instance.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_urlsafe(48))
    path.chmod(0o600)
    return True


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Prepare the instance folder for the embedded mode (secret key)."""
    _refuse_in_production("init")
    if ensure_secret_file(Path(current_app.instance_path)):
        click.echo(f"Secret key written to {current_app.instance_path}/{config.SECRET_FILE}")


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Create (or refresh) the demo organisation and print its logins."""
    from portal.accounts.models import Organisation, OrgKind, Role, User
    from portal.accounts.operations import add_user, create_org
    from portal.security import hash_password

    _refuse_in_production("demo")
    ensure_secret_file(Path(current_app.instance_path))
    org = db.session.execute(
        select(Organisation).where(Organisation.name == DEMO_ORG)
    ).scalar_one_or_none()
    if org is None:
        org = create_org(
            DEMO_ORG,
            OrgKind.association,
            contact_email="accueil@demo.pochette.fr",
            contact_phone="01 23 45 67 89",
        )
    logins = []
    for email, name, role in DEMO_USERS:
        # A fresh random password at every run: nobody can rely on a known demo password.
        password = secrets.token_urlsafe(12)
        user = db.session.execute(
            select(User).where(User.org_id == org.id, User.email == email)
        ).scalar_one_or_none()
        if user is None:
            add_user(org, "system", email=email, name=name, role=Role(role), password=password)
        else:
            user.password_hash = hash_password(password)
            user.active = True
            user.session_version += 1
        logins.append((email, password, role))
    db.session.flush()
    from portal.cases.periods import french_today
    from portal.demo import seed_demo

    agent = db.session.execute(
        select(User).where(User.org_id == org.id, User.role == Role.agent)
    ).scalar_one_or_none()
    cases = seed_demo(org, agent, french_today())
    db.session.commit()
    click.echo(f"Demo organisation: {org.name} (id {org.id}), {cases} new demo case(s)")
    for email, password, role in logins:
        click.echo(f"  {role:<6} {email}  mot de passe : {password}")
    click.echo(f"Open {current_app.config['PUBLIC_URL']}/connexion")


@click.command("create-org")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(["association", "ccas", "cabinet", "other"]),
    default="association",
)
@click.option("--contact-email", default=None)
@with_appcontext
def create_org_command(name: str, kind: str, contact_email: str | None) -> None:
    """Create an organisation (a tenant) and print its id."""
    from portal.accounts.models import OrgKind
    from portal.accounts.operations import create_org

    org = create_org(
        name, OrgKind(kind), **({"contact_email": contact_email} if contact_email else {})
    )
    db.session.commit()
    click.echo(f"Organisation {org.id}: {org.name}")


@click.command("create-user")
@click.argument("org_id", type=int)
@click.argument("email")
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["admin", "agent", "viewer"]), default="agent")
@with_appcontext
def create_user_command(org_id: int, email: str, name: str, role: str) -> None:
    """Create a staff account and print its one-time link to set a password."""
    from portal.accounts.models import Organisation, Role, TokenPurpose
    from portal.accounts.operations import AccountError, add_user
    from portal.accounts.views import new_password_link

    org = db.session.get(Organisation, org_id)
    if org is None:
        raise click.ClickException(f"no organisation with id {org_id}")
    try:
        user = add_user(org, "system", email=email, name=name, role=Role(role))
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    link = new_password_link(user, TokenPurpose.invitation)
    db.session.commit()
    click.echo(f"User {user.id} ({role}) in {org.name}. Password link (shown once):")
    click.echo(link)


@click.command("storage-init")
@with_appcontext
def storage_init_command() -> None:
    """Create the bucket (or folder) if needed and check that storage answers."""
    from portal.storage import StorageError, get_store

    store = get_store()
    try:
        store.ensure_bucket()
        store.check()
    except StorageError as exc:
        raise click.ClickException(f"storage is not usable: {exc}") from None
    click.echo("Storage ready.")


@click.command("tick")
@with_appcontext
def tick_command() -> None:
    """Run the worker's 15-minute jobs once, in this process: send again the reminders, jobs
    and deletions that failed or were lost, abort abandoned uploads. The embedded mode (no
    Redis, no worker) runs it from the system's cron. Exit 1 when one of them failed."""
    from portal.background import QUARTER_JOBS, resolve

    failed = False
    for name in QUARTER_JOBS:
        short = name.rsplit(".", 1)[1]
        try:
            click.echo(f"{short}: {resolve(name)()}")
        except Exception as exc:
            db.session.rollback()
            logging.getLogger(__name__).exception("tick job %s failed", name)
            click.echo(f"{short}: FAILED ({type(exc).__name__})", err=True)
            failed = True
    if failed:
        raise click.exceptions.Exit(1)


def init_app(app: Flask) -> None:
    from portal.cases.commands import (
        check_values_command,
        create_cases_command,
        due_date_command,
        plan_client_command,
    )
    from portal.daily import run_daily_command
    from portal.documents.commands import check_file_command
    from portal.forms.commands import fill_form_command
    from portal.packs.commands import build_pack_command
    from portal.privacy.commands import storage_check_command

    for command in (
        due_date_command,
        plan_client_command,
        create_cases_command,
        init_command,
        demo_command,
        create_org_command,
        create_user_command,
        storage_init_command,
        check_file_command,
        run_daily_command,
        storage_check_command,
        build_pack_command,
        tick_command,
        fill_form_command,
        check_values_command,
    ):
        app.cli.add_command(command)
