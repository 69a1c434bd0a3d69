"""Events in → contacts upserted, events stored, matching campaigns' notifications created.

One call is one transaction (the caller commits): a notification exists iff its event
was accepted (SPEC §5 durability). Per batch, not per event: duplicates, contacts and
frequency-cap counts are each read with one query, and contacts, events and
notifications are each written with one bulk statement.

Matching: active event campaigns are found through an :class:`EventPatternIndex`, kept
with the campaigns' conditions and compiled channels per workspace under a fingerprint of
those campaigns (``engine.campaigns.matching``): one small query per request while nothing
changed, and any activation, pause, edit or deletion is seen by the next request in every
process. Then a campaign's ``trigger.conditions`` and ``audience.conditions`` must both hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import metrics
from engine.campaigns import matching
from engine.campaigns.matching import ActiveCampaign
from engine.campaigns.materialize import MaterializedBatch
from engine.ids import new_id
from engine.rules import conditions as rules
from engine.store import Database
from engine.store import campaigns as campaign_store
from engine.store import events as event_store
from engine.store.bulk import COPY_FROM_ROWS
from engine.store.pipeline import one_round_trip
from engine.store.types import utcnow
from engine.store.wakeups import announce_new_notifications
from engine.templating.request import RenderSettings

MAX_BATCH = 1000
MAX_EVENT_BYTES = 256 * 1024


@dataclass(frozen=True)
class IncomingEvent:
    """One validated event (shaped by ``web.schemas.event``)."""

    name: str
    external_id: str
    attributes: Mapping[str, Any] | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    client_id: str | None = None
    occurred_at: datetime | None = None


@dataclass
class IngestResult:
    """What happened to one event: its id, whether it was a duplicate, and the ids of
    the notifications it created (pending, held, skipped or failed)."""

    id: str
    duplicate: bool
    notifications: list[str] = field(default_factory=list)


def _merge_attributes(stored: dict[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Events carry partial profiles: given keys are merged, a key set to null is removed."""
    if not given:
        return stored
    merged = dict(stored)
    for key, value in given.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


@dataclass
class _Basis:
    """What a plan was computed from: checked again under the write lock before the plan
    is written by :func:`ingest_with_short_write_lock`."""

    client_ids: list[str]
    seen: dict[str, str]
    external_ids: list[str]
    known: dict[str, tuple[str, dict[str, Any]]]
    cap_contacts: list[str] = field(default_factory=list)
    cap_counts: dict[str, tuple[datetime, dict[str, int]]] = field(default_factory=dict)


@dataclass
class _Plan:
    """Everything one batch writes, and the results it answers."""

    results: list[IngestResult]
    new_contacts: list[dict[str, Any]]
    changed: dict[str, dict[str, Any]]
    event_rows: list[dict[str, Any]]
    batch: MaterializedBatch
    basis: _Basis
    now: datetime


def ingest_events(
    session: Session,
    workspace_id: str,
    events: Sequence[IncomingEvent],
    *,
    settings: RenderSettings,
    now: datetime | None = None,
) -> list[IngestResult]:
    """Accept a batch of validated events; returns one result per event, in order."""
    plan = _plan(session, workspace_id, events, settings, now or utcnow())
    _write(session, plan)
    return plan.results


