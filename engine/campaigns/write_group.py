"""Group commit: small ingestion requests of one process are written as one batch.

Most sources post one event per request. Written one by one, each request paid for a
transaction of its own: its reads (duplicates, contacts, caps), its inserts and its commit,
on SQLite one after the other behind the single writer, on PostgreSQL a round trip each.
Here a request hands its events to the process's group and waits; whichever waiting request
gets the group's writer lock first takes every request queued by then and ingests all their
events as one batch (one read per table, one insert per table, one commit), then hands each
request its own results. Nothing waits for a group to fill: a group is whatever queued while
the one before it was written, so an idle server writes a request at once. A request is
answered only after the commit that holds its rows, as before. Planned as one batch,
duplicates of one client id and frequency caps hold across the group as within a batch.

When the batch fails (a unique key raced by another process, a workspace deleted meanwhile)
nothing of it was stored: each request is then written again in a savepoint of its own, so
that one bad request cannot fail the others, and one that collides on a unique key is
retried alone as ``ingest_and_commit`` retries.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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

#: Requests of at most this many events join a group. A larger batch is a group of its own
#: already: it is written alone (on SQLite planned before it takes the write lock,
#: ``ingest_with_short_write_lock``, its matching and rendering being most of its time).
GROUPED_EVENTS = 4
#: Events one group writes at most (more wait for the next group).
MAX_GROUP_EVENTS = 200


def ingest_request(
    database: Database,
    session: Session,
    workspace_id: str,
    events: Sequence[IncomingEvent],
    *,
    settings: RenderSettings,
) -> list[IngestResult]:
    """Ingest one request's events and commit: a few through the process's group, a larger
    batch on its own (``session`` on PostgreSQL; SQLite opens its own transactions)."""
    if len(events) <= GROUPED_EVENTS:
        return write_group(database).ingest(workspace_id, events, settings)
    if database.is_postgres:  # row locks: concurrent batches do not wait on each other
        return ingest_and_commit(session, workspace_id, events, settings=settings)
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
            self._write_as_one_batch(group)
        except Exception:  # nothing of the group was stored: each request on its own
            self._write_each(group)
        for job in group:
            job.done = True

    def _write_as_one_batch(self, group: list[_Job]) -> None:
        with self._database.session(write=True) as session:
            for workspace_id, settings, jobs in _by_workspace(group):
                merged = [event for job in jobs for event in job.events]
                results = ingest_events(session, workspace_id, merged, settings=settings)
                for job in jobs:
                    job.results, results = results[: len(job.events)], results[len(job.events) :]
            session.commit()
        metrics.count_ingested(sum(not r.duplicate for job in group for r in job.results or ()))

    def _write_each(self, group: list[_Job]) -> None:
        for job in group:
            job.results = job.error = None
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

    def _write_alone(self, job: _Job) -> None:
        job.results = job.error = None
        try:
            with self._database.session(write=True) as session:
                job.results = ingest_and_commit(
                    session, job.workspace_id, job.events, settings=job.settings
                )
        except Exception as exc:
            job.error = exc


def _by_workspace(group: list[_Job]) -> Iterator[tuple[str, RenderSettings, list[_Job]]]:
    """The group's jobs by workspace and render settings, each part in queue order."""
    parts: dict[tuple[str, RenderSettings], list[_Job]] = {}
    for job in group:
        parts.setdefault((job.workspace_id, job.settings), []).append(job)
    for (workspace_id, settings), jobs in parts.items():
        yield workspace_id, settings, jobs


_groups: weakref.WeakKeyDictionary[Database, WriteGroup] = weakref.WeakKeyDictionary()
_groups_lock = threading.Lock()


def write_group(database: Database) -> WriteGroup:
    with _groups_lock:
        group = _groups.get(database)
        if group is None:
            group = _groups[database] = WriteGroup(database)
        return group
