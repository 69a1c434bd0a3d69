"""Group commit for SQLite: small ingestion requests of one process share a write transaction.

SQLite has one writer at a time. When each single-event request took the write lock, wrote
and committed on its own, concurrent requests queued on the lock one by one, and each paid
for a transaction of its own. Here a request hands its events to the process's group and
waits; whichever waiting request gets the group's lock first writes every request queued by
then, each in a savepoint of one write transaction (planned under the lock, so each sees
the ones before it: duplicates of one client id and frequency caps hold across the group),
commits once, and hands each request its own results, or its own error. A request is
answered only after the commit that holds its rows, as before.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from engine import metrics
from engine.campaigns.ingest import (
    IncomingEvent,
    IngestResult,
    ingest_and_commit,
    ingest_events,
    ingest_with_short_write_lock,
)
from engine.store import Database
from engine.templating.request import RenderSettings

#: Requests of at most this many events join a group; larger batches are planned outside
#: the write lock (``ingest_with_short_write_lock``), their matching and rendering being
#: most of their time.
GROUPED_EVENTS = 4
#: Events one group transaction writes at most (more wait for the next group).
MAX_GROUP_EVENTS = 200


def ingest_on_sqlite(
    database: Database,
    workspace_id: str,
    events: Sequence[IncomingEvent],
    *,
    settings: RenderSettings,
) -> list[IngestResult]:
    """Ingest and commit on SQLite: a few events through the process's write group, a
    larger batch planned before it takes the write lock."""
    if len(events) <= GROUPED_EVENTS:
        return write_group(database).ingest(workspace_id, events, settings)
    return ingest_with_short_write_lock(database, workspace_id, events, settings=settings)


@dataclass
class _Job:
    workspace_id: str
    events: Sequence[IncomingEvent]
    settings: RenderSettings
    results: list[IngestResult] | None = None
    error: BaseException | None = None
    done: bool = False


class WriteGroup:
    """The group of one process and database (see the module's documentation)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._queued: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._writer = threading.Lock()  # held by the request writing a group

    def ingest(
        self, workspace_id: str, events: Sequence[IncomingEvent], settings: RenderSettings
    ) -> list[IngestResult]:
        job = _Job(workspace_id, events, settings)
        with self._queue_lock:
            self._queued.append(job)
        while not job.done:
            with self._writer:
                if not job.done:
                    self._write(self._take())
        if job.error is not None:
            raise job.error
        assert job.results is not None
        return job.results

    def _take(self) -> list[_Job]:
        with self._queue_lock:
            group, count = [], 0
            while self._queued and (
                not group or count + len(self._queued[0].events) <= MAX_GROUP_EVENTS
            ):
                group.append(self._queued.pop(0))
                count += len(group[-1].events)
            return group

    def _write(self, group: list[_Job]) -> None:
        try:
            with self._database.session(write=True) as session:
                for job in group:
                    try:
                        with session.begin_nested():
                            job.results = ingest_events(
                                session, job.workspace_id, job.events, settings=job.settings
                            )
                    except Exception as exc:  # its savepoint is rolled back; the rest go on
                        job.results, job.error = None, exc
                session.commit()
        except Exception as exc:  # the commit failed: nothing of the group was stored
            for job in group:
                job.results, job.error = None, exc
        else:
            metrics.count_ingested(sum(not r.duplicate for job in group for r in job.results or ()))
        for job in group:
            if isinstance(job.error, IntegrityError):  # on its own, as ingestion always did
                self._write_alone(job)
            job.done = True

    def _write_alone(self, job: _Job) -> None:
        job.results = job.error = None
        try:
            with self._database.session(write=True) as session:
                job.results = ingest_and_commit(
                    session, job.workspace_id, job.events, settings=job.settings
                )
        except Exception as exc:
            job.error = exc


_groups: weakref.WeakKeyDictionary[Database, WriteGroup] = weakref.WeakKeyDictionary()
_groups_lock = threading.Lock()


def write_group(database: Database) -> WriteGroup:
    with _groups_lock:
        group = _groups.get(database)
        if group is None:
            group = _groups[database] = WriteGroup(database)
        return group
