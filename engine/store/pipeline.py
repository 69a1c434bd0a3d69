"""Several statements in one round trip to PostgreSQL (psycopg's pipeline mode).

A request that reads three things and writes four waits for seven answers one after the
other; on a busy machine each wait is also a trip through the GIL. In pipeline mode psycopg
sends the statements together and reads their answers together. Elsewhere (SQLite, no
network) the same calls simply run the statements one by one.

Errors come back when the answers do, at the end of the block, as the SQLAlchemy exceptions
an ordinary ``execute`` raises (``IntegrityError`` for a unique key a concurrent request
took first), and the transaction is then aborted as after any failed statement.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import Compiled

Query = tuple[Select[Any], Mapping[str, Any]]


@contextmanager
def one_round_trip(session: Session) -> Iterator[None]:
    """Statements executed inside (writes: their results are not read) are sent together
    and answered at the end of the block, on PostgreSQL; run as they come elsewhere."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        yield
        return
    with _translated_errors(connection), connection.connection.driver_connection.pipeline():
        yield


def read_together(session: Session, queries: Sequence[Query]) -> list[list[tuple[Any, ...]]]:
    """The rows of each of ``queries`` (SELECTs with named parameters, built once: each is
    compiled once per dialect and run straight through the driver), sent in one round trip
    on PostgreSQL; one after the other elsewhere."""
    connection = session.connection()
    dialect = connection.dialect
    compiled = [_compiled(query, dialect) for query, _ in queries]
    driver = connection.connection.driver_connection
    if dialect.name != "postgresql":
        answers = []
        with _translated_errors(connection):
            for (statement, processors), (_, params) in zip(compiled, queries, strict=True):
                bound = _bound(statement, params)
                positional = [bound[name] for name in statement.positiontup or ()]
                rows = driver.execute(statement.string, positional).fetchall()
                answers.append([_processed(row, processors) for row in rows])
        return answers
    cursors = []
    with _translated_errors(connection), driver.pipeline():
        for (statement, _), (_, params) in zip(compiled, queries, strict=True):
            cursor = driver.cursor()
            cursor.execute(statement.string, _bound(statement, params))
            cursors.append(cursor)
    answers = []
    for cursor, (_, processors) in zip(cursors, compiled, strict=True):
        with cursor:
            answers.append([_processed(row, processors) for row in cursor.fetchall()])
    return answers


@functools.lru_cache(maxsize=256)
def _compiled(
    query: Select[Any], dialect: Dialect
) -> tuple[Compiled, list[Callable[[Any], Any] | None]]:
    """``query`` compiled for the driver, and each result column's processor (what turns
    the driver's value into the column type's, as ``Session.execute`` would)."""
    processors = [
        column.type._cached_result_processor(dialect, None) for column in query.selected_columns
    ]
    return query.compile(dialect=dialect), processors


def _bound(statement: Compiled, params: Mapping[str, Any]) -> dict[str, Any]:
    """The driver's parameters: the statement's own literals and ``params``, through the
    parameter types' processors."""
    values = statement.construct_params(dict(params))
    processors = statement._bind_processors
    return {
        name: processors[name](value) if name in processors and value is not None else value
        for name, value in values.items()
    }


def _processed(row: Sequence[Any], processors: list[Callable[[Any], Any] | None]) -> tuple:
    return tuple(
        value if processor is None else processor(value)
        for value, processor in zip(row, processors, strict=True)
    )


@contextmanager
def _translated_errors(connection: Connection) -> Iterator[None]:
    dialect = connection.dialect
    try:
        yield
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            None, None, exc, dialect.loaded_dbapi.Error, dialect=dialect
        ) from exc
