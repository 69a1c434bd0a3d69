"""Live worker processes, by heartbeat: who shares out each channel's ``max_concurrency``."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store.models import WorkerHeartbeat

_W = WorkerHeartbeat.__table__


def beat(session: Session, worker_id: str, now: datetime, *, live_within: timedelta) -> None:
    """Record that ``worker_id`` is alive; forget workers silent for twice ``live_within``."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(_W).values(worker_id=worker_id, heartbeat_at=now)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[_W.c.worker_id], set_={"heartbeat_at": statement.excluded.heartbeat_at}
        )
    )
    session.execute(delete(_W).where(_W.c.heartbeat_at < now - 2 * live_within))


def live(session: Session, now: datetime, *, live_within: timedelta) -> list[str]:
    """The ids of the workers heard from within ``live_within``, sorted."""
    return list(
        session.scalars(
            select(_W.c.worker_id)
            .where(_W.c.heartbeat_at >= now - live_within)
            .order_by(_W.c.worker_id)
        )
    )


def forget(session: Session, worker_id: str) -> None:
    """A worker stopping: its share goes to the others at their next heartbeat."""
    session.execute(delete(_W).where(_W.c.worker_id == worker_id))
