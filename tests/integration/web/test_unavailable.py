"""The database away (issue #14): the API answers 503 ``unavailable`` with ``Retry-After``
and logs one line per kind of failure, no traceback; ``/healthz`` is JSON and 200 only when
the database answers; an SQLite file deleted or replaced under the running process is
noticed, and nothing is acknowledged that the next start would not find."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from engine.store import Database
from engine.store.availability import RateLimitedLog, check_database, wait_for_database
from tests.conftest import TEST_ENCRYPTION_KEY, WorkspaceFixture, make_workspace
from web import create_app
from web.database import get_database

#: Nothing listens on port 1 of loopback: connecting is refused at once, nothing leaves.
UNREACHABLE_POSTGRES = "postgresql+psycopg://hookcast@127.0.0.1:1/hookcast"


def _app(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("HOOKCAST_INSTANCE_PATH", str(tmp_path / "instance"))
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key",
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "REQUIRE_HTTPS": False,
        }
    )


def _assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["error"]["code"] == "unavailable"
    assert set(body["error"]) == {"code", "message", "details"}


@pytest.fixture(params=["postgres", "sqlite"])
def unreachable(request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An app whose database cannot be reached: PostgreSQL refusing connections, or an
    SQLite file in a folder that is not there (an unmounted volume)."""
    if request.param == "postgres":
        url = UNREACHABLE_POSTGRES
    else:
        url = f"sqlite:///{tmp_path}/not-mounted/hookcast.sqlite3"
    app = _app(url, tmp_path, monkeypatch)
    yield app
    get_database(app).dispose()


def test_api_answers_503_and_logs_one_line_without_traceback(unreachable, caplog) -> None:
    client = unreachable.test_client()
    auth = {"Authorization": "Bearer hk_whatever"}
    caplog.set_level(logging.INFO)
    for _ in range(10):
        _assert_unavailable(client.get("/api/v1/contacts", headers=auth))
        _assert_unavailable(
            client.post(
                "/api/v1/events",
                json={"name": "a", "contact": {"external_id": "c"}},
                headers=auth,
            )
        )
    page = client.get("/login")
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "database unavailable, answering 503" in lines[0].getMessage()
    assert "refused" in lines[0].getMessage() or "unable to open" in lines[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records)


def test_healthz_is_json_and_503_while_the_database_is_away(unreachable) -> None:
    response = unreachable.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.mimetype == "application/json"
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["status"] == "unavailable" and body["database"]


def test_healthz_is_200_when_the_database_answers(client) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_rate_limited_log_says_how_many_lines_it_left_out(caplog) -> None:
    now = [0.0]
    log = RateLimitedLog(60, clock=lambda: now[0])
    logger = logging.getLogger("hookcast.test")
    caplog.set_level(logging.INFO, "hookcast.test")
    assert log(logger, logging.WARNING, "a", "first")
    assert not log(logger, logging.WARNING, "a", "again")
    assert log(logger, logging.WARNING, "b", "another kind")
    now[0] = 61
    assert log(logger, logging.WARNING, "a", "later")
    assert [r.getMessage() for r in caplog.records] == [
        "first",
        "another kind",
        "later (1 more like it since the last such line)",
    ]


def test_waiting_backs_off_and_says_so_every_few_seconds() -> None:
    database = Database(UNREACHABLE_POSTGRES)
    slept: list[float] = []
    said: list[str] = []

    class Enough(Exception):
        pass

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 8:
            raise Enough

    with pytest.raises(Enough):
        wait_for_database(
            database, say=said.append, sleep=sleep, clock=lambda: sum(slept), say_every=5
        )
    database.dispose()
    assert slept == [0.5, 1, 2, 4, 8, 10, 10, 10]
    # said at 0, then at 7.5 (0.5+1+2+4), 15.5, 25.5 and 35.5 seconds
    assert len(said) == 5 and all("waiting for the database" in line for line in said)


# --- SQLite: the file under a running process ----------------------------------------------


@pytest.fixture
def sqlite_app(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    path = tmp_path / "data" / "hookcast.sqlite3"
    path.parent.mkdir()
    shutil.copyfile(sqlite_template, path)
    app = _app(f"sqlite:///{path}", tmp_path, monkeypatch)
    yield app, path
    get_database(app).dispose()


def _event(index: int) -> dict[str, Any]:
    return {"name": "a", "id": f"e-{index}", "contact": {"external_id": f"c-{index}"}}


def _stored_event_ids(path: Path) -> set[str]:
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        ids = {row[0] for row in conn.execute(text("SELECT client_id FROM events"))}
    engine.dispose()
    return ids


@pytest.mark.parametrize("how", ["deleted", "renamed", "replaced"])
def test_an_sqlite_file_gone_from_under_the_process_is_noticed(sqlite_app, how) -> None:
    app, path = sqlite_app
    workspace: WorkspaceFixture = make_workspace(get_database(app), "W")
    client = app.test_client()
    post = lambda body: client.post("/api/v1/events", json=body, headers=workspace.headers)  # noqa: E731
    assert post(_event(1)).status_code == 202
    aside = path.with_name("moved.sqlite3")
    if how == "deleted":
        os.unlink(path)
    elif how == "renamed":
        os.rename(path, aside)
    else:
        shutil.copyfile(path, aside)
        os.replace(aside, path)  # same content, another file
    health = client.get("/healthz")
    assert health.status_code == 503
    assert "the database file" in health.get_json()["database"]
    for index in range(2, 6):
        _assert_unavailable(post(_event(index)))
    _assert_unavailable(client.get("/api/v1/contacts", headers=workspace.headers))
    if how == "deleted":
        assert not path.exists()  # no new, empty file was made at the path
    elif how == "renamed":
        assert not path.exists()
        get_database(app).dispose()
        os.rename(aside, path)  # back beside its WAL: it holds the first event only
        assert _stored_event_ids(path) == {"e-1"}
    else:
        assert not {"e-2", "e-3", "e-4", "e-5"} & _stored_event_ids(path)


def test_an_sqlite_file_put_back_is_used_again(sqlite_app) -> None:
    app, path = sqlite_app
    database = get_database(app)
    workspace = make_workspace(database, "W")
    client = app.test_client()
    aside = path.with_name("moved.sqlite3")
    os.rename(path, aside)
    assert check_database(database) is not None
    os.rename(aside, path)
    assert check_database(database) is None
    response = client.post("/api/v1/events", json=_event(7), headers=workspace.headers)
    assert response.status_code == 202
    assert _stored_event_ids(path) == {"e-7"}


def test_a_write_whose_file_vanishes_before_commit_is_not_committed(sqlite_app) -> None:
    app, path = sqlite_app
    database = get_database(app)
    aside = path.with_name("moved.sqlite3")
    session = database.session(write=True)
    session.execute(
        text("INSERT INTO workspaces (id, name, created_at) VALUES ('w', 'W', '2026-01-01')")
    )
    os.rename(path, aside)
    with pytest.raises(Exception, match="was deleted or renamed"):
        session.commit()
    session.close()
    os.rename(aside, path)
    with database.transaction(write=False) as session:
        assert session.execute(text("SELECT count(*) FROM workspaces WHERE id = 'w'")).scalar() == 0
