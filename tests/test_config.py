"""Settings: embedded defaults, production refusals, and a factory that does no I/O."""

from __future__ import annotations

import pytest

from portal import create_app
from portal.config import ConfigError, load

STRONG = "k3Jx9-Qm2vLp8ZrT4wYc7NbH1sDf6GaE0uIo5"


def test_embedded_defaults(tmp_path):
    config = load(tmp_path, environ={})
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path}/pochette.db"
    assert config["STORAGE_URL"] == f"file://{tmp_path}/storage"
    assert config["REDIS_URL"] is None and config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert config["SMTP_HOST"] is None
    assert config["BABEL_DEFAULT_LOCALE"] == "fr"
    assert config["SESSION_COOKIE_SECURE"] is False
    assert len(config["SECRET_KEY"]) >= 32  # throwaway until `flask init` writes one


def test_embedded_secret_is_read_from_the_instance_folder(tmp_path):
    (tmp_path / "secret_key").write_text("from-the-file-" + "x" * 40)
    assert load(tmp_path, environ={})["SECRET_KEY"] == "from-the-file-" + "x" * 40


@pytest.mark.parametrize("secret", [None, "", "dev", "changeme", "short-key", "a" * 64])
def test_production_refuses_missing_or_weak_secret(tmp_path, secret):
    environ = {"POCHETTE_ENV": "production"}
    if secret is not None:
        environ["POCHETTE_SECRET_KEY"] = secret
    with pytest.raises(ConfigError, match="POCHETTE_SECRET_KEY"):
        load(tmp_path, environ=environ)


def test_production_with_strong_secret_secures_cookies(tmp_path):
    config = load(tmp_path, environ={"POCHETTE_ENV": "production", "POCHETTE_SECRET_KEY": STRONG})
    assert config["SECRET_KEY"] == STRONG
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["PREFERRED_URL_SCHEME"] == "https"


def test_bad_values_name_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="POCHETTE_ENV"):
        load(tmp_path, environ={"POCHETTE_ENV": "prod"})
    with pytest.raises(ConfigError, match="POCHETTE_MAX_UPLOAD_MB"):
        load(tmp_path, environ={"POCHETTE_MAX_UPLOAD_MB": "beaucoup"})


def test_factory_does_no_io(tmp_path, monkeypatch):
    target = tmp_path / "nested" / "pochette.db"
    store = tmp_path / "store"
    monkeypatch.chdir(tmp_path)
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{target}",
            "STORAGE_URL": f"file://{store}",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        }
    )
    assert app.url_map  # built
    assert list(tmp_path.iterdir()) == []  # no database, folder, storage or secret created


def test_app_refuses_to_start_in_production_with_a_weak_key(monkeypatch):
    monkeypatch.setenv("POCHETTE_ENV", "production")
    monkeypatch.setenv("POCHETTE_SECRET_KEY", "changeme")
    with pytest.raises(ConfigError, match="too weak"):
        create_app()
    monkeypatch.setenv("POCHETTE_SECRET_KEY", STRONG)
    assert create_app().config["SESSION_COOKIE_SECURE"] is True


def test_trusted_proxies_is_a_small_count(tmp_path):
    assert load(tmp_path, environ={})["TRUSTED_PROXIES"] == 0
    assert load(tmp_path, environ={"POCHETTE_TRUSTED_PROXIES": "1"})["TRUSTED_PROXIES"] == 1
    for wrong in ("-1", "12", "oui"):
        with pytest.raises(ConfigError, match="POCHETTE_TRUSTED_PROXIES"):
            load(tmp_path, environ={"POCHETTE_TRUSTED_PROXIES": wrong})
