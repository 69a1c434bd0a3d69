"""Group commit: concurrent small ingestion requests share one write transaction, and each
still gets exactly its own answer, duplicates and caps holding across the group."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import event, func, select

from engine.campaigns.ingest import IncomingEvent, IngestConflict, ingest_and_commit
from engine.campaigns.write_group import WriteGroup
from engine.store import Database
from engine.store.models import Contact, Event, Notification
from tests.conftest import ApiClient
from tests.integration import factories
from tests.integration.campaign_factories import event_campaign, send_event


def _count(db: Any, model: Any, **where: Any) -> int:
    with db.session() as session:
        query = select(func.count()).select_from(model).filter_by(**where)
        return session.scalar(query)


def _run_grouped(group: WriteGroup, jobs: list[tuple[str, list[IncomingEvent]]]) -> list[Any]:
    """Queue ``jobs`` while the group's writer is busy, then let them all through at once;
    each job's results, or the error it raised."""
    answers: list[Any] = [None] * len(jobs)

    def run(index: int, workspace_id: str, events: list[IncomingEvent]) -> None:
        try:
            answers[index] = group.ingest(workspace_id, events, factories.TEST_RENDER_SETTINGS)
        except Exception as exc:  # the job's own error is its answer
            answers[index] = exc

    threads = [threading.Thread(target=run, args=(i, *job)) for i, job in enumerate(jobs)]
    with group._writer:  # as if a group were being written: the jobs queue up behind it
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(group._queued) < len(jobs) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(group._queued) == len(jobs)
    for thread in threads:
        thread.join(10)
    return answers


def test_queued_requests_are_written_in_one_transaction(api: ApiClient, db: Any) -> None:
    campaign = event_campaign(api, ["signup"], frequency_cap={"max": 1, "per_seconds": 3600})
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda conn: commits.append(1))
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    driver_statements: list[str] = []  # what SQLite itself runs (reads go straight to it)
    if not db.is_postgres:
        event.listen(
            db.engine,
            "checkout",
            lambda dbapi, *_: dbapi.set_trace_callback(driver_statements.append),
        )
    workspace_id = api.workspace.id
    jobs = [
        (workspace_id, [IncomingEvent(name="signup", external_id="ann", client_id="one")]),
        (workspace_id, [IncomingEvent(name="signup", external_id="bob")]),
        (workspace_id, [IncomingEvent(name="signup", external_id="ann", client_id="one")]),
        (workspace_id, [IncomingEvent(name="signup", external_id="ann")]),  # capped for ann
        (workspace_id, [IncomingEvent(name="other", external_id="cy", attributes={"a": 1})]),
    ]

    answers = _run_grouped(WriteGroup(db), jobs)

    assert len(commits) == 1  # five requests, one transaction
    # ... and one batch: each table read and written once, no savepoint per request.
    if not db.is_postgres:  # (PostgreSQL's reads go in one pipeline, unseen from here)
        assert sum("FROM events" in sql for sql in driver_statements) == 1
    assert sum("INTO notifications" in sql for sql in statements) == 1
    assert not any("SAVEPOINT" in sql for sql in statements)
    first, bob, again, capped, other = (a[0] for a in answers)
    assert (first.duplicate, again.duplicate, again.id) == (False, True, first.id)
    assert len(first.notifications) == len(bob.notifications) == 1
    assert again.notifications == [] and other.notifications == []
    assert _count(db, Event) == 4 and _count(db, Contact) == 3
    with db.session() as session:
        skipped = session.get(Notification, capped.notifications[0])
        assert (skipped.status, skipped.reason) == ("skipped", "frequency_capped")
    assert _count(db, Notification, campaign_id=campaign["id"], status="pending") == 2


def test_one_request_failing_loses_nothing_of_the_others(api: ApiClient, db: Any) -> None:
    event_campaign(api, ["signup"])
    good = [IncomingEvent(name="signup", external_id="ann")]
    orphan = [IncomingEvent(name="signup", external_id="zed")]  # no such workspace
    jobs = [(api.workspace.id, good), ("wsp_missing", orphan), (api.workspace.id, good)]

    answers = _run_grouped(WriteGroup(db), jobs)

    assert isinstance(answers[1], IngestConflict)  # retried on its own, then refused
    assert not isinstance(answers[0], Exception) and not isinstance(answers[2], Exception)
    assert _count(db, Event) == 2 and _count(db, Notification) == 2
    assert _count(db, Contact, external_id="zed") == 0


@pytest.mark.parametrize("requests", [12])
def test_concurrent_single_events_over_the_api_are_each_answered_once(
    api: ApiClient, db: Any, requests: int
) -> None:
    event_campaign(api, ["a"])
    app = api.client.application
    barrier = threading.Barrier(requests)
    answers: list[dict[str, Any]] = []

    def post(n: int) -> None:
        client = app.test_client()
        body = {"name": "a", "id": f"evt-{n}", "contact": {"external_id": f"c{n % 3}"}}
        barrier.wait()
        response = client.post("/api/v1/events", json=body, headers=api.workspace.headers)
        assert response.status_code == 202
        answers.append(response.get_json()["events"][0])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == requests and not any(a["duplicate"] for a in answers)
    assert _count(db, Event) == requests and _count(db, Notification) == requests
    assert _count(db, Contact) == 3
    with db.session() as session:
        stored = dict(session.execute(select(Event.client_id, Event.id)).all())
    assert {stored[f"evt-{n}"] for n in range(requests)} == {a["id"] for a in answers}


def test_caps_hold_for_concurrent_requests_of_separate_processes(
    api: ApiClient, db: Any, database_url: str
) -> None:
    """Six requests for one contact at once, from three "processes" (each its own engine and
    connection pool, as separate web processes have), each request its own transaction
    (batches are not grouped): the cap of one message an hour lets exactly one through."""
    campaign = event_campaign(api, ["signup"], frequency_cap={"max": 1, "per_seconds": 3600})
    send_event(api, "hello", "ann")  # the contact exists: no request waits on creating it
    databases = [Database(database_url) for _ in range(3)]
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def request(n: int) -> None:
        # More than GROUPED_EVENTS: ingested in a transaction of its own, as batches are.
        events = [
            IncomingEvent(name="signup", external_id="ann", client_id=f"e{n}-{i}") for i in range(5)
        ]
        try:
            with databases[n % 3].session(write=True) as session:
                barrier.wait()
                ingest_and_commit(
                    session, api.workspace.id, events, settings=factories.TEST_RENDER_SETTINGS
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for database in databases:
        database.dispose()

    assert not errors
    assert _count(db, Event) == 31
    assert _count(db, Notification, campaign_id=campaign["id"], status="pending") == 1
    assert _count(db, Notification, campaign_id=campaign["id"], status="skipped") == 29
