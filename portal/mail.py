"""Outgoing e-mail: SMTP in production, the console in the embedded mode.

Callers pass ready text; this module only delivers it. It never logs bodies (they may hold
one-time links).
"""

from __future__ import annotations

import smtplib
import sys
from email.message import EmailMessage

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


def send(to: str, subject: str, text: str, html: str | None = None) -> None:
    msg = build(to, subject, text, html)
    config = current_app.config
    if not config["SMTP_HOST"]:
        # Embedded mode: the operator reads the message on the console.
        print(f"\n--- e-mail to {to}: {subject}\n{text}\n---", file=sys.stdout, flush=True)
        return
    with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=20) as smtp:
        if config["SMTP_STARTTLS"]:
            smtp.starttls()
        if config["SMTP_USER"]:
            smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(msg)
