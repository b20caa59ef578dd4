"""Flask extensions, created unbound here and bound to an app in `create_app`."""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
login_manager = LoginManager()
babel = Babel()
migrate = Migrate()
# No default limit: limits are set per route (login, public link pages).
limiter = Limiter(key_func=get_remote_address, strategy="fixed-window")
