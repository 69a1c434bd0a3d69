"""Statements in one round trip (PostgreSQL's pipeline mode; one by one on SQLite): the same
rows as ``Session.execute``, and errors as the SQLAlchemy exceptions it would raise."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from engine.ids import new_id
from engine.store import Database, accounts
from engine.store.models import Campaign, Contact
from engine.store.pipeline import one_round_trip, read_together
from engine.store.types import utcnow

_CAMPAIGNS = select(Campaign.name, Campaign.updated_at, Campaign.frequency_cap).where(
    Campaign.workspace_id == bindparam("workspace_id"), Campaign.status == "draft"
)
_COUNT = select(func.count()).select_from(Contact).where(Contact.workspace_id == bindparam("ws"))


@pytest.fixture
def workspace_id(db: Database) -> str:
    with db.transaction() as session:
        workspace = accounts.create_workspace(session, "Pipes")
        session.add(
            Campaign(
                workspace_id=workspace.id,
                name="Café",
                signing_secret="whsec_x",
                frequency_cap={"max": 2, "per_seconds": 60},
            )
        )
        return workspace.id


def test_reads_together_give_what_execute_gives(db: Database, workspace_id: str) -> None:
    with db.session() as session:
        expected = [
            [tuple(row) for row in session.execute(_CAMPAIGNS, {"workspace_id": workspace_id})],
            [tuple(row) for row in session.execute(_COUNT, {"ws": workspace_id})],
        ]
        together = read_together(
            session, [(_CAMPAIGNS, {"workspace_id": workspace_id}), (_COUNT, {"ws": workspace_id})]
        )
        again = read_together(session, [(_COUNT, {"ws": workspace_id})])  # compiled once

    assert together == expected and again == expected[1:]
    [(name, updated_at, cap)] = together[0]
    assert name == "Café" and updated_at.tzinfo is not None and cap == {"max": 2, "per_seconds": 60}


def test_writes_in_one_round_trip_are_stored(db: Database, workspace_id: str) -> None:
    rows = [
        {"id": new_id("con"), "workspace_id": workspace_id, "external_id": f"c{n}"}
        for n in range(3)
    ]
    with db.session(write=True) as session:
        with one_round_trip(session):
            for row in rows:
                session.connection().execute(insert(Contact), {**row, "attributes": {}})
        session.commit()

    with db.session() as session:
        assert read_together(session, [(_COUNT, {"ws": workspace_id})]) == [[(3,)]]


def test_a_unique_key_taken_is_an_integrity_error_and_nothing_is_stored(
    db: Database, workspace_id: str
) -> None:
    now = utcnow()
    row = {
        "workspace_id": workspace_id,
        "external_id": "same",
        "attributes": {},
        "created_at": now,
        "updated_at": now,
    }
    with db.session(write=True) as session:
        with pytest.raises(IntegrityError), one_round_trip(session):
            session.connection().execute(insert(Contact), {**row, "id": new_id("con")})
            session.connection().execute(insert(Contact), {**row, "id": new_id("con")})
        session.rollback()

    with db.session() as session:
        assert read_together(session, [(_COUNT, {"ws": workspace_id})]) == [[(0,)]]