def _plan(
    session: Session,
    workspace_id: str,
    events: Sequence[IncomingEvent],
    settings: RenderSettings,
    now: datetime,
) -> _Plan:
    """Read what the batch depends on, then decide and render everything it writes."""
    client_ids = [e.client_id for e in events if e.client_id]
    external_ids = [e.external_id for e in events]
    seen, known, (campaigns_version,) = event_store.duplicates_and_contacts(
        session,
        workspace_id,
        client_ids,
        external_ids,
        along=campaign_store.active_event_campaigns_version_query(workspace_id),
    )
    basis = _Basis(client_ids, dict(seen), external_ids, dict(known))
    new_contacts: dict[str, dict[str, Any]] = {}
    changed: dict[str, dict[str, Any]] = {}
    results: list[IngestResult] = []
    accepted: list[tuple[IncomingEvent, IngestResult, dict[str, Any]]] = []
    event_rows: list[dict[str, Any]] = []
    for event in events:
        if event.client_id and event.client_id in seen:
            results.append(IngestResult(id=seen[event.client_id], duplicate=True))
            continue
        event_id = new_id("evt")
        if event.client_id:
            seen[event.client_id] = event_id
        contact_id, stored = known.get(event.external_id, (None, {}))
        attributes = _merge_attributes(stored, event.attributes)
        if contact_id is None:
            contact_id = new_id("con")
            new_contacts[event.external_id] = {
                "id": contact_id,
                "workspace_id": workspace_id,
                "external_id": event.external_id,
                "attributes": attributes,
                "created_at": now,
                "updated_at": now,
            }
        elif event.external_id in new_contacts:  # created earlier in this batch
            new_contacts[event.external_id]["attributes"] = attributes
        elif attributes != stored:
            changed[contact_id] = attributes
        known[event.external_id] = (contact_id, attributes)
        result = IngestResult(id=event_id, duplicate=False)
        results.append(result)
        contact = {"id": contact_id, "external_id": event.external_id, "attributes": attributes}
        accepted.append((event, result, contact))
        event_rows.append(
            {
                "id": event_id,
                "workspace_id": workspace_id,
                "client_id": event.client_id,
                "name": event.name,
                "contact_id": contact_id,
                "properties": dict(event.properties or {}),
                "occurred_at": event.occurred_at or now,
                "received_at": now,
            }
        )
    batch = MaterializedBatch()
    if accepted:
        active = matching.workspace_campaigns(session, workspace_id, campaigns_version)
        batch = _notify_matching_campaigns(session, active, accepted, settings, now, basis)
    return _Plan(results, list(new_contacts.values()), changed, event_rows, batch, basis, now)


def _write(session: Session, plan: _Plan) -> None:
    # A few rows (a single event, a group of them): one round trip for all the statements.
    # More go by COPY, fastest in bulk but a round trip of its own.
    rows = (plan.new_contacts, plan.event_rows, plan.batch.notifications, plan.batch.attempts)
    few = max(map(len, rows)) <= COPY_FROM_ROWS
    with one_round_trip(session) if few else nullcontext():
        event_store.insert_contacts(session, plan.new_contacts)
        event_store.update_contact_attributes(session, plan.changed, plan.now)
        event_store.insert_events(session, plan.event_rows)
        if plan.batch.notifications:
            event_store.insert_notifications(session, plan.batch.notifications, plan.batch.attempts)
        if plan.batch.pending:
            announce_new_notifications(session)


def _basis_holds(session: Session, workspace_id: str, basis: _Basis) -> bool:
    """Whether everything the plan read still reads the same (under the write lock)."""
    seen, known, _ = event_store.duplicates_and_contacts(
        session, workspace_id, basis.client_ids, basis.external_ids
    )
    if seen != basis.seen or known != basis.known:
        return False
    return all(
        event_store.recent_notification_counts(session, cid, basis.cap_contacts, since) == counts
        for cid, (since, counts) in basis.cap_counts.items()
    )


#: A concurrent request may create the same contact or client id between our read and write.
INGEST_ATTEMPTS = 3


class IngestConflict(Exception):
    """Concurrent writes kept colliding with this batch; nothing of it was stored."""


def ingest_and_commit(
    session: Session,
    workspace_id: str,
    events: Sequence[IncomingEvent],
    *,
    settings: RenderSettings,
    attempts: int = INGEST_ATTEMPTS,
) -> list[IngestResult]:
    """``ingest_events`` in its own committed transaction, retried when a concurrent
    request stored the same contact or client id first (the retry then sees it and
    treats the event as the duplicate it is). Raises ``IngestConflict`` after ``attempts``.
    """
    for _ in range(attempts):
        try:
            results = ingest_events(session, workspace_id, events, settings=settings)
            session.commit()
            metrics.count_ingested(sum(not result.duplicate for result in results))
            return results
        except IntegrityError:
            session.rollback()
    raise IngestConflict("conflicting concurrent writes; send the events again")


