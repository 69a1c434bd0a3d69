"""Saved webhook templates (reusable channel recipes)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store.models import Template


def list_templates(session: Session, workspace_id: str) -> list[Template]:
    return list(
        session.scalars(
            select(Template).where(Template.workspace_id == workspace_id).order_by(Template.name)
        )
    )
