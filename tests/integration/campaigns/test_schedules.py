"""Schedule runs: fire times claimed once, misfires, audiences selected in SQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from engine.campaigns import schedules
from engine.campaigns.schedules import run_due_schedules
from engine.rules import conditions as rules
from engine.store import schedule_runs
from engine.store.models import Campaign, Contact, Notification, ScheduleRun
from engine.templating.variables import build_variables
from tests.conftest import ApiClient
from tests.integration.campaign_factories import webhook
from web import engine_settings

ACTIVATED = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
NINE = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

CONTACTS: list[dict[str, Any]] = [
    {"plan": "pro", "score": 90, "tags": ["beta"], "signed_up": "2025-06-01T00:00:00Z"},
    {"plan": "pro", "score": "90"},
    {"plan": "free", "score": 10, "tags": ["beta", "vip"]},
    {"plan": "Pro", "score": 50.5, "email": "ada@example.com"},
    {"score": None, "email": "bob@example.org"},
    {"plan": ["pro"], "nested": {"level": 3}},
    {"nested": {"level": "3"}, "signed_up": "2026-02-01T00:00:00+01:00"},
    {},
]

AUDIENCES: list[dict[str, Any] | None] = [
    None,
    {"field": "contact.plan", "op": "eq", "value": "pro"},
    {
        "any": [
            {"field": "contact.score", "op": "gte", "value": 50},
            {"field": "contact.tags", "op": "contains", "value": "vip"},
        ]
    },
    {"not": {"field": "contact.email", "op": "ends_with", "value": "example.com"}},
    {
        "all": [
            {"field": "contact.nested.level", "op": "in", "value": [3, 4]},
            {"field": "contact.plan", "op": "exists"},
        ]
    },
    {"field": "contact.signed_up", "op": "before", "value": "2026-01-01T00:00:00Z"},
    {"field": "contact.external_id", "op": "matches", "value": "^c[0-3]$"},
    {"field": "contact.plan", "op": "not_in", "value": ["pro", "free"]},
]


def _schedule_campaign(
    api: ApiClient,
    db: Any,
    *,
    audience: dict | None = None,
    cron: str = "0 9 * * *",
    **extra: Any,
) -> str:
    body = {
        "name": "Daily",
        "trigger": {"type": "schedule", "cron": cron, "timezone": "UTC"},
        "audience": {"conditions": audience} if audience else {},
        "webhook": webhook(),
        **extra,
    }
    created = api.post("/campaigns", json=body)
    assert created.status_code == 201, created.get_json()
    campaign_id = created.get_json()["id"]
    activated = api.post(f"/campaigns/{campaign_id}/activate")
    assert activated.status_code == 200, activated.get_json()
    with db.transaction() as session:
        session.get(Campaign, campaign_id).activated_at = ACTIVATED
    return campaign_id


def _add_contacts(db: Any, workspace_id: str) -> None:
    with db.transaction() as session:
        for number, attributes in enumerate(CONTACTS):
            session.add(
                Contact(workspace_id=workspace_id, external_id=f"c{number}", attributes=attributes)
            )


def _runs(db: Any, campaign_id: str) -> list[ScheduleRun]:
    with db.session() as session:
        return list(
            session.scalars(
                select(ScheduleRun)
                .where(ScheduleRun.campaign_id == campaign_id)
                .order_by(ScheduleRun.fire_time)
            )
        )


def _notified(db: Any, campaign_id: str) -> list[str]:
    with db.session() as session:
        return sorted(
            session.scalars(
                select(Notification.contact_external_id).where(
                    Notification.campaign_id == campaign_id
                )
            )
        )


def test_a_fire_time_runs_once_and_lists_its_run(
    app: Flask, api: ApiClient, db: Any, workspace: Any
) -> None:
    _add_contacts(db, workspace.id)
    campaign_id = _schedule_campaign(
        api, db, audience={"field": "contact.plan", "op": "eq", "value": "pro"}
    )
    settings = engine_settings(app)
    assert run_due_schedules(db, settings, datetime(2026, 1, 1, 8, 59, tzinfo=UTC)) == 0
    now = datetime(2026, 1, 1, 9, 0, 20, tzinfo=UTC)
    assert run_due_schedules(db, settings, now, batch_size=1) == 1
    assert run_due_schedules(db, settings, now) == 0
    [run] = _runs(db, campaign_id)
    assert (run.fire_time, run.status, run.notification_count) == (NINE, "done", 2)
    assert _notified(db, campaign_id) == ["c0", "c1"]
    with db.session() as session:
        rows = list(session.scalars(select(Notification)))
    assert {(r.status, r.schedule_run_id, r.event_id) for r in rows} == {("pending", run.id, None)}
    listed = api.get(f"/campaigns/{campaign_id}/runs").get_json()["data"]
    assert [(r["status"], r["notification_count"]) for r in listed] == [("done", 2)]


def test_misfire_grace_runs_late_or_records_missed(
    app: Flask, api: ApiClient, db: Any, workspace: Any
) -> None:
    _add_contacts(db, workspace.id)
    campaign_id = _schedule_campaign(api, db)
    settings = engine_settings(app)
    # 09:00 on Jan 1 is 50 minutes late (within 3600 s); Jan 2 and 3 are hours late.
    assert run_due_schedules(db, settings, datetime(2026, 1, 1, 9, 50, tzinfo=UTC)) == 1
    assert run_due_schedules(db, settings, datetime(2026, 1, 3, 12, 0, tzinfo=UTC)) == 2
    runs = [(r.fire_time.day, r.status, r.notification_count) for r in _runs(db, campaign_id)]
    assert runs == [(1, "done", len(CONTACTS)), (2, "missed", 0), (3, "missed", 0)]


def test_paused_campaigns_and_caps(app: Flask, api: ApiClient, db: Any, workspace: Any) -> None:
    _add_contacts(db, workspace.id)
    capped = _schedule_campaign(
        api, db, cron="0 * * * *", frequency_cap={"max": 1, "per_seconds": 86400}
    )
    paused = _schedule_campaign(api, db)
    api.post(f"/campaigns/{paused}/pause")
    settings = engine_settings(app)
    run_due_schedules(db, settings, datetime(2026, 1, 1, 9, 0, 5, tzinfo=UTC))
    run_due_schedules(db, settings, datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC))
    assert _runs(db, paused) == []
    first, second = _runs(db, capped)
    assert (first.notification_count, first.skipped_count) == (len(CONTACTS), 0)
    assert (second.notification_count, second.skipped_count) == (len(CONTACTS), len(CONTACTS))


def _add_many_contacts(db: Any, workspace_id: str, count: int) -> None:
    with db.transaction() as session:
        session.add_all(
            Contact(workspace_id=workspace_id, external_id=f"m{n:03d}", attributes={"n": n})
            for n in range(count)
        )


def test_a_run_of_many_pages_notifies_every_contact_once(
    app: Flask, api: ApiClient, db: Any, workspace: Any
) -> None:
    _add_many_contacts(db, workspace.id, 47)  # 4 full pages of 10 and a short one
    campaign_id = _schedule_campaign(api, db)
    run_due_schedules(
        db, engine_settings(app), datetime(2026, 1, 1, 9, 0, 5, tzinfo=UTC), batch_size=10
    )
    assert _notified(db, campaign_id) == [f"m{n:03d}" for n in range(47)]
    (run,) = _runs(db, campaign_id)
    assert (run.status, run.notification_count) == ("done", 47)


def test_pausing_mid_run_stops_after_the_pages_already_written(
    app: Flask, api: ApiClient, db: Any, workspace: Any, monkeypatch: Any
) -> None:
    """The campaign is paused (a real API call) as soon as the first page is written:
    the page rendered meanwhile is not written, and the run ends with what it sent."""
    _add_many_contacts(db, workspace.id, 50)
    campaign_id = _schedule_campaign(api, db)
    recorded = schedule_runs.record_page

    def count_then_pause(session: Any, run_id: str, **page: Any) -> bool:
        mine = recorded(session, run_id, **page)
        if not getattr(count_then_pause, "done", False):
            count_then_pause.done = True  # type: ignore[attr-defined]
            threading.Thread(target=api.post, args=(f"/campaigns/{campaign_id}/pause",)).start()
        return mine

    monkeypatch.setattr(schedule_runs, "record_page", count_then_pause)
    paused = threading.Event()

    real_write = schedules._write_page

    def write_after_pause(*args: Any) -> bool:
        if getattr(count_then_pause, "done", False):
            _wait_paused(db, campaign_id)
            paused.set()
        return real_write(*args)

    monkeypatch.setattr(schedules, "_write_page", write_after_pause)
    run_due_schedules(
        db, engine_settings(app), datetime(2026, 1, 1, 9, 0, 5, tzinfo=UTC), batch_size=10
    )
    assert paused.is_set()
    assert _notified(db, campaign_id) == [f"m{n:03d}" for n in range(10)]
    (run,) = _runs(db, campaign_id)
    assert (run.status, run.notification_count) == ("done", 10)


def _wait_paused(db: Any, campaign_id: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db.session() as session:
            if session.get(Campaign, campaign_id).status == "paused":
                return
        time.sleep(0.01)
    raise AssertionError("the campaign was not paused")


def _stall(db: Any, campaign_id: str, heartbeat: datetime) -> None:
    """Make the campaign's run look like one whose process died after its last page."""
    with db.transaction() as session:
        run = session.scalars(
            select(ScheduleRun).where(ScheduleRun.campaign_id == campaign_id)
        ).one()
        run.status, run.finished_at, run.claimed_by = "running", None, "gone:1:1"
        run.heartbeat_at = heartbeat


