"""Contacts: upsert, read, delete, and keyset-paginated listing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store.models import Contact


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
