"""Many rows per statement: bulk inserts through the driver and ``IN`` sets of any size.

Ingestion, schedule runs and the worker's claims and settlements handle hundreds of rows
at a time; one statement per row, or a new SQL text for every list length (which the
driver must parse again), would cost more than the work itself.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Set
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

#: Parameters per ``IN (...)`` on SQLite: well under its limit.
IN_CHUNK = 500
#: PostgreSQL takes more rows than this by ``COPY`` (fastest in bulk, but two round trips),
#: fewer by one multi-row ``INSERT`` (a settle of a finished attempt or two).
COPY_FROM_ROWS = 8


def is_in(
    session: Session, column: ColumnElement[Any], values: Collection[str]
) -> ColumnElement[bool]:
    """``column IN values`` as one condition.

    PostgreSQL gets ``IN (SELECT jsonb_array_elements_text(:values))``: one parameter and
    one SQL text whatever the count, so the driver parses and prepares it once. Elsewhere
    an ``IN`` list (keep it to ``IN_CHUNK`` values on SQLite, or use :func:`is_in_chunks`).
    """
    if session.get_bind().dialect.name == "postgresql":
        # One JSON text parameter: psycopg writes a Python list out as an array literal
        # element by element, a JSON document is written by json.dumps in C.
        listed = func.jsonb_array_elements_text(
            cast(bindparam(None, json.dumps(list(values)), type_=Text), JSONB)
        )
        return column.in_(select(listed.table_valued("value").c.value))
    return column.in_(bindparam(None, list(values), expanding=True))


def is_in_chunks(
    session: Session, column: ColumnElement[Any], values: Iterable[str]
) -> Iterable[ColumnElement[bool]]:
    """Conditions that together say ``column IN values`` for any number of values, one
    query each: a single one on PostgreSQL, chunks of ``IN_CHUNK`` on SQLite."""
    distinct = sorted(set(values))
    if not distinct:
        return
    step = len(distinct) if session.get_bind().dialect.name == "postgresql" else IN_CHUNK
    for start in range(0, len(distinct), step):
        yield is_in(session, column, distinct[start : start + step])


def fetch_rows(session: Session, query: Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``query`` as tuples of JSON-able values (text, numbers, None).

    On SQLite the rows come back as one JSON array built by the database: the driver lets
    go of the GIL for every row it steps through, and on a process whose sender threads are
    busy each time costs milliseconds to get it back (a claim reads hundreds of rows). On
    PostgreSQL the driver fetches the rows at once anyway: a plain execute."""
    if session.get_bind().dialect.name != "sqlite":
        return [tuple(row) for row in session.execute(query)]
    inner = query.subquery()
    packed = select(func.json_group_array(func.json_array(*inner.c))).select_from(inner)
    return [tuple(row) for row in json.loads(session.scalar(packed) or "[]")]


def insert_rows(
    connection: Connection, table: Table, rows: list[dict[str, Any]], raw: Set[str] = frozenset()
) -> None:
    """Insert uniform row dicts straight through the driver: ``COPY`` on PostgreSQL (a
    multi-row ``INSERT`` for a few rows), ``executemany`` on SQLite.

    Values go through the same SQLAlchemy bind processors a Core insert would use (JSON,
    UTC datetimes, booleans), so stored values are identical; a value shared by the rows
    of a batch (its timestamp, campaign id) is processed once. Columns in ``raw`` are
    stored as given. Rows with differing keys, or leaving out a column that has a Python
    default, take the ordinary Core insert.
    """
    names = list(rows[0])
    keys = set(names)
    uniform = all(len(row) == len(names) and row.keys() == keys for row in rows)
    defaulted = any(
        column.default is not None and column.name not in keys for column in table.columns
    )
    if not uniform or defaulted:
        statement = insert(table).values({n: bindparam(f"raw_{n}", type_=Text) for n in raw})
        connection.execute(statement, [_rename_raw(row, raw) for row in rows])
        return
    dialect = connection.dialect
    processors = [
        None if name in raw else table.columns[name].type._cached_bind_processor(dialect)
        for name in names
    ]
    columns = list(zip(names, processors, strict=True))
    last: dict[str, tuple[Any, Any]] = {}
    values = []
    for row in rows:
        record = []
        for name, processor in columns:
            value = row[name]
            if processor is not None and value is not None:
                seen = last.get(name)
                if seen is not None and seen[0] is value:
                    value = seen[1]
                else:
                    processed = processor(value)
                    last[name] = (value, processed)
                    value = processed
            record.append(value)
        values.append(tuple(record))
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    if dialect.name == "postgresql" and len(values) > COPY_FROM_ROWS:
        statement = f"COPY {table.name} ({quoted}) FROM STDIN"
        cursor = connection.connection.driver_connection.cursor()
        try:
            with cursor, cursor.copy(statement) as copy:
                for record in values:
                    copy.write_row(record)
        except dialect.loaded_dbapi.Error as exc:  # e.g. a unique key raced by another request
            raise DBAPIError.instance(
                statement, None, exc, dialect.loaded_dbapi.Error, dialect=dialect
            ) from exc
        return
    if dialect.name == "postgresql":  # a few rows: one multi-row INSERT, one round trip
        row_marks = "(" + ", ".join("%s" for _ in names) + ")"
        sql = f"INSERT INTO {table.name} ({quoted}) VALUES "  # noqa: S608 - model names
        sql += ", ".join(row_marks for _ in values)
        connection.exec_driver_sql(sql, tuple(value for record in values for value in record))
        return
    marks = ", ".join("?" for _ in names)
    sql = f"INSERT INTO {table.name} ({quoted}) VALUES ({marks})"  # noqa: S608 - model names
    connection.exec_driver_sql(sql, values)


def _rename_raw(row: Mapping[str, Any], raw: Set[str]) -> dict[str, Any]:
    """The Core fallback binds raw (already encoded) columns as plain text parameters."""
    renamed = {name: value for name, value in row.items() if name not in raw}
    renamed.update({f"raw_{name}": row.get(name) for name in raw})
    return renamed