def test_a_stalled_run_is_taken_over_and_continued_after_its_last_page(
    app: Flask, api: ApiClient, db: Any, workspace: Any
) -> None:
    _add_many_contacts(db, workspace.id, 20)
    campaign_id = _schedule_campaign(api, db)
    settings = engine_settings(app)
    fire = datetime(2026, 1, 1, 9, 0, 5, tzinfo=UTC)
    run_due_schedules(db, settings, fire, batch_size=10)  # two full pages written
    with db.transaction() as session:  # more of the audience, past the resume point
        session.add_all(
            Contact(workspace_id=workspace.id, external_id=f"z{n:02d}") for n in range(17)
        )
    _stall(db, campaign_id, heartbeat=fire)

    # Its heartbeat is recent: another process may still be writing, leave it alone.
    assert run_due_schedules(db, settings, fire + timedelta(minutes=2), batch_size=10) == 0
    (run,) = _runs(db, campaign_id)
    assert run.status == "running" and run.claimed_by == "gone:1:1"

    assert run_due_schedules(db, settings, fire + timedelta(minutes=6), batch_size=10) == 1
    notified = _notified(db, campaign_id)
    assert len(notified) == len(set(notified)) == 37
    (run,) = _runs(db, campaign_id)
    assert (run.status, run.notification_count) == ("done", 37)
    assert run.claimed_by != "gone:1:1"


