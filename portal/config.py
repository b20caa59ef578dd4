"""Settings from POCHETTE_* environment variables, with embedded defaults for a first run.

Everything the app reads from the outside world is decided here, once, into a plain dict that
`create_app` copies into `app.config`; nothing else reads `os.environ`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PRODUCTION = "production"
DEVELOPMENT = "development"
TESTING = "testing"

# Values seen in tutorials and .env examples; a production key must be none of them.
_WEAK_SECRETS = {"", "dev", "secret", "changeme", "change-me", "please-change-me", "pochette"}
MIN_SECRET_LENGTH = 32
SECRET_FILE = "secret_key"  # noqa: S105 (a file name)


class ConfigError(RuntimeError):
    """The settings cannot run the app; the message says which variable to fix."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"not a boolean: {value!r} (use 1/0, true/false, yes/no)")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None


def check_secret_key(key: str | None) -> None:
    """Refuse what an attacker could guess: production sessions are signed with this key."""
    if not key:
        raise ConfigError("POCHETTE_SECRET_KEY is required in production")
    if key.lower() in _WEAK_SECRETS or len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"POCHETTE_SECRET_KEY is too weak: use at least {MIN_SECRET_LENGTH} random characters "
            '(python -c "import secrets; print(secrets.token_urlsafe(48))")'
        )
    if len(set(key)) < 10:
        raise ConfigError("POCHETTE_SECRET_KEY is too weak: it repeats too few characters")


def _embedded_secret(instance_path: Path) -> str:
    """Read the key `flask init` wrote; a process without one gets a throwaway key."""
    path = instance_path / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return secrets.token_urlsafe(48)


