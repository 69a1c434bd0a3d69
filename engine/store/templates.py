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


def list_templates_page(
    session: Session, workspace_id: str, *, limit: int, before_id: str | None = None
) -> list[Template]:
    """Newest first, keyset-paginated on the id."""
    query = select(Template).where(Template.workspace_id == workspace_id)
    if before_id:
        query = query.where(Template.id < before_id)
    return list(session.scalars(query.order_by(Template.id.desc()).limit(limit)))


def get_template(session: Session, workspace_id: str, template_id: str) -> Template | None:
    return session.scalar(
        select(Template).where(Template.workspace_id == workspace_id, Template.id == template_id)
    )


def add_template(session: Session, template: Template) -> Template:
    session.add(template)
    session.flush()
    return template


def delete_template(session: Session, template: Template) -> None:
    session.delete(template)
    session.flush()
