"""Outgoing e-mail: SMTP in production, the console in the embedded mode.

Callers pass ready text; this module only delivers it. It never logs bodies (they may hold
one-time links).
"""

from __future__ import annotations

import smtplib
import sys
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from flask import current_app


def build(to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = current_app.config["MAIL_FROM"]
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


class Outbox:
    """Sends messages over one SMTP connection, opened at the first message and closed at the
    end (`with Outbox() as outbox:`): a batch of reminders pays for one handshake, not one each.

    A message the server refuses (a recipient, the data) leaves the connection usable; a
    broken connection is dropped, and the next message opens a new one.
    """

    def __init__(self) -> None:
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, to: str, subject: str, text: str, html: str | None = None) -> None:
        msg = build(to, subject, text, html)
        config = current_app.config
        if not config["SMTP_HOST"]:
            # Embedded mode: the operator reads the message on the console.
            print(f"\n--- e-mail to {to}: {subject}\n{text}\n---", file=sys.stdout, flush=True)
            return
        if self._smtp is None:
            self._smtp = _connect(config)
        try:
            self._smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused:
            raise  # smtplib reset the transaction: the session goes on
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:
                self._drop()  # the server closes the session
            raise
        except (smtplib.SMTPException, OSError):
            self._drop()
            raise

    def close(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError):
            self._smtp.close()
        self._smtp = None

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None


def _connect(config: Mapping[str, Any]) -> smtplib.SMTP:
    smtp = smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=20)
    try:
        if config["SMTP_STARTTLS"]:
            smtp.starttls()
        if config["SMTP_USER"]:
            smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"] or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


def send(to: str, subject: str, text: str, html: str | None = None) -> None:
    """One message on a connection of its own (a password reset, a link sent by hand)."""
    with Outbox() as outbox:
        outbox.send(to, subject, text, html)
