"""Events in, notifications out: the bulk SQL behind ingestion and schedule runs.

Everything here works on many rows per statement (one ``SELECT ... = ANY(array)`` or
chunked ``IN``, one ``COPY`` or ``executemany`` ``INSERT``, one ``UPDATE ... FROM unnest``),
because a batch of 1,000 events or a 100,000-contact schedule run must not cost one round
trip per row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence, Set
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine import crypto
from engine.store.models import Attempt, Contact, Event, Notification

#: Parameters per ``IN (...)``: well under SQLite's and PostgreSQL's limits.
IN_CHUNK = 500


def _among(
    session: Session, column: ColumnElement[Any], values: Iterable[str]
) -> Iterable[ColumnElement[bool]]:
    """Conditions that together say ``column IN values``, one query each.

    PostgreSQL gets a single ``= ANY(array)`` with one parameter, whatever the count;
    SQLite gets ``IN`` lists of at most ``IN_CHUNK`` parameters.
    """
    distinct = sorted(set(values))
    if not distinct:
        return
    if session.get_bind().dialect.name == "postgresql":
        yield column == any_(bindparam(None, distinct, type_=postgresql.ARRAY(String)))
        return
    for start in range(0, len(distinct), IN_CHUNK):
        yield column.in_(distinct[start : start + IN_CHUNK])


def existing_client_ids(
    session: Session, workspace_id: str, client_ids: Sequence[str]
) -> dict[str, str]:
    """``client id → stored event id`` for the ids this workspace has already seen."""
    found: dict[str, str] = {}
    for among in _among(session, Event.client_id, client_ids):
        rows = session.execute(
            select(Event.client_id, Event.id).where(Event.workspace_id == workspace_id, among)
        )
        found.update({client_id: event_id for client_id, event_id in rows})
    return found


def contacts_by_external_id(
    session: Session, workspace_id: str, external_ids: Sequence[str]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """``external id → (contact id, attributes)`` for the stored ones among ``external_ids``."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for among in _among(session, Contact.external_id, external_ids):
        rows = session.execute(
            select(Contact.external_id, Contact.id, Contact.attributes).where(
                Contact.workspace_id == workspace_id, among
            )
        )
        found.update({ext: (cid, dict(attrs or {})) for ext, cid, attrs in rows})
    return found


def insert_contacts(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert new contacts (``id``, ``workspace_id``, ``external_id``, ``attributes``...)."""
    if rows:
        _bulk_insert(session.connection(), Contact.__table__, rows)


def update_contact_attributes(
    session: Session, changes: Mapping[str, dict[str, Any]], now: datetime
) -> None:
    """Set the attributes of existing contacts, ``{contact id: attributes}``, in one go."""
    if not changes:
        return
    connection = session.connection()
    dialect = connection.dialect
    attributes = Contact.__table__.c.attributes.type._cached_bind_processor(dialect)
    updated_at = Contact.__table__.c.updated_at.type._cached_bind_processor(dialect)
    assert attributes is not None and updated_at is not None
    if dialect.name == "postgresql":
        # One statement for the whole batch, not one UPDATE per contact.
        connection.execute(
            text(
                "UPDATE contacts SET attributes = changed.attributes, updated_at = :now"
                " FROM unnest(CAST(:ids AS text[]), CAST(:attributes AS jsonb[]))"
                " AS changed (id, attributes) WHERE contacts.id = changed.id"
            ),
            {"ids": list(changes), "attributes": [attributes(a) for a in changes.values()],
             "now": updated_at(now)},
        )
        return
    stamp = updated_at(now)
    connection.exec_driver_sql(
        "UPDATE contacts SET attributes = ?, updated_at = ? WHERE id = ?",
        [(attributes(attrs), stamp, cid) for cid, attrs in changes.items()],
    )


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        _bulk_insert(session.connection(), Event.__table__, rows)


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
        _bulk_insert(connection, Notification.__table__, prepared, raw={"request_secrets"})
    if attempts:
        _bulk_insert(connection, Attempt.__table__, list(attempts))


def _bulk_insert(
    connection: Connection, table: Table, rows: list[dict[str, Any]], raw: Set[str] = frozenset()
) -> None:
    """Insert uniform row dicts straight through the driver: ``COPY`` on PostgreSQL,
    ``executemany`` on SQLite.

    Values go through the same SQLAlchemy bind processors a Core insert would use (JSON,
    UTC datetimes, booleans), so stored values are identical; a value shared by the rows
    of a batch (its timestamp, campaign id) is processed once. Columns in ``raw`` are
    stored as given. Rows with differing keys, or leaving out a column that has a Python
    default, take the ordinary Core insert.
    """
    names = list(rows[0])
    keys = set(names)
    uniform = all(len(row) == len(names) and row.keys() == keys for row in rows)
    defaulted = any(
        column.default is not None and column.name not in keys for column in table.columns
    )
    if not uniform or defaulted:
        statement = insert(table).values({n: bindparam(f"raw_{n}", type_=Text) for n in raw})
        connection.execute(statement, [_rename_raw(row, raw) for row in rows])
        return
    dialect = connection.dialect
    processors = [
        None if name in raw else table.columns[name].type._cached_bind_processor(dialect)
        for name in names
    ]
    columns = list(zip(names, processors, strict=True))
    last: dict[str, tuple[Any, Any]] = {}
    values = []
    for row in rows:
        record = []
        for name, processor in columns:
            value = row[name]
            if processor is not None and value is not None:
                seen = last.get(name)
                if seen is not None and seen[0] is value:
                    value = seen[1]
                else:
                    processed = processor(value)
                    last[name] = (value, processed)
                    value = processed
            record.append(value)
        values.append(tuple(record))
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    if dialect.name == "postgresql":
        statement = f"COPY {table.name} ({quoted}) FROM STDIN"
        cursor = connection.connection.driver_connection.cursor()
        try:
            with cursor, cursor.copy(statement) as copy:
                for record in values:
                    copy.write_row(record)
        except dialect.loaded_dbapi.Error as exc:  # e.g. a unique key raced by another request
            raise DBAPIError.instance(
                statement, None, exc, dialect.loaded_dbapi.Error, dialect=dialect
            ) from exc
        return
    marks = ", ".join("?" for _ in names)
    sql = f"INSERT INTO {table.name} ({quoted}) VALUES ({marks})"  # noqa: S608 - model names
    connection.exec_driver_sql(sql, values)


def _rename_raw(row: Mapping[str, Any], raw: Set[str]) -> dict[str, Any]:
    """The Core fallback binds raw (already encoded) columns as plain text parameters."""
    renamed = {name: value for name, value in row.items() if name not in raw}
    renamed.update({f"raw_{name}": row.get(name) for name in raw})
    return renamed


def recent_notification_counts(
    session: Session, campaign_id: str, contact_ids: Sequence[str], since: datetime
) -> dict[str, int]:
    """How many notifications each contact got from the campaign since ``since``.

    Skipped ones and test sends do not count: the frequency cap limits real messages.
    """
    counts: dict[str, int] = {}
    for among in _among(session, Notification.contact_id, contact_ids):
        rows = session.execute(
            select(Notification.contact_id, func.count())
            .where(
                and_(
                    Notification.campaign_id == campaign_id,
                    among,
                    Notification.created_at > since,
                    Notification.status != "skipped",
                    Notification.test.is_(False),
                )
            )
            .group_by(Notification.contact_id)
        )
        counts.update({cid: n for cid, n in rows})
    return counts
