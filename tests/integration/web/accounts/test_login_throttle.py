"""Login throttling kept in the database: per account from an address, per account, per
address; 429 with a growing Retry-After; even the right password waits; a success clears
the account's count; the setup page and the password-change form are covered; an unknown
email costs what a wrong password costs."""

from __future__ import annotations

import statistics
import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from engine.store import Database, activity, login_throttle
from engine.store.models import Activity, LoginThrottle
from engine.store.types import utcnow
from tests.conftest import TEST_PASSWORD, WorkspaceFixture, csrf_token, login

LIMIT = login_throttle.ThrottlePolicy().limits["pair"]


def _attempt(client: FlaskClient, email: str, password: str) -> Any:
    return client.post(
        "/login",
        data={"csrf_token": csrf_token(client), "email": email, "password": password},
    )


def _fail(client: FlaskClient, email: str, times: int) -> list[int]:
    return [_attempt(client, email, "wrong password").status_code for _ in range(times)]


def _end_locks(db: Database) -> None:
    """Time passes: every running lock ends (the lockout count is kept)."""
    with db.transaction() as session:
        session.execute(update(LoginThrottle).values(locked_until=utcnow()))


def test_ten_failures_lock_the_account_from_that_address_even_for_the_right_password(
    client: FlaskClient, workspace: WorkspaceFixture
) -> None:
    statuses = _fail(client, workspace.owner_email, LIMIT)
    assert statuses == [401] * (LIMIT - 1) + [429]

    right = _attempt(client, workspace.owner_email, TEST_PASSWORD)
    assert right.status_code == 429
    assert right.mimetype == "text/html"  # the sign-in page, saying why
    assert 1 <= int(right.headers["Retry-After"]) <= 60
    assert "Too many failed attempts" in right.text
    assert "even with the right password" in right.text
    assert client.get("/campaigns").status_code == 302  # not logged in


def test_the_lock_grows_each_time(
    client: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    waits = []
    for _ in range(3):
        answer = _fail(client, workspace.owner_email, LIMIT)
        assert answer[-1] == 429
        waits.append(
            int(_attempt(client, workspace.owner_email, TEST_PASSWORD).headers["Retry-After"])
        )
        _end_locks(db)
    assert waits[0] <= 60 < waits[1] <= 120 < waits[2] <= 240
    login(client, workspace.owner_email)  # once the lock is over, the right password works


def test_other_addresses_are_not_locked_out_of_the_account(
    app: Flask, client: FlaskClient, workspace: WorkspaceFixture
) -> None:
    _fail(client, workspace.owner_email, LIMIT)
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "127.0.0.2"
    login(elsewhere, workspace.owner_email)


def test_a_success_resets_the_account_count(
    client: FlaskClient, workspace: WorkspaceFixture
) -> None:
    assert _fail(client, workspace.owner_email, LIMIT - 1) == [401] * (LIMIT - 1)
    login(client, workspace.owner_email)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/campaigns")})
    assert _fail(client, workspace.owner_email, LIMIT - 1) == [401] * (LIMIT - 1)
    login(client, workspace.owner_email)


def test_one_address_trying_many_accounts_is_locked(
    client: FlaskClient, workspace: WorkspaceFixture
) -> None:
    limit = login_throttle.ThrottlePolicy().limits["address"]
    statuses = [
        _attempt(client, f"guess{n}@acme.test", "wrong password").status_code for n in range(limit)
    ]
    assert statuses == [401] * (limit - 1) + [429]
    assert _attempt(client, workspace.owner_email, TEST_PASSWORD).status_code == 429


def test_unknown_emails_are_counted_like_known_ones(client: FlaskClient, workspace) -> None:
    assert _fail(client, "nobody@acme.test", LIMIT)[-1] == 429
    assert _attempt(client, "nobody@acme.test", "anything").status_code == 429


def test_the_lock_holds_across_app_instances(
    app: Flask, app_config: dict[str, Any], client: FlaskClient, workspace: WorkspaceFixture
) -> None:
    """Another app on the same database (as another web process) sees the same lock."""
    from web import create_app
    from web.database import get_database

    _fail(client, workspace.owner_email, LIMIT)
    second = create_app(app_config)
    try:
        other = second.test_client()
        assert _attempt(other, workspace.owner_email, TEST_PASSWORD).status_code == 429
    finally:
        get_database(second).dispose()


def test_a_lock_is_written_to_the_activity_log_without_the_typed_email(
    client: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    _fail(client, workspace.owner_email, LIMIT)
    with db.transaction(write=False) as session:
        entries = activity.list_page(session, workspace.id, limit=10, kinds=["login.throttled"])
        keys = list(session.scalars(select(LoginThrottle.key)))
    assert len(entries) == 1
    assert entries[0].actor == workspace.owner_email
    assert f"{LIMIT} failed sign-ins" in entries[0].summary
    assert keys and not any(workspace.owner_email in key for key in keys)


def test_the_setup_page_is_covered(client: FlaskClient, db: Database) -> None:
    with db.transaction() as session:
        login_throttle.record_failure(
            session,
            {"address": login_throttle.keys_for("", "127.0.0.1")["address"]},
            utcnow(),
            login_throttle.ThrottlePolicy(limits={"address": 1}),
        )
    token = csrf_token(client, "/setup")
    response = client.post(
        "/setup",
        data={"csrf_token": token, "workspace": "W", "email": "a@b.co", "password": "long enough"},
    )
    assert response.status_code == 429 and "Retry-After" in response.headers
    with db.transaction(write=False) as session:
        assert session.scalar(select(Activity.id)) is None


def test_the_password_change_form_is_covered(
    logged_in: FlaskClient, workspace: WorkspaceFixture
) -> None:
    token = csrf_token(logged_in, "/settings/account")
    statuses = [
        logged_in.post(
            "/settings/account/password",
            data={
                "csrf_token": token,
                "current_password": "guess",
                "new_password": "a long new password",
            },
        ).status_code
        for _ in range(LIMIT)
    ]
    assert statuses == [422] * (LIMIT - 1) + [429]
    right = logged_in.post(
        "/settings/account/password",
        data={
            "csrf_token": token,
            "current_password": TEST_PASSWORD,
            "new_password": "a long new password",
        },
    )
    assert right.status_code == 429 and "Retry-After" in right.headers


def test_an_unknown_email_costs_what_a_known_one_costs(
    client: FlaskClient, workspace: WorkspaceFixture
) -> None:
    """Loosely: medians of a few tries each, interleaved, within 2x of each other (the same
    hash work and the same writes; without it an unknown email answered ~20x faster)."""
    known: list[float] = []
    unknown: list[float] = []
    token = csrf_token(client)
    for n in range(7):
        for email, times in ((workspace.owner_email, known), (f"ghost{n}@acme.test", unknown)):
            started = time.perf_counter()
            response = client.post(
                "/login", data={"csrf_token": token, "email": email, "password": f"wrong {n}"}
            )
            times.append(time.perf_counter() - started)
            assert response.status_code == 401
    ratio = statistics.median(known) / statistics.median(unknown)
    assert 0.5 < ratio < 2.0, (known, unknown)


def test_odd_input_is_a_plain_failure(client: FlaskClient, workspace: WorkspaceFixture) -> None:
    for email, password in (("a\x00b@acme.test", "x"), ("x" * 5000, "y" * 5000), ("", "")):
        assert _attempt(client, email, password).status_code == 401