def load(instance_path: Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the settings dict; raises ConfigError with the variable to fix."""
    env = os.environ if environ is None else environ
    get = env.get
    mode = get("POCHETTE_ENV", DEVELOPMENT)
    if mode not in {PRODUCTION, DEVELOPMENT, TESTING}:
        raise ConfigError(f"POCHETTE_ENV must be production, development or testing, not {mode!r}")
    production = mode == PRODUCTION

    secret = get("POCHETTE_SECRET_KEY")
    if production:
        check_secret_key(secret)
    elif not secret:
        secret = _embedded_secret(instance_path)

    redis_url = get("POCHETTE_REDIS_URL") or None
    https = _bool(get("POCHETTE_HTTPS"), default=production)
    smtp_host = get("POCHETTE_SMTP_HOST") or None
    max_upload_mb = _int(env, "POCHETTE_MAX_UPLOAD_MB", 20)
    trusted_proxies = _int(env, "POCHETTE_TRUSTED_PROXIES", 0)
    if not 0 <= trusted_proxies <= 5:
        raise ConfigError("POCHETTE_TRUSTED_PROXIES must be between 0 and 5 (reverse proxies)")

    return {
        "ENV_NAME": mode,
        "SECRET_KEY": secret,
        "DATABASE_URL": get("POCHETTE_DATABASE_URL")
        or f"sqlite:///{instance_path / 'pochette.db'}",
        "DATABASE_ECHO": _bool(get("POCHETTE_DATABASE_ECHO"), default=False),
        # Storage: see portal/storage.py for the meaning of each key.
        "STORAGE_URL": get("POCHETTE_STORAGE_URL") or f"file://{instance_path / 'storage'}",
        "S3_ENDPOINT": get("POCHETTE_S3_ENDPOINT") or None,
        "S3_REGION": get("POCHETTE_S3_REGION") or get("AWS_DEFAULT_REGION") or "us-east-1",
        "S3_ACCESS_KEY_ID": get("AWS_ACCESS_KEY_ID") or None,
        "S3_SECRET_ACCESS_KEY": get("AWS_SECRET_ACCESS_KEY") or None,
        "S3_ADDRESSING_STYLE": get("POCHETTE_S3_ADDRESSING_STYLE") or "path",
        "S3_MULTIPART_THRESHOLD": _int(env, "POCHETTE_S3_MULTIPART_MB", 8) * 1024 * 1024,
        "PRESIGN_EXPIRY_SECONDS": _int(env, "POCHETTE_PRESIGN_EXPIRY_SECONDS", 300),
        # Jobs run inline after the commit when no Redis is configured.
        "REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_ENABLED": _bool(get("POCHETTE_RATELIMIT"), default=True),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis down must not lock anyone out: limits go on in this process's memory (with a
        # warning in the log) until Redis answers again, and any other limiter error lets the
        # request through (logged) rather than answering 500.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        "LOGIN_LIMIT_PER_IP": get("POCHETTE_LOGIN_LIMIT_PER_IP") or "20 per minute",
        "LOGIN_LIMIT_PER_ACCOUNT": get("POCHETTE_LOGIN_LIMIT_PER_ACCOUNT") or "5 per 15 minutes",
        # Past that, a browser the account never used gets one try per address this often.
        "LOGIN_SLOW_SECONDS": _int(env, "POCHETTE_LOGIN_SLOW_SECONDS", 30),
        # Mail: printed on the console unless an SMTP host is set.
        "SMTP_HOST": smtp_host,
        "SMTP_PORT": _int(env, "POCHETTE_SMTP_PORT", 587),
        "SMTP_USER": get("POCHETTE_SMTP_USER") or None,
        "SMTP_PASSWORD": get("POCHETTE_SMTP_PASSWORD") or None,
        "SMTP_STARTTLS": _bool(get("POCHETTE_SMTP_STARTTLS"), default=True),
        "MAIL_FROM": get("POCHETTE_MAIL_FROM") or "Pochette <ne-pas-repondre@pochette.invalid>",
        # Reverse proxies in front of the app (0: clients connect directly). With n, the client
        # address is the n-th from the right of X-Forwarded-For: rate limits and the journal
        # see the person, not the proxy; a client cannot spoof it past the proxies we trust.
        "TRUSTED_PROXIES": trusted_proxies,
        "PUBLIC_URL": (get("POCHETTE_PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "INVITATION_TTL_HOURS": _int(env, "POCHETTE_INVITATION_TTL_HOURS", 72),
        # The link page's script sends one file per request, so a request over one file's
        # limit (plus the form fields) is refused from its Content-Length, before the body is
        # read. Without script, several files share that limit (the 413 page says so).
        "MAX_UPLOAD_BYTES": max_upload_mb * 1024 * 1024,
        "MAX_CONTENT_LENGTH": max_upload_mb * 1024 * 1024 + 1024 * 1024,
        # Files looked at in one request (the rest are refused, one by one, with a message),
        # and documents one upload link may ever store: each file costs a decode.
        "MAX_FILES_PER_UPLOAD": _int(env, "POCHETTE_MAX_FILES_PER_UPLOAD", 20),
        "MAX_FILES_PER_LINK": _int(env, "POCHETTE_MAX_FILES_PER_LINK", 200),
        # Parts of one multipart body (Flask's default is 1,000): each file part is a temporary
        # file, open until the response. More is refused with the 413 page ("un par un").
        "MAX_FORM_PARTS": 200,
        "UPLOAD_LINK_DAYS": _int(env, "POCHETTE_UPLOAD_LINK_DAYS", 30),
        # How long a client may delete his own upload, while staff have not reviewed it.
        "UPLOAD_UNDO_MINUTES": 30,
        "API_LIMIT_PER_TOKEN": get("POCHETTE_API_LIMIT_PER_TOKEN") or "600 per minute",
        "LINK_LIMIT_PER_IP": get("POCHETTE_LINK_LIMIT_PER_IP") or "60 per minute",
        "LINK_UPLOAD_LIMIT_PER_IP": get("POCHETTE_LINK_UPLOAD_LIMIT_PER_IP") or "30 per minute",
        "LINK_VERIFY_TRIES": 5,
        # Each lock after LINK_VERIFY_TRIES wrong birth dates lasts longer; one more lock than
        # listed suspends the link until staff reopen it (the agent is told).
        "LINK_VERIFY_LOCKS_MINUTES": (15, 60),
        # Cookies and sessions.
        "SESSION_COOKIE_NAME": "pochette_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        # Webhook URLs on loopback or private networks: refused in production (portal.api).
        "WEBHOOK_ALLOW_PRIVATE": _bool(
            get("POCHETTE_WEBHOOK_ALLOW_PRIVATE"), default=not production
        ),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": https,
        "PERMANENT_SESSION_LIFETIME": _int(env, "POCHETTE_SESSION_HOURS", 10) * 3600,
        "PREFERRED_URL_SCHEME": "https" if https else "http",
        "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead, which already expires
        # Interface languages: French first.
        "BABEL_DEFAULT_LOCALE": "fr",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Paris",
        "LANGUAGES": ("fr", "en"),
    }
