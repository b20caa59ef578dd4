"""How many password tries an account gets, without letting a stranger lock its owner out.

A hard per-account lock is a denial of service: anyone who knows a staff address could keep it
locked by failing on purpose. So, after LOGIN_LIMIT_PER_ACCOUNT failures:

- a browser this account already logged in from (a signed "device" cookie, OWASP's device
  cookies) is not slowed: it keeps its own budget of failures;
- any other browser gets one try every LOGIN_SLOW_SECONDS per address: the right password
  still gets in after that short wait, while guessing stays slow. The page says so, and the
  person is told after logging in that his account was the target of failed tries.

Counters live in the rate limiter's storage (Redis in production). When it does not answer,
logins go on unthrottled and a warning is logged: the per-address limit of the route is the
same storage, so nothing better is possible, and refusing every login would be worse.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItem, parse
from redis.exceptions import RedisError

from portal.extensions import limiter

log = logging.getLogger(__name__)

STORAGE_ERRORS = (RedisError, OSError)
DEVICE_COOKIE = "pochette_device"
DEVICE_DAYS = 180
DEVICE_ACCOUNTS = 10  # accounts remembered per browser (a shared office computer)


def account_key(email: str) -> str:
    """Hashed, so that e-mail addresses never sit in Redis keys or cookies."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Gate:
    """May this try be checked now; if not, how long to wait. `slowed`: the account is under
    too many failures (the page says so)."""

    allowed: bool
    slowed: bool = False
    wait_seconds: int = 0


def _limit(setting: str) -> RateLimitItem:
    return parse(current_app.config[setting])


def _slow_lane() -> RateLimitItem:
    return parse(f"1 per {int(current_app.config['LOGIN_SLOW_SECONDS'])} seconds")


def _wait(item: RateLimitItem, *keys: str) -> int:
    reset_at, _remaining = limiter.limiter.get_window_stats(item, *keys)
    return max(1, math.ceil(reset_at - time.time()))


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="login-device")


def known_accounts() -> list[str]:
    """The accounts this browser logged into (keys), from its signed cookie."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return []
    try:
        value = _serializer().loads(raw, max_age=int(timedelta(days=DEVICE_DAYS).total_seconds()))
    except BadSignature:
        return []
    return [k for k in value if isinstance(k, str)] if isinstance(value, list) else []


def remember_device(response: Response, email: str) -> None:
    """After a successful login: this browser is known for this account from now on."""
    key = account_key(email)
    keys = [key] + [k for k in known_accounts() if k != key]
    response.set_cookie(
        DEVICE_COOKIE,
        _serializer().dumps(keys[:DEVICE_ACCOUNTS]),
        max_age=int(timedelta(days=DEVICE_DAYS).total_seconds()),
        httponly=True,
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        samesite="Lax",
    )


def _keys(email: str) -> tuple[str, bool]:
    key = account_key(email)
    return key, key in known_accounts()


def check(email: str) -> Gate:
    """Before the password is checked: may this try go on?"""
    if not limiter.enabled:
        return Gate(True)
    key, known = _keys(email)
    try:
        if known:
            device = _limit("LOGIN_LIMIT_PER_ACCOUNT")
            if limiter.limiter.test(device, "login-device", key):
                return Gate(True)
            return Gate(False, slowed=True, wait_seconds=_wait(device, "login-device", key))
        if limiter.limiter.test(_limit("LOGIN_LIMIT_PER_ACCOUNT"), "login-account", key):
            return Gate(True)
        lane = _slow_lane()
        address = request.remote_addr or "-"
        if limiter.limiter.hit(lane, "login-slow", key, address):
            return Gate(True, slowed=True)
        return Gate(False, slowed=True, wait_seconds=_wait(lane, "login-slow", key, address))
    except STORAGE_ERRORS:  # fail open, see the module's note
        log.warning("login throttle storage unavailable: login not throttled")
        return Gate(True)


def failed(email: str) -> None:
    """A wrong password (or unknown address) counts against the account, or the known device."""
    if not limiter.enabled:
        return
    key, known = _keys(email)
    try:
        limiter.limiter.hit(
            _limit("LOGIN_LIMIT_PER_ACCOUNT"), "login-device" if known else "login-account", key
        )
    except STORAGE_ERRORS:
        log.warning("login throttle storage unavailable: failure not counted")


def under_attack(email: str) -> bool:
    """The account used up its failures lately: said to the person once he is in."""
    if not limiter.enabled:
        return False
    try:
        return not limiter.limiter.test(
            _limit("LOGIN_LIMIT_PER_ACCOUNT"), "login-account", account_key(email)
        )
    except STORAGE_ERRORS:
        return False
