"""The database for the web layer: one ``Database`` per app, one session per request."""

from __future__ import annotations

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy.orm import Session

from engine.store import Database

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def request_writes() -> bool:
    """Whether this request's session is a writer's (see :func:`get_session`)."""
    return not has_request_context() or request.method in _WRITE_METHODS


def init_app(app: Flask) -> None:
    app.extensions["hookcast.db"] = Database(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)


def get_database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["hookcast.db"]


def get_session() -> Session:
    """This request's session (a writer's on SQLite for POST/PUT/PATCH/DELETE).

    Views call engine functions with it and commit; teardown rolls back whatever was left
    uncommitted and closes it.
    """
    if "db_session" not in g:
        g.db_session = get_database().session(write=request_writes())
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
