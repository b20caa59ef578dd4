"""Password hashing, random tokens and the HTTP headers every response carries."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import Flask, Response, request

TOKEN_BYTES = 24  # 192 bits; tokens travel in URLs, so url-safe base64

_hasher = PasswordHasher()  # argon2id with the library's current RFC 9106 low-memory profile
# A real hash of a random password, checked when the account does not exist, so the time
# taken does not tell whether an e-mail is known.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not there is a hash to check."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_token() -> tuple[str, str]:
    """A fresh token and the digest to store; the token itself is shown once and never stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def digests_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# URL prefixes whose next path segment is a secret token (one-time links, later upload links).
TOKEN_PATH_PREFIXES: tuple[str, ...] = ("/mot-de-passe/", "/ics/", "/l/")


class RedactTokens(logging.Filter):
    """Access logs (werkzeug, gunicorn) must not keep the tokens that travel in URLs."""

    def __init__(self, prefixes: tuple[str, ...] = TOKEN_PATH_PREFIXES) -> None:
        super().__init__()
        alternatives = "|".join(re.escape(p) for p in prefixes)
        self.pattern = re.compile(rf"({alternatives})[^\s/?\"]+")

    def _clean(self, value: object) -> object:
        return self.pattern.sub(r"\1[caché]", value) if isinstance(value, str) else value

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._clean(v) for k, v in record.args.items()}
        return True


def _headers(response: Response) -> Response:
    h = response.headers
    h.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'",
    )
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "geolocation=(), microphone=(), payment=()")
    # Pages hold personal data: no cache keeps them, only static assets may be cached.
    if request.endpoint != "static" or response.status_code >= 400:
        h.setdefault("Cache-Control", "no-store")
    return response


def _hsts(response: Response) -> Response:
    response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def init_app(app: Flask) -> None:
    app.after_request(_headers)
    for name in ("werkzeug", "gunicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
    if app.config["SESSION_COOKIE_SECURE"]:
        app.after_request(_hsts)
