"""Events in, notifications out: the bulk SQL behind ingestion and schedule runs.

Everything here works on many rows per statement (one ``SELECT ... IN``, one
``executemany`` ``INSERT``), because a batch of 1,000 events or a 100,000-contact schedule
run must not cost one round trip per row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from engine import crypto
from engine.store.models import Attempt, Contact, Event, Notification

#: Parameters per ``IN (...)``: well under SQLite's and PostgreSQL's limits.
IN_CHUNK = 500


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def existing_client_ids(
    session: Session, workspace_id: str, client_ids: Sequence[str]
) -> dict[str, str]:
    """``client id → stored event id`` for the ids this workspace has already seen."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(client_ids))):
        rows = session.execute(
            select(Event.client_id, Event.id).where(
                Event.workspace_id == workspace_id, Event.client_id.in_(chunk)
            )
        )
        found.update({client_id: event_id for client_id, event_id in rows})
    return found


def contacts_by_external_id(
    session: Session, workspace_id: str, external_ids: Sequence[str]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """``external id → (contact id, attributes)`` for the stored ones among ``external_ids``."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for chunk in _chunks(sorted(set(external_ids))):
        rows = session.execute(
            select(Contact.external_id, Contact.id, Contact.attributes).where(
                Contact.workspace_id == workspace_id, Contact.external_id.in_(chunk)
            )
        )
        found.update({ext: (cid, dict(attrs or {})) for ext, cid, attrs in rows})
    return found


def insert_contacts(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert new contacts (``id``, ``workspace_id``, ``external_id``, ``attributes``...)."""
    if rows:
        session.connection().execute(insert(Contact.__table__), rows)


def update_contact_attributes(
    session: Session, changes: Mapping[str, dict[str, Any]], now: datetime
) -> None:
    """Set the attributes of existing contacts, ``{contact id: attributes}``, in one go."""
    if not changes:
        return
    session.execute(
        update(Contact),
        [{"id": cid, "attributes": attrs, "updated_at": now} for cid, attrs in changes.items()],
    )


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.connection().execute(insert(Event.__table__), rows)


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
            prepared.append({**row, "request_secrets": None, "sealed_secrets": token})
        connection.execute(_INSERT_NOTIFICATION, prepared)
    if attempts:
        connection.execute(insert(Attempt.__table__), list(attempts))


#: The notification insert with ``request_secrets`` bound as already-encrypted text.
_INSERT_NOTIFICATION = insert(Notification.__table__).values(
    request_secrets=bindparam("sealed_secrets", type_=Text)
)


def recent_notification_counts(
    session: Session, campaign_id: str, contact_ids: Sequence[str], since: datetime
) -> dict[str, int]:
    """How many notifications each contact got from the campaign since ``since``.

    Skipped ones and test sends do not count: the frequency cap limits real messages.
    """
    counts: dict[str, int] = {}
    for chunk in _chunks(sorted(set(contact_ids))):
        rows = session.execute(
            select(Notification.contact_id, func.count())
            .where(
                and_(
                    Notification.campaign_id == campaign_id,
                    Notification.contact_id.in_(chunk),
                    Notification.created_at > since,
                    Notification.status != "skipped",
                    Notification.test.is_(False),
                )
            )
            .group_by(Notification.contact_id)
        )
        counts.update({cid: n for cid, n in rows})
    return counts
