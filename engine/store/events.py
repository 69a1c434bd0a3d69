"""Events in, notifications out: the bulk SQL behind ingestion and schedule runs.

Everything here works on many rows per statement (one ``SELECT ... IN`` of a JSON array or
chunked ``IN`` lists, one ``COPY`` or ``executemany`` ``INSERT``, one ``UPDATE`` joined to a
JSON recordset), because a batch of 1,000 events or a 100,000-contact schedule run must not
cost one round trip per row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Text, and_, bindparam, cast, func, select, text, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from engine import crypto
from engine.store.bulk import insert_rows, is_in_chunks
from engine.store.models import Attempt, Contact, Event, Notification
from engine.store.pipeline import Query, read_together


def _by_keys(model: Any, key: Any, *columns: Any) -> Select[Any]:
    """``columns`` of the workspace's rows whose ``key`` is among the JSON array ``ids``,
    each looked up through the unique ``(workspace_id, key)`` index: one index probe per
    given key, however many rows the workspace has and whatever the planner's statistics
    say (``LIMIT 1`` keeps the lookup a lateral probe rather than a join over the
    workspace's rows, which a generic plan over fresh statistics picks)."""
    keys = (
        func.jsonb_array_elements_text(cast(bindparam("ids", type_=Text), JSONB))
        .table_valued("value")
        .alias("given")
    )
    probe = (
        select(*columns)
        .where(model.workspace_id == bindparam("workspace_id"), key == keys.c.value)
        .limit(1)
        .lateral("found")
    )
    return select(*probe.c).select_from(keys).join(probe, true())


def _among(model: Any, key: Any, *columns: Any) -> Select[Any]:
    """SQLite's form of ``_by_keys``: ``key IN`` the JSON array's values (its planner probes
    the unique index once per value)."""
    given = func.json_each(bindparam("ids", type_=Text)).table_valued("value")
    return select(*columns).where(
        model.workspace_id == bindparam("workspace_id"), key.in_(select(given.c.value))
    )


# The two reads of ``duplicates_and_contacts``: one statement each whatever the number of
# keys (one JSON array parameter), built once (``read_together`` compiles each once).
_CLIENT_IDS = {
    "postgresql": _by_keys(Event, Event.client_id, Event.client_id, Event.id),
    "sqlite": _among(Event, Event.client_id, Event.client_id, Event.id),
}
_CONTACTS = {
    "postgresql": _by_keys(
        Contact, Contact.external_id, Contact.external_id, Contact.id, Contact.attributes
    ),
    "sqlite": _among(
        Contact, Contact.external_id, Contact.external_id, Contact.id, Contact.attributes
    ),
}


def duplicates_and_contacts(
    session: Session,
    workspace_id: str,
    client_ids: Sequence[str],
    external_ids: Sequence[str],
    along: Query | None = None,
) -> tuple[dict[str, str], dict[str, tuple[str, dict[str, Any]]], list[tuple[Any, ...]]]:
    """``client id → stored event id`` for the ids this workspace has already seen,
    ``external id → (contact id, attributes)`` for its stored contacts among
    ``external_ids``, and the rows of ``along`` (one more query the caller needs at the same
    time): on PostgreSQL in one round trip."""
    dialect = session.get_bind().dialect.name
    queries: list[Query] = [
        (
            _CLIENT_IDS[dialect],
            {"workspace_id": workspace_id, "ids": json.dumps(sorted(set(client_ids)))},
        ),
        (
            _CONTACTS[dialect],
            {"workspace_id": workspace_id, "ids": json.dumps(sorted(set(external_ids)))},
        ),
    ]
    answers = read_together(session, [*queries, along] if along else queries)
    seen = dict(answers[0])
    known = {ext: (cid, dict(attrs or {})) for ext, cid, attrs in answers[1]}
    return seen, known, answers[2] if along else []


def insert_contacts(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert new contacts (``id``, ``workspace_id``, ``external_id``, ``attributes``...)."""
    if rows:
        insert_rows(session.connection(), Contact.__table__, rows)


def update_contact_attributes(
    session: Session, changes: Mapping[str, dict[str, Any]], now: datetime
) -> None:
    """Set the attributes of existing contacts, ``{contact id: attributes}``, in one go."""
    if not changes:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # One statement and one JSON parameter for the whole batch.
        connection.execute(
            text(
                "UPDATE contacts SET attributes = changed.attributes, updated_at = :now"
                " FROM jsonb_to_recordset(CAST(:changes AS jsonb))"
                " AS changed (id text, attributes jsonb) WHERE contacts.id = changed.id"
            ).bindparams(bindparam("now", type_=Contact.__table__.c.updated_at.type)),
            {
                "changes": json.dumps([{"id": cid, "attributes": a} for cid, a in changes.items()]),
                "now": now,
            },
        )
        return
    dialect = connection.dialect
    attributes = Contact.__table__.c.attributes.type._cached_bind_processor(dialect)
    updated_at = Contact.__table__.c.updated_at.type._cached_bind_processor(dialect)
    assert attributes is not None and updated_at is not None
    stamp = updated_at(now)
    connection.exec_driver_sql(
        "UPDATE contacts SET attributes = ?, updated_at = ? WHERE id = ?",
        [(attributes(attrs), stamp, cid) for cid, attrs in changes.items()],
    )


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        insert_rows(session.connection(), Event.__table__, rows)


def insert_notifications(
    session: Session, rows: list[dict[str, Any]], attempts: Sequence[dict[str, Any]] = ()
) -> None:
    """Bulk-insert rendered notification rows and their render-failure attempt rows.

    ``request_secrets`` is encrypted here, once per distinct value in the batch: the rows
    of one campaign usually carry the same secret headers, and encryption is a large
    share of the cost per row. (Equal plaintexts then share a ciphertext, which tells a
    reader of the database only that those rows' secrets are equal.)
    """
    connection = session.connection()
    if rows:
        tokens: dict[tuple, str] = {}
        prepared = []
        for row in rows:
            secrets = row.get("request_secrets")
            token = None
            if secrets is not None:
                key = tuple(sorted(secrets.items()))
                token = tokens.get(key)
                if token is None:
                    plain = json.dumps(secrets, separators=(",", ":"), sort_keys=True)
                    token = tokens[key] = crypto.encrypt(plain)
            prepared.append({**row, "request_secrets": token})
        insert_rows(connection, Notification.__table__, prepared, raw={"request_secrets"})
    if attempts:
        insert_rows(connection, Attempt.__table__, list(attempts))


def lock_cap_counts(session: Session, keys: Sequence[str]) -> None:
    """On PostgreSQL, transaction-scoped advisory locks on ``keys`` (``campaign:contact``),
    so that concurrent transactions counting a contact's recent notifications for a capped
    campaign (``recent_notification_counts``) take turns and each counts what the one
    before it committed. Taken in one sorted order: two batches never wait on each other
    crosswise. SQLite has one writer at a time already."""
    if not keys or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT hashtextextended(value, 0)"
            " AS key FROM jsonb_array_elements_text(CAST(:keys AS jsonb))) AS given ORDER BY key"
        ),
        {"keys": json.dumps(list(keys))},
    )


def recent_notification_counts(
    session: Session, campaign_id: str, contact_ids: Sequence[str], since: datetime
) -> dict[str, int]:
    """How many notifications each contact got from the campaign since ``since``.

    Skipped ones and test sends do not count: the frequency cap limits real messages.
    """
    counts: dict[str, int] = {}
    for condition in is_in_chunks(session, Notification.contact_id, contact_ids):
        rows = session.execute(
            select(Notification.contact_id, func.count())
            .where(
                and_(
                    Notification.campaign_id == campaign_id,
                    condition,
                    Notification.created_at > since,
                    Notification.status != "skipped",
                    Notification.test.is_(False),
                )
            )
            .group_by(Notification.contact_id)
        )
        counts.update({cid: n for cid, n in rows})
    return counts
