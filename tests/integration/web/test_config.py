"""Configuration layering: defaults, instance/config.py, HOOKCAST_* environment, test config."""

from __future__ import annotations

from pathlib import Path

from web import create_app
from web.database import get_database

KEY = "wS6bIbJ4pPfvbY0Dp5Jd4aCqJ3kR1Xw2m0V0h0nq0Xs="


def test_environment_overrides_instance_config(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "config.py").write_text(
        f"SECRET_KEY = 'from-file'\nENCRYPTION_KEY = {KEY!r}\n"
        "SENDER_THREADS = 4\nRETENTION_DAYS = 7\n"
    )
    monkeypatch.setenv("HOOKCAST_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("HOOKCAST_SENDER_THREADS", "32")
    monkeypatch.setenv("HOOKCAST_REQUIRE_HTTPS", "0")
    monkeypatch.setenv("HOOKCAST_ALLOWED_NETWORKS", "127.0.0.0/8, ::1/128")
    app = create_app()
    assert app.config["SECRET_KEY"] == "from-file"
    assert app.config["SENDER_THREADS"] == 32  # env beats the file
    assert app.config["RETENTION_DAYS"] == 7  # the file beats the default
    assert app.config["REQUIRE_HTTPS"] is False
    settings = app.extensions["hookcast.settings"]
    assert [str(n) for n in settings.allowed_networks] == ["127.0.0.0/8", "::1/128"]
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'hookcast.sqlite3'}"
    get_database(app).dispose()


def test_defaults_are_the_documented_ones(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOOKCAST_INSTANCE_PATH", str(tmp_path))
    app = create_app({"SECRET_KEY": "x", "ENCRYPTION_KEY": KEY})
    settings = app.extensions["hookcast.settings"]
    assert settings.require_https is True
    assert settings.allowed_networks == ()
    assert settings.sender_threads == 64
    assert settings.retention_days == 30
    get_database(app).dispose()
