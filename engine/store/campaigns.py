"""Campaigns: reading and writing campaign rows (the channel recipe included)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store.models import Campaign


def list_campaigns(session: Session, workspace_id: str) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign)
            .where(Campaign.workspace_id == workspace_id)
            .order_by(Campaign.id.desc())
        )
    )