def test_a_process_that_lost_its_run_writes_nothing_more(
    app: Flask, api: ApiClient, db: Any, workspace: Any
) -> None:
    _add_many_contacts(db, workspace.id, 5)
    campaign_id = _schedule_campaign(api, db)
    run_due_schedules(db, engine_settings(app), datetime(2026, 1, 1, 9, 0, 5, tzinfo=UTC))
    _stall(db, campaign_id, heartbeat=datetime(2026, 1, 1, 9, 0, 5, tzinfo=UTC))
    (run,) = _runs(db, campaign_id)
    with db.transaction() as session:
        mine = schedule_runs.record_page(
            session,
            run.id,
            owner="someone-else",
            last_contact_id="con_z",
            now=datetime(2026, 1, 1, 9, 1, tzinfo=UTC),
            notifications=1,
            skipped=0,
            failed=0,
        )
    assert mine is False
    (after,) = _runs(db, campaign_id)
    assert (after.notification_count, after.last_contact_id) == (
        run.notification_count,
        run.last_contact_id,
    )


def test_racing_schedulers_never_double_run(
    app: Flask, api: ApiClient, db: Any, workspace: Any
) -> None:
    _add_contacts(db, workspace.id)
    campaign_id = _schedule_campaign(api, db, cron="*/10 * * * *")
    settings = engine_settings(app)
    now = datetime(2026, 1, 1, 8, 40, 1, tzinfo=UTC)  # fire times 08:10 .. 08:40
    barrier = threading.Barrier(3)
    handled: list[int] = []
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            barrier.wait()
            handled.append(run_due_schedules(db, settings, now, batch_size=3))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=scheduler) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    runs = _runs(db, campaign_id)
    assert sum(handled) == len(runs) == 4
    assert all(r.notification_count == len(CONTACTS) for r in runs)
    notified = _notified(db, campaign_id)
    assert len(notified) == 4 * len(CONTACTS)


def test_sql_audience_equals_python_evaluation(
    app: Flask, api: ApiClient, db: Any, workspace: Any
) -> None:
    _add_contacts(db, workspace.id)
    settings = engine_settings(app)
    with db.session() as session:
        contacts = list(session.scalars(select(Contact)))
    for audience in AUDIENCES:
        campaign_id = _schedule_campaign(api, db, audience=audience)
        run_due_schedules(db, settings, datetime(2026, 1, 1, 9, 0, 1, tzinfo=UTC))
        expected = sorted(
            c.external_id for c in contacts if rules.evaluate(audience, _variables(c), now=NINE)
        )
        assert _notified(db, campaign_id) == expected, audience
        api.post(f"/campaigns/{campaign_id}/archive")


def _variables(contact: Contact) -> dict[str, Any]:
    return build_variables(
        contact={
            "id": contact.id,
            "external_id": contact.external_id,
            "attributes": contact.attributes,
        },
        event=None,
        campaign={"id": "c", "name": "n"},
        workspace={"id": "w", "name": "w"},
        notification_id="msg_x",
        now=NINE,
    )
