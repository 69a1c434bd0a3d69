"""Contacts: upsert, read, delete, keyset-paginated listing and search, a contact's events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.orm import Session

from engine.store.models import Contact, Event


def get_contact(session: Session, workspace_id: str, external_id: str) -> Contact | None:
    return session.scalar(
        select(Contact).where(
            Contact.workspace_id == workspace_id, Contact.external_id == external_id
        )
    )


def upsert_contact(
    session: Session,
    workspace_id: str,
    external_id: str,
    attributes: Mapping[str, Any] | None,
    *,
    replace: bool = False,
) -> tuple[Contact, bool]:
    """Create the contact or update its attributes; returns ``(contact, created)``.

    ``replace=True`` replaces the attributes (PUT); otherwise given keys are merged into
    the stored ones (events carry partial profiles), and a key set to null is removed.
    """
    contact = get_contact(session, workspace_id, external_id)
    if contact is None:
        clean = {k: v for k, v in (attributes or {}).items() if v is not None or replace}
        contact = Contact(workspace_id=workspace_id, external_id=external_id, attributes=clean)
        session.add(contact)
        session.flush()
        return contact, True
    if replace:
        contact.attributes = dict(attributes or {})
    elif attributes:
        merged = dict(contact.attributes)
        for key, value in attributes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        if merged != contact.attributes:
            contact.attributes = merged
    session.flush()
    return contact, False


def delete_contact(session: Session, workspace_id: str, external_id: str) -> bool:
    contact = get_contact(session, workspace_id, external_id)
    if contact is None:
        return False
    session.delete(contact)
    session.flush()
    return True


def list_contacts(
    session: Session,
    workspace_id: str,
    *,
    limit: int,
    before_id: str | None = None,
    external_id_prefix: str | None = None,
) -> list[Contact]:
    """Newest first; ``before_id`` is the keyset cursor (ids sort by creation time)."""
    query = select(Contact).where(Contact.workspace_id == workspace_id)
    if before_id:
        query = query.where(Contact.id < before_id)
    if external_id_prefix:
        escaped = external_id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Contact.external_id.like(escaped + "%", escape="\\"))
    return list(session.scalars(query.order_by(Contact.id.desc()).limit(limit)))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_contacts(
    session: Session,
    workspace_id: str,
    query: str | None,
    *,
    limit: int,
    before_id: str | None = None,
    after_id: str | None = None,
) -> list[Contact]:
    """Newest first, those whose external id starts with ``query`` or whose attributes hold
    it (case-insensitive; the attributes' JSON text is searched, so a key matches too).

    ``before_id``/``after_id`` are the keyset cursors of ``web.paging``. Without a query
    this is the plain newest-first list on the ``(workspace_id, id)`` order.
    """
    select_contacts = select(Contact).where(Contact.workspace_id == workspace_id)
    text = (query or "").strip()
    if text:
        pattern = _like_escape(text.lower())
        attributes = func.lower(cast(Contact.attributes, Text))
        matches = [
            func.lower(Contact.external_id).like(pattern + "%", escape="\\"),
            attributes.like(f"%{pattern}%", escape="\\"),
        ]
        # SQLite keeps JSON with non-ASCII letters and quotes escaped (\u00e9, \")
        as_stored = _like_escape(json.dumps(text.lower())[1:-1])
        if as_stored != pattern:
            matches.append(attributes.like(f"%{as_stored}%", escape="\\"))
        select_contacts = select_contacts.where(or_(*matches))
    if after_id:
        newer = select_contacts.where(Contact.id > after_id).order_by(Contact.id.asc())
        return list(reversed(list(session.scalars(newer.limit(limit)))))
    if before_id:
        select_contacts = select_contacts.where(Contact.id < before_id)
    return list(session.scalars(select_contacts.order_by(Contact.id.desc()).limit(limit)))


def recent_events(session: Session, contact: Contact, limit: int = 20) -> list[Event]:
    """The contact's newest events (on the ``events.contact_id`` index)."""
    return list(
        session.scalars(
            select(Event)
            .where(Event.contact_id == contact.id, Event.workspace_id == contact.workspace_id)
            .order_by(Event.id.desc())
            .limit(limit)
        )
    )