def ingest_with_short_write_lock(
    database: Database,
    workspace_id: str,
    events: Sequence[IncomingEvent],
    *,
    settings: RenderSettings,
) -> list[IngestResult]:
    """``ingest_and_commit`` for SQLite, whose one writer at a time would otherwise wait
    while this batch is matched and rendered (most of its time). For a few events, see
    ``engine.campaigns.write_group``.

    The batch is planned in a read transaction; the write transaction then checks that
    what the plan read still holds (client ids seen, the contacts' stored attributes,
    frequency-cap counts) and writes it, or, when another writer changed any of it in
    between, plans the batch again under the lock as ``ingest_and_commit`` does. Campaign
    changes in between count as having come after the events (a campaign deleted
    meanwhile fails the write and takes the second way too).
    """
    with database.session() as reader:
        plan = _plan(reader, workspace_id, events, settings, utcnow())
    with database.session(write=True) as session:
        try:
            if _basis_holds(session, workspace_id, plan.basis):
                _write(session, plan)
                session.commit()
                metrics.count_ingested(sum(not result.duplicate for result in plan.results))
                return plan.results
        except IntegrityError:
            pass
        session.rollback()
        return ingest_and_commit(session, workspace_id, events, settings=settings)


def _notify_matching_campaigns(
    session: Session,
    active: matching.WorkspaceCampaigns,
    accepted: list[tuple[IncomingEvent, IngestResult, dict[str, Any]]],
    settings: RenderSettings,
    now: datetime,
    basis: _Basis,
) -> MaterializedBatch:
    batch = MaterializedBatch()
    matches = [active.index.match(event.name) for event, _, _ in accepted]
    wanted = set().union(*matches)
    if not wanted:
        return batch
    campaigns = {cid: active.campaigns[cid] for cid in sorted(wanted)}
    makers = {cid: active.maker(cid, settings) for cid in campaigns}
    caps = _CapCounter(session, campaigns, [c["id"] for _, _, c in accepted], now)
    basis.cap_contacts, basis.cap_counts = caps.contact_ids, caps.read
    for (event, result, contact), matched in zip(accepted, matches, strict=True):
        event_vars = {
            "id": event.client_id or result.id,
            "name": event.name,
            "occurred_at": event.occurred_at or now,
            "properties": dict(event.properties or {}),
        }
        for campaign_id in sorted(matched):
            campaign = campaigns.get(campaign_id)
            if campaign is None:
                continue
            maker = makers[campaign_id]
            variables = maker.variables(contact, event_vars, "", now)
            if not _conditions_hold(campaign, variables, now):
                continue
            notification_id = new_id("msg")
            variables["notification"] = {"id": notification_id}
            notification_id = maker.add(
                batch,
                contact=contact,
                event=event_vars,
                event_row_id=result.id,
                now=now,
                capped=caps.take(campaign_id, contact["id"]),
                variables=variables,
                notification_id=notification_id,
            )
            result.notifications.append(notification_id)
    return batch


def _conditions_hold(campaign: ActiveCampaign, variables: Mapping[str, Any], now: datetime) -> bool:
    trigger_conditions = (campaign.trigger or {}).get("conditions")
    audience_conditions = (campaign.audience or {}).get("conditions")
    return rules.evaluate(trigger_conditions, variables, now=now) and rules.evaluate(
        audience_conditions, variables, now=now
    )


class _CapCounter:
    """Frequency caps across a batch: stored counts read once, then counted in memory."""

    def __init__(
        self,
        session: Session,
        campaigns: Mapping[str, ActiveCampaign],
        contact_ids: list[str],
        now: datetime,
    ) -> None:
        self._limits: dict[str, int] = {}
        self._counts: dict[str, dict[str, int]] = {}
        self.contact_ids = contact_ids
        self.read: dict[str, tuple[datetime, dict[str, int]]] = {}  # as stored, per campaign
        capped = [cid for cid, campaign in campaigns.items() if campaign.frequency_cap]
        # Concurrent transactions counting for the same contact and campaign take turns.
        event_store.lock_cap_counts(session, [f"{c}:{k}" for c in capped for k in contact_ids])
        for campaign_id, campaign in campaigns.items():
            cap = campaign.frequency_cap
            if not cap:
                continue
            self._limits[campaign_id] = int(cap["max"])
            since = now - timedelta(seconds=int(cap["per_seconds"]))
            counts = event_store.recent_notification_counts(
                session, campaign_id, contact_ids, since
            )
            self.read[campaign_id] = (since, dict(counts))
            self._counts[campaign_id] = counts

    def take(self, campaign_id: str, contact_id: str) -> bool:
        """Count one more message for the contact; True when the cap says skip it."""
        limit = self._limits.get(campaign_id)
        if limit is None:
            return False
        counts = self._counts[campaign_id]
        used = counts.get(contact_id, 0)
        if used >= limit:
            return True
        counts[contact_id] = used + 1
        return False
