"""POST /events: contacts, duplicates, matching, conditions, caps, held and failed sends."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event, func, select, text, update

from engine.campaigns import matching
from engine.campaigns.ingest import IncomingEvent, ingest_with_short_write_lock
from engine.store.models import Attempt, Campaign, Contact, Event, Notification
from engine.store.types import utcnow
from tests.conftest import ApiClient, make_workspace
from tests.integration import factories
from tests.integration.campaign_factories import event_campaign, send_event, webhook


def _notifications(db: Any) -> list[Notification]:
    with db.session() as session:
        return list(session.scalars(select(Notification).order_by(Notification.id)))


def _count(db: Any, model: Any) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_events_notify_matching_campaigns_only(api: ApiClient, db: Any) -> None:
    one = event_campaign(api, ["lead.*"], name="one segment")
    deep = event_campaign(api, ["lead.**"], name="deep")
    exact = event_campaign(api, ["lead.create"], name="exact")
    event_campaign(api, ["order.paid"], name="other")
    draft = event_campaign(api, ["lead.**"], name="draft", activate=False)

    created = send_event(api, "lead.create", attributes={"plan": "pro"})
    nested = send_event(api, "lead.status.update")
    assert created["duplicate"] is False and len(created["notifications"]) == 3
    assert len(nested["notifications"]) == 1
    by_event: dict[str, set[str]] = {}
    for row in _notifications(db):
        by_event.setdefault(row.event_name, set()).add(row.campaign_id)
        assert row.status == "pending" and row.next_attempt_at is not None
        assert row.request["headers"][-1] == {"name": "Authorization", "value": "Basic ****"}
        assert row.request_secrets["Authorization"].startswith("Basic ")
        assert row.endpoint_host == "127.0.0.1"
    assert by_event == {
        "lead.create": {one["id"], deep["id"], exact["id"]},
        "lead.status.update": {deep["id"]},
    }
    assert draft["id"] not in by_event["lead.create"]
    with db.session() as session:
        first = session.get(Notification, created["notifications"][0])
        assert '"plan":"pro"' in first.request["body"]


def test_contact_upsert_merges_attributes(api: ApiClient, db: Any) -> None:
    send_event(api, "x", "c1", attributes={"plan": "pro", "city": "Cork"})
    send_event(api, "x", "c1", attributes={"city": None, "score": 3})
    send_event(api, "x", "c1")
    with db.session() as session:
        contact = session.scalar(select(Contact))
    assert contact.attributes == {"plan": "pro", "score": 3}


def test_large_batches_look_up_and_update_every_contact(api: ApiClient, db: Any) -> None:
    """Batches past one IN list (SQLite chunks lookups by 500): every stored contact and
    client id is found, changed contacts are updated in one go, unchanged ones are left."""

    def batch(start: int, stop: int, plan: str, tag: str) -> list[dict[str, Any]]:
        return [
            {
                "name": "x",
                "id": f"{tag}-{n}",
                "contact": {"external_id": f"c{n}", "attributes": {"plan": plan, "n": n}},
            }
            for n in range(start, stop)
        ]

    assert api.post("/events", json={"events": batch(0, 1000, "free", "a")}).status_code == 202
    with db.session() as session:
        before = dict(session.execute(select(Contact.external_id, Contact.updated_at)).all())
    # c0..c599 change plan, c600..c999 send the same attributes again, c1000.. are new.
    again = [
        *batch(0, 600, "pro", "b"),
        *batch(600, 1000, "free", "b"),
        *batch(1000, 1400, "new", "b"),
    ]
    assert api.post("/events", json={"events": again[:1000]}).status_code == 202
    assert api.post("/events", json={"events": again[1000:]}).status_code == 202
    replay = api.post("/events", json={"events": batch(0, 1000, "free", "a")})
    assert all(e["duplicate"] for e in replay.get_json()["events"])
    with db.session() as session:
        rows = {c.external_id: c for c in session.scalars(select(Contact))}
    assert len(rows) == 1400
    assert all(rows[f"c{n}"].attributes == {"plan": "pro", "n": n} for n in range(600))
    assert all(rows[f"c{n}"].updated_at > before[f"c{n}"] for n in range(600))
    assert all(rows[f"c{n}"].attributes == {"plan": "free", "n": n} for n in range(600, 1000))
    assert all(rows[f"c{n}"].updated_at == before[f"c{n}"] for n in range(600, 1000))
    assert all(rows[f"c{n}"].attributes == {"plan": "new", "n": n} for n in range(1000, 1400))
    assert _count(db, Event) == 2400


def test_duplicates_are_accepted_and_create_nothing(api: ApiClient, db: Any) -> None:
    event_campaign(api, ["lead.create"])
    first = send_event(api, "lead.create", id="client-1")
    again = send_event(api, "lead.create", id="client-1")
    assert again == {"id": first["id"], "duplicate": True, "notifications": []}
    batch = api.post(
        "/events",
        json={
            "events": [
                {"name": "lead.create", "id": "client-2", "contact": {"external_id": "c2"}},
                {"name": "lead.create", "id": "client-2", "contact": {"external_id": "c2"}},
            ]
        },
    ).get_json()["events"]
    assert [e["duplicate"] for e in batch] == [False, True] and batch[0]["id"] == batch[1]["id"]
    assert _count(db, Event) == 2 and _count(db, Notification) == 2
    # Another workspace may use the same client id.
    other = ApiClient(api.client, make_workspace(db, "Other", "o@acme.test"))
    assert send_event(other, "lead.create", id="client-1")["duplicate"] is False


def test_conditions_on_contact_and_event(api: ApiClient, db: Any) -> None:
    conditions = {
        "all": [
            {"field": "contact.plan", "op": "eq", "value": "pro"},
            {"field": "event.properties.score", "op": "gte", "value": 50},
        ]
    }
    event_campaign(api, ["lead.scored"], conditions=conditions)
    hit = send_event(api, "lead.scored", "a", attributes={"plan": "pro"}, properties={"score": 70})
    low = send_event(api, "lead.scored", "a", properties={"score": 10})
    text = send_event(api, "lead.scored", "a", properties={"score": "70"})  # string ≠ number
    free = send_event(
        api, "lead.scored", "b", attributes={"plan": "free"}, properties={"score": 99}
    )
    assert [len(e["notifications"]) for e in (hit, low, text, free)] == [1, 0, 0, 0]


def test_frequency_cap_skips_with_reason(api: ApiClient, db: Any) -> None:
    event_campaign(api, ["ping"], frequency_cap={"max": 2, "per_seconds": 3600})
    batch = api.post(
        "/events",
        json={"events": [{"name": "ping", "contact": {"external_id": "c1"}} for _ in range(3)]},
    ).get_json()["events"]
    later = send_event(api, "ping")
    other_contact = send_event(api, "ping", "c2")
    statuses = {n.id: (n.status, n.reason) for n in _notifications(db)}
    assert [statuses[e["notifications"][0]] for e in batch] == [
        ("pending", None),
        ("pending", None),
        ("skipped", "frequency_capped"),
    ]
    assert statuses[later["notifications"][0]] == ("skipped", "frequency_capped")
    assert statuses[other_contact["notifications"][0]] == ("pending", None)


def test_held_when_webhook_disabled_or_inactive(api: ApiClient, db: Any) -> None:
    disabled = event_campaign(api, ["a"], name="disabled")
    inactive = event_campaign(api, ["a"], name="inactive", webhook=webhook(active=False))
    with db.transaction() as session:
        session.get(Campaign, disabled["id"]).webhook_disabled = True
    send_event(api, "a")
    held = {n.campaign_id: (n.status, n.reason, n.next_attempt_at) for n in _notifications(db)}
    assert held == {
        disabled["id"]: ("held", "webhook_disabled", None),
        inactive["id"]: ("held", "webhook_inactive", None),
    }


def test_render_failure_is_a_failed_notification_with_an_attempt(api: ApiClient, db: Any) -> None:
    channel = webhook(body={"mode": "raw", "template": '{"a": {{ contact.nope | tojson }}}'})
    event_campaign(api, ["a"], webhook=channel)
    send_event(api, "a")
    [row] = _notifications(db)
    assert (row.status, row.error_code, row.attempt_count) == ("failed", "render_error", 1)
    assert "contact.nope" in row.error_message
    with db.session() as session:
        attempt = session.scalar(select(Attempt))
    assert (attempt.number, attempt.error_code, attempt.status_code) == (1, "render_error", None)


def test_bad_event_in_a_batch_stores_nothing(api: ApiClient, db: Any) -> None:
    event_campaign(api, ["a"])
    response = api.post(
        "/events",
        json={
            "events": [
                {"name": "a", "contact": {"external_id": "c1"}},
                {"name": "a", "contact": {}},
                {"name": "bad name!", "contact": {"external_id": "c3"}},
            ]
        },
    )
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert "events[1].contact.external_id" in details and "events[2].name" in details
    assert _count(db, Event) == 0 and _count(db, Contact) == 0
    empty = api.post("/events", json={"events": []})
    assert empty.status_code == 422
    assert empty.get_json()["error"]["details"] == {"events": ["must be a non-empty list"]}
    too_many = [{"name": "a", "contact": {"external_id": "c"}}] * 1001
    assert api.post("/events", json={"events": too_many}).status_code == 422
    big = {"name": "a", "contact": {"external_id": "c"}, "properties": {"x": "y" * 300_000}}
    response = api.post("/events", json={"events": [big]})
    assert response.status_code == 413 and response.get_json()["error"]["details"]["index"] == 0
    assert api.post("/events", json={"name": "a"}).status_code == 422
    assert _count(db, Event) == 0


def test_event_errors_are_located_by_index_or_field(api: ApiClient) -> None:
    good = {"name": "a", "contact": {"external_id": "c"}}
    batch = [good, good, good, {"name": "a", "contact": {"external_id": 7}}, "not an event"]
    details = api.post("/events", json={"events": batch}).get_json()["error"]["details"]
    assert details == {
        "events[3].contact.external_id": ["Not a valid string."],
        "events[4]": ["must be an object"],
    }
    single = api.post("/events", json={"name": "a", "contact": {"external_id": 7}})
    assert single.status_code == 422
    assert single.get_json()["error"]["details"] == {"contact.external_id": ["Not a valid string."]}


def test_pattern_index_follows_campaign_changes(api: ApiClient, db: Any) -> None:
    first = event_campaign(api, ["a.*"])
    assert len(send_event(api, "a.b")["notifications"]) == 1
    second = event_campaign(api, ["a.b"], name="second")
    assert len(send_event(api, "a.b")["notifications"]) == 2
    api.post(f"/campaigns/{first['id']}/pause")
    assert len(send_event(api, "a.b")["notifications"]) == 1
    api.patch(f"/campaigns/{second['id']}", json={"trigger": {"type": "event", "events": ["z"]}})
    assert send_event(api, "a.b")["notifications"] == []
    assert len(send_event(api, "z")["notifications"]) == 1


def test_changes_made_by_another_process_are_seen_by_the_next_event(
    api: ApiClient, db: Any
) -> None:
    """What a process keeps of the active campaigns (index, conditions, compiled channel)
    follows the database alone: changes written by another process, which this one hears
    nothing about, are seen by the very next event."""
    campaign = event_campaign(
        api,
        ["a"],
        webhook=webhook(body={"mode": "raw", "template": '{"ws": "{{ workspace.name }}"}'}),
    )
    first = send_event(api, "a")["notifications"][0]
    active = matching.workspace_campaigns_cached(api.workspace.id)
    assert active is not None and campaign["id"] in active.campaigns

    with db.transaction() as session:  # as another process would: plain SQL, no hooks
        session.execute(
            text("UPDATE workspaces SET name = 'Renamed' WHERE id = :id"),
            {"id": api.workspace.id},
        )
    renamed = send_event(api, "a")["notifications"][0]
    with db.transaction() as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign["id"])
            .values(webhook_disabled=True, updated_at=utcnow())
        )
    held = send_event(api, "a")["notifications"][0]
    with db.transaction() as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign["id"])
            .values(status="paused", updated_at=utcnow())
        )
    assert send_event(api, "a")["notifications"] == []

    with db.session() as session:
        assert session.get(Notification, first).request["body"] == '{"ws": "Acme"}'
        assert session.get(Notification, renamed).request["body"] == '{"ws": "Renamed"}'
        assert session.get(Notification, held).status == "held"


def test_compiled_channels_are_reused_while_nothing_changes(api: ApiClient) -> None:
    one = event_campaign(api, ["a"], name="one")
    two = event_campaign(api, ["b"], name="two")
    send_event(api, "a")
    send_event(api, "b")
    before = matching.workspace_campaigns_cached(api.workspace.id)
    send_event(api, "a")
    assert matching.workspace_campaigns_cached(api.workspace.id) is before  # nothing read again
    makers = dict(before._makers)
    api.patch(f"/campaigns/{two['id']}", json={"webhook": {"url": "http://127.0.0.1:9/v2"}})
    send_event(api, "b")
    after = matching.workspace_campaigns_cached(api.workspace.id)
    assert after is not before
    # The unchanged campaign keeps its compiled channel; the edited one is compiled anew.
    kept = {cid for (cid, _), maker in after._makers.items() if maker in makers.values()}
    assert kept == {one["id"]}


def test_editing_the_channel_never_rewrites_history(api: ApiClient, db: Any) -> None:
    campaign = event_campaign(api, ["a"])
    before = send_event(api, "a")["notifications"][0]
    api.patch(f"/campaigns/{campaign['id']}", json={"webhook": {"url": "http://127.0.0.1:9/v2"}})
    after = send_event(api, "a")["notifications"][0]
    with db.session() as session:
        assert session.get(Notification, before).request["url"] == "http://127.0.0.1:9/hook"
        assert session.get(Notification, after).request["url"] == "http://127.0.0.1:9/v2"


def test_concurrent_requests_with_the_same_client_id_store_it_once(api: ApiClient, db: Any) -> None:
    event_campaign(api, ["a"])
    app = api.client.application
    barrier = threading.Barrier(4)
    answers: list[dict[str, Any]] = []

    def post() -> None:
        client = app.test_client()
        body = {"name": "a", "id": "same", "contact": {"external_id": "new-contact"}}
        barrier.wait()
        response = client.post("/api/v1/events", json=body, headers=api.workspace.headers)
        answers.append(response.get_json()["events"][0])

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a["duplicate"] for a in answers) == [False, True, True, True]
    assert len({a["id"] for a in answers}) == 1
    assert _count(db, Event) == 1 and _count(db, Notification) == 1 and _count(db, Contact) == 1


@pytest.mark.parametrize("meanwhile", ["contact attributes", "a capped send"])
def test_a_write_between_planning_and_writing_is_not_lost(
    api: ApiClient, db: Any, meanwhile: str
) -> None:
    """SQLite's ingestion plans a batch before taking the write lock. Another request that
    writes in between (here: as the planning read transaction hands its connection back)
    makes the plan stale; the batch is then planned again under the lock, so neither the
    other request's attributes nor the frequency cap are lost."""
    event_campaign(api, ["ping"], frequency_cap={"max": 1, "per_seconds": 3600})
    send_event(api, "hello", "c1", attributes={"plan": "pro"})
    fired: list[str] = []

    def other_request(*_: Any) -> None:
        if fired:
            return
        fired.append(meanwhile)
        if meanwhile == "contact attributes":
            send_event(api, "hello", "c1", attributes={"city": "Cork"})
        else:
            send_event(api, "ping", "c1")

    event.listen(db.engine, "checkin", other_request)
    try:
        [result] = ingest_with_short_write_lock(
            db,
            api.workspace.id,
            [IncomingEvent(name="ping", external_id="c1", attributes={"score": 3})],
            settings=factories.TEST_RENDER_SETTINGS,
        )
    finally:
        event.remove(db.engine, "checkin", other_request)
    assert fired == [meanwhile]
    with db.session() as session:
        contact = session.scalar(select(Contact).where(Contact.external_id == "c1"))
        mine = session.get(Notification, result.notifications[0])
        assert (mine.status, mine.reason) == (
            ("skipped", "frequency_capped") if meanwhile == "a capped send" else ("pending", None)
        )
    expected = {"plan": "pro", "score": 3}
    if meanwhile == "contact attributes":
        expected["city"] = "Cork"
    assert contact.attributes == expected
