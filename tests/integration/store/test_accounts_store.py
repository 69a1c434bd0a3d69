"""Account state in the store: lock lengths, counters shared through the database, and the
purge of ended sessions and stale counters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.runtime import EngineRuntime
from engine.store import Database, accounts, activity, login_sessions, login_throttle
from engine.store.models import Activity, LoginSession, LoginThrottle
from engine.store.types import utcnow
from web import engine_settings

POLICY = login_throttle.ThrottlePolicy()


@pytest.mark.parametrize(
    ("lockouts", "minutes"), [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (20, 60)]
)
def test_each_lock_is_twice_as_long_up_to_an_hour(lockouts: int, minutes: int) -> None:
    assert POLICY.lock_length(lockouts) == timedelta(minutes=minutes)


def test_failures_outside_the_window_start_a_new_count(db: Database) -> None:
    keys = login_throttle.keys_for("a@b.co", "127.0.0.1")
    start = utcnow()
    with db.transaction() as session:
        for _ in range(POLICY.limits["pair"] - 1):
            assert login_throttle.record_failure(session, keys, start, POLICY).locked == {}
    later = start + POLICY.window + timedelta(seconds=1)
    with db.transaction() as session:
        failure = login_throttle.record_failure(session, keys, later, POLICY)
        assert failure.locked == {}
        assert login_throttle.locked_until(session, keys.values(), later) is None


def test_lockouts_are_forgotten_after_a_quiet_day(db: Database) -> None:
    keys = {"pair": login_throttle.keys_for("a@b.co", "127.0.0.1")["pair"]}
    moment = utcnow()
    with db.transaction() as session:
        for _ in range(POLICY.limits["pair"]):
            failure = login_throttle.record_failure(session, keys, moment, POLICY)
    assert failure.locked_until == moment + timedelta(minutes=1)
    moment += POLICY.memory + timedelta(minutes=1)
    with db.transaction() as session:
        for _ in range(POLICY.limits["pair"]):
            failure = login_throttle.record_failure(session, keys, moment, POLICY)
    assert failure.locked_until == moment + timedelta(minutes=1)  # not 2: a fresh start


def test_the_purge_removes_ended_sessions_and_stale_counters(db: Database) -> None:
    now = utcnow()
    limits = login_sessions.SessionLimits()
    with db.transaction() as session:
        user = accounts.create_user(session, email="p@b.co", password_hash="x")

        def start(created_ago: timedelta) -> str:
            return login_sessions.start(
                session,
                user_id=user.id,
                workspace_id=None,
                client_address="127.0.0.1",
                user_agent="t",
                now=now - created_ago,
            ).record.id

        live = start(timedelta(hours=1))
        session.get(LoginSession, live).last_seen_at = now
        too_old = start(timedelta(days=15))
        session.get(LoginSession, too_old).last_seen_at = now
        start(timedelta(hours=13))  # idle: last seen when it began
        stale = {"pair": "pair:stale"}
        fresh = {"pair": "pair:fresh"}
        login_throttle.record_failure(session, stale, now - timedelta(days=2), POLICY)
        login_throttle.record_failure(session, fresh, now, POLICY)
    with db.transaction() as session:
        assert login_sessions.purge_expired(session, now, limits) == 2
        assert login_throttle.purge_stale(session, now, POLICY) == 1
    with db.transaction(write=False) as session:
        assert list(session.scalars(select(LoginSession.id))) == [live]
        assert list(session.scalars(select(LoginThrottle.key))) == ["pair:fresh"]


def test_the_runtime_purge_covers_activity_sessions_and_counters(app, db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        workspace = accounts.create_workspace(session, "W")
        user = accounts.create_user(session, email="r@b.co", password_hash="x")
        old = activity.record(session, workspace.id, activity.Actor("bot"), "login", "old")
        old.id = "act_" + "0" * 26  # the oldest possible id
        activity.record(session, workspace.id, activity.Actor("bot"), "login", "new")
        login_sessions.start(
            session,
            user_id=user.id,
            workspace_id=None,
            client_address="",
            user_agent="",
            now=now - timedelta(days=30),
        )
        login_throttle.record_failure(
            session, {"pair": "pair:old"}, now - timedelta(days=3), POLICY
        )
    runtime = EngineRuntime(engine_settings(app), db)
    try:
        runtime.purge_expired()
    finally:
        runtime.transport.close()
    with db.transaction(write=False) as session:
        assert [a.summary for a in session.scalars(select(Activity))] == ["new"]
        assert session.scalar(select(LoginSession.id)) is None
        assert session.scalar(select(LoginThrottle.key)) is None
