"""Shared fixtures: ``app``, ``client``, ``runner``, ``db`` and a ready ``workspace``.

Database-backed fixtures run on SQLite always and again on PostgreSQL where
``HOOKCAST_TEST_POSTGRES_URL`` is set (e.g. ``postgresql+psycopg://postgres@127.0.0.1/test``).
SQLite: each test gets a copy of a database migrated once per session. PostgreSQL: each
pytest process migrates its own scratch database once and truncates it between tests.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.store import Database, accounts, migrate
from engine.store.models import Base
from web import create_app
from web.auth import hash_password
from web.database import get_database

POSTGRES_URL = os.environ.get("HOOKCAST_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])
TEST_ENCRYPTION_KEY = "wS6bIbJ4pPfvbY0Dp5Jd4aCqJ3kR1Xw2m0V0h0nq0Xs="
TEST_PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "hookcast.sqlite3"
    database = Database(f"sqlite:///{path}")
    migrate.upgrade(database)
    database.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A scratch PostgreSQL database for this pytest process, migrated to head."""
    if not POSTGRES_URL:
        pytest.skip("HOOKCAST_TEST_POSTGRES_URL is not set")
    admin_url = make_url(POSTGRES_URL)
    name = f"hookcast_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    database = Database(url)
    migrate.upgrade(database)
    database.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database for one test, on each configured backend."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        _truncate_postgres(url)
        return url
    path = tmp_path / "hookcast.sqlite3"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_config(database_url: str) -> dict[str, Any]:
    """The test configuration; override keys in a test module's own ``app_config``."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        # Tests send only to loopback receivers, over plain HTTP.
        "REQUIRE_HTTPS": False,
        "ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
        "SENDER_THREADS": 4,
    }


@pytest.fixture
def app(
    app_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    monkeypatch.setenv("HOOKCAST_INSTANCE_PATH", str(tmp_path / "instance"))
    for name in list(os.environ):
        if name.startswith("HOOKCAST_") and name not in {
            "HOOKCAST_INSTANCE_PATH",
            "HOOKCAST_TEST_POSTGRES_URL",
        }:
            monkeypatch.delenv(name)
    flask_app = create_app(app_config)
    yield flask_app
    get_database(flask_app).dispose()


@pytest.fixture
def db(app: Flask) -> Database:
    return get_database(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask, app_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A click runner whose ``hookcast`` commands see the test app's configuration."""
    for name in ("DATABASE_URL", "SECRET_KEY", "ENCRYPTION_KEY"):
        monkeypatch.setenv(f"HOOKCAST_{name}", str(app_config[name]))
    return CliRunner()


@dataclass
class WorkspaceFixture:
    id: str
    api_key: str
    owner_email: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def make_workspace(
    db: Database, name: str = "Acme", email: str = "owner@acme.test"
) -> WorkspaceFixture:
    with db.transaction() as session:
        workspace = accounts.create_workspace(session, name)
        user = accounts.get_user_by_email(session, email) or accounts.create_user(
            session, email=email, password_hash=hash_password(TEST_PASSWORD)
        )
        accounts.set_membership(session, user_id=user.id, workspace_id=workspace.id, role="owner")
        key = accounts.create_api_key(session, workspace_id=workspace.id, name="tests").key
    return WorkspaceFixture(id=workspace.id, api_key=key, owner_email=email)


@pytest.fixture
def workspace(db: Database) -> WorkspaceFixture:
    return make_workspace(db)


class ApiClient:
    """``client`` plus the workspace's Bearer key and the ``/api/v1`` prefix."""

    def __init__(self, client: FlaskClient, workspace: WorkspaceFixture) -> None:
        self.client = client
        self.workspace = workspace

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.workspace.headers, **kwargs.pop("headers", {})}
        return self.client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def api(client: FlaskClient, workspace: WorkspaceFixture) -> ApiClient:
    return ApiClient(client, workspace)


_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token a page hands out to this client's session."""
    page = client.get(path).get_data(as_text=True)
    match = _CSRF_META.search(page)
    assert match, f"no csrf token on {path}"
    return match.group(1)


def login(client: FlaskClient, email: str, password: str = TEST_PASSWORD) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def logged_in(client: FlaskClient, workspace: WorkspaceFixture) -> FlaskClient:
    """``client`` logged in as the workspace's owner."""
    login(client, workspace.owner_email)
    return client
