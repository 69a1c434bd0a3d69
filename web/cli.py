"""The ``hookcast`` command line (SPEC §2).

Every command exits non-zero with one human line on stderr when the input or the
configuration is wrong; tracebacks are for bugs only.
"""

from __future__ import annotations

import atexit
import functools
import logging
import multiprocessing
import os
import secrets
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import Flask
from flask.logging import default_handler as flask_default_handler
from sqlalchemy.exc import SQLAlchemyError

from engine import crypto
from engine.store import Database, accounts, activity, login_sessions, login_throttle, migrate
from engine.store.availability import wait_for_database
from web import create_app, default_instance_path, engine_settings
from web.auth import MIN_PASSWORD_LENGTH, hash_password
from web.database import get_database
from web.logconfig import configure_logging, gunicorn_log_config
from web.serving import DEFAULT_THREADS, RequestsInFlight, waitress_server

F = TypeVar("F", bound=Callable[..., Any])
CLI_ACTOR = activity.Actor("command line")

logger = logging.getLogger("hookcast")

CONFIG_TEMPLATE = """\
# Hookcast instance configuration, written by `hookcast init`.
# Environment variables HOOKCAST_<NAME> override anything set here.
SECRET_KEY = {secret_key!r}
ENCRYPTION_KEY = {encryption_key!r}
# DATABASE_URL = "postgresql+psycopg://user@host:5432/hookcast"
# REQUIRE_HTTPS = True
# ALLOWED_NETWORKS = ""  # e.g. "127.0.0.0/8" to send to local receivers while testing
# SENDER_THREADS = 64
# RETENTION_DAYS = 30
# METRICS_TOKEN = ""  # set to serve GET /metrics to `Authorization: Bearer <token>`
# LOG_FORMAT = "text"  # or "json": one JSON object per line
# SESSION_IDLE_HOURS = 12
# SESSION_LIFETIME_DAYS = 14
# PROXY_HOPS = 0  # 1 behind one reverse proxy that sets X-Forwarded-For/-Proto
# Email (alerts, invitations, password reset); unset SMTP_URL means no email:
# SMTP_URL = "smtp+starttls://user:password@smtp.example.com:587"  # or smtp://, smtps://
# MAIL_FROM = "Hookcast <hookcast@example.com>"
# BASE_URL = "https://hookcast.example.com"  # the public address used in links
"""


class CommandError(click.ClickException):
    """A one-line error for the user; exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"hookcast: error: {self.format_message()}", err=True)


def friendly_errors(command: F) -> F:
    """Turn expected failures into one line on stderr instead of a traceback."""

    @functools.wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ValueError, accounts.AccountError) as exc:
            raise CommandError(str(exc)) from None
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise CommandError(
                f"database error: {detail} (is the database reachable and `hookcast init` run?)"
            ) from None

    return wrapped  # type: ignore[return-value]


@contextmanager
def opened_app(
    *, check_schema: bool = True, log: bool = False, wait: bool = False
) -> Iterator[Flask]:
    """The configured app, its database connections closed when the command ends.

    ``log``: a long-running command, whose log goes to stderr in the configured
    ``LOG_FORMAT`` (short commands say what they did on stdout/stderr instead).
    ``wait=True`` (the long-running ``serve``, ``web`` and ``worker``): a database that
    does not answer yet is waited for, retried with backoff; other commands fail fast.
    """
    app = create_app()
    if log:
        configure_logging(app.config["LOG_FORMAT"])
        app.logger.removeHandler(flask_default_handler)  # the root handler formats its lines
    database = get_database(app)
    try:
        if wait:
            wait_for_database(database, say=lambda line: click.echo(f"hookcast: {line}", err=True))
        if check_schema:
            current, head = migrate.current_revision(database), migrate.head_revision(database)
            if current != head:
                raise CommandError(
                    f"the database schema is at {current or 'nothing'}, not {head}: "
                    "run `hookcast init` (or `hookcast db upgrade`)"
                )
        yield app
    finally:
        database.dispose()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hookcast", prog_name="hookcast")
def cli() -> None:
    """Hookcast: events about contacts in, templated and signed webhooks out."""


@cli.command()
@friendly_errors
def init() -> None:
    """Create instance/config.py with fresh keys (if missing) and migrate the database."""
    instance = Path(default_instance_path())
    instance.mkdir(parents=True, exist_ok=True)
    config_file = instance / "config.py"
    if config_file.exists():
        click.echo(f"Keeping existing {config_file}")
    else:
        config_file.write_text(
            CONFIG_TEMPLATE.format(
                secret_key=secrets.token_urlsafe(48), encryption_key=crypto.generate_key()
            )
        )
        config_file.chmod(0o600)
        click.echo(f"Wrote {config_file} with a new SECRET_KEY and ENCRYPTION_KEY")
    with opened_app(check_schema=False) as app:
        database = get_database(app)
        migrate.upgrade(database)
        where = database.url.render_as_string()
        click.echo(f"Database schema is at {migrate.current_revision(database)} ({where})")


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Apply the migrations up to the newest schema."""
    with opened_app(check_schema=False) as app:
        database = get_database(app)
        migrate.upgrade(database)
        click.echo(f"Database schema is at {migrate.current_revision(database)}")


@db.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@friendly_errors
def db_backup(path: Path) -> None:
    """Copy the SQLite database to PATH, consistently, even while Hookcast is running."""
    from engine.store import backup

    with opened_app(check_schema=False) as app:
        database = get_database(app)
        if database.is_postgres:
            _use_postgres_tools("pg_dump --format=custom --file", path, database)
        made = backup.backup_sqlite(database, path)
        click.echo(f"Backed up to {made.path} (schema {made.revision}, {made.size:,} bytes)")


@db.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@friendly_errors
def db_restore(path: Path) -> None:
    """Replace the SQLite database with the backup at PATH (every Hookcast process stopped)."""
    from engine.store import backup

    with opened_app(check_schema=False) as app:
        database = get_database(app)
        if database.is_postgres:
            _use_postgres_tools(
                "pg_restore --clean --if-exists --no-owner --dbname", path, database
            )
        restored = backup.restore_sqlite(database, path)
        if restored.saved_as is not None:
            click.echo(f"The database it replaced is kept as {restored.saved_as}")
        click.echo(f"Restored {path} (schema {restored.revision})")
        if restored.revision != migrate.head_revision(database):
            click.echo("Run `hookcast db upgrade` to bring it to this version's schema.")


def _use_postgres_tools(command: str, path: Path, database: Database) -> None:
    """PostgreSQL has its own tools: print the command to run, exit 1 (nothing was done)."""
    url = database.url.set(drivername="postgresql").render_as_string(hide_password=True)
    if command.startswith("pg_dump"):
        line = f"{command} {shlex.quote(str(path))} {shlex.quote(url)}"
    else:
        line = f"{command} {shlex.quote(url)} {shlex.quote(str(path))}"
    click.echo(line)
    raise CommandError(
        f"{database.url.get_backend_name()} databases are backed up and restored with "
        f"{command.split()[0]}: run the command above (password from PGPASSWORD or "
        "~/.pgpass; stop Hookcast's processes before a restore)"
    )


def _run_engine_until_signal(
    app: Flask,
    serve_web: Callable[[], None] | None,
    answering_requests: Callable[[], bool] | None = None,
) -> None:
    """Start the scheduler/executor once in this process; stop it cleanly on SIGTERM/SIGINT."""
    from engine.runtime import EngineRuntime

    runtime = EngineRuntime(
        engine_settings(app), get_database(app), answering_requests=answering_requests
    )
    runtime.start()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        if serve_web is not None:
            raise KeyboardInterrupt  # unwinds waitress's main loop

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        if serve_web is not None:
            serve_web()
        else:
            while not stop.wait(1.0):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        logger.info("stopping: finishing or releasing in-flight sends")
        runtime.stop()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(1, 256))
@friendly_errors
def serve(host: str, port: int, threads: int) -> None:
    """Web builder, REST API and scheduler/executor in one process."""
    _prepare_metrics_directory(forking=False)
    with opened_app(log=True, wait=True) as app:
        in_flight = RequestsInFlight(app.wsgi_app)
        app.wsgi_app = in_flight  # type: ignore[method-assign]
        serve_web = waitress_server(app, host, port, threads)
        _run_engine_until_signal(app, serve_web, in_flight.answering)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(1, 256))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="More than 1 runs gunicorn with that many forked processes.",
)
@friendly_errors
def web(host: str, port: int, threads: int, workers: int) -> None:
    """The web builder and REST API only (no scheduler): run `hookcast worker` beside it."""
    _prepare_metrics_directory(forking=workers > 1)
    with opened_app(log=True, wait=True) as app:
        _serve_web(app, host, port, threads, workers)


def _forget_connections(app: Flask) -> None:
    get_database(app).engine.dispose(close=False)


def _serve_web(app: Flask, host: str, port: int, threads: int, workers: int) -> None:
    if workers == 1:
        waitress_server(app, host, port, threads)()
        return
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        raise CommandError("--workers needs gunicorn: pip install 'hookcast[gunicorn]'") from None

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            # Forked workers must not share the parent's pooled database connections.
            self.cfg.set("post_fork", lambda _server, _worker: _forget_connections(app))
            self.cfg.set("child_exit", lambda _server, child: _forget_process_metrics(child.pid))
            log_config = gunicorn_log_config(app.config["LOG_FORMAT"])
            if log_config is not None:
                self.cfg.set("logconfig_dict", log_config)

        def load(self) -> Flask:
            return app

    _Gunicorn().run()


@cli.command()
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes to fork, each with SENDER_THREADS senders (one Python process "
    "uses about one core).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve GET /metrics (Prometheus) on this port, for all --processes together.",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@friendly_errors
def worker(processes: int, metrics_port: int | None, metrics_host: str) -> None:
    """The scheduler/executor only. Run any number of them against one PostgreSQL."""
    _prepare_metrics_directory(forking=processes > 1)
    with opened_app(log=True, wait=True) as app, _worker_metrics(app, metrics_host, metrics_port):
        logger.info("Hookcast worker started; Ctrl-C or SIGTERM stops it")
        if processes == 1:
            _run_engine_until_signal(app, None)
        else:
            _supervise_workers(app, processes)


def _prepare_metrics_directory(*, forking: bool) -> None:
    """prometheus_client's multiprocess mode, before the metrics are first imported
    (``create_app`` imports them). ``PROMETHEUS_MULTIPROC_DIR`` when the operator set it
    (the files an earlier run left there are removed: counters start at 0, as in a single
    process); else, for a family of forked processes, a new temporary directory removed on
    exit; else none (one process keeps its counters in memory)."""
    named = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if named:
        Path(named).mkdir(parents=True, exist_ok=True)
        for kind in ("counter", "gauge", "histogram", "summary"):
            for stale in Path(named).glob(f"{kind}_*.db"):
                stale.unlink()
        return
    if not forking or "prometheus_client" in sys.modules:
        return  # (already imported in single-process mode: an in-process test run)
    path = tempfile.mkdtemp(prefix="hookcast-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    parent = os.getpid()
    atexit.register(lambda: os.getpid() == parent and shutil.rmtree(path, ignore_errors=True))


def _forget_process_metrics(pid: int) -> None:
    from engine import metrics

    metrics.mark_process_dead(pid)


@contextmanager
def _worker_metrics(app: Flask, host: str, port: int | None) -> Iterator[None]:
    """``GET /metrics`` on ``host:port`` while the worker runs (nothing without a port)."""
    if port is None:
        yield
        return
    from web.metrics import serve_worker_metrics

    # Its own connections: forked workers must not inherit the ones a scrape opened.
    database = Database(app.config["DATABASE_URL"], pool_size=2)
    try:
        server = serve_worker_metrics(database, host, port, app.config["METRICS_TOKEN"] or None)
    except OSError as exc:
        database.dispose()
        raise CommandError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
    logger.info("Metrics on http://%s:%d/metrics", host, port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        database.dispose()


#: A forked worker that dies is replaced, but not sooner than this after it started.
RESTART_DELAY_SECONDS = 5.0


def _supervise_workers(app: Flask, processes: int) -> None:
    """Keep ``processes`` forked workers running until SIGTERM/SIGINT, then stop them all.

    Each child is a whole worker, like a separate ``hookcast worker``: they share the
    outbox through the database (leases), so together they use several cores. A child
    that dies is replaced; on the way out each gets SIGTERM (finish or release its sends)
    and, if still running after the stop grace, SIGKILL.
    """
    from engine.runtime import STOP_GRACE_SECONDS

    context = multiprocessing.get_context("fork")
    get_database(app).engine.dispose(close=False)  # children open their own connections
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def start() -> tuple[Any, float]:
        child = context.Process(target=_worker_child, args=(app,), name="hookcast-worker")
        child.start()
        return child, time.monotonic()

    children = [start() for _ in range(processes)]
    try:
        while not stop.wait(0.5):
            for slot, (child, started) in enumerate(children):
                if child.is_alive() or time.monotonic() - started < RESTART_DELAY_SECONDS:
                    continue
                logger.warning(
                    "worker process %d exited (%s); starting another", child.pid, child.exitcode
                )
                _forget_process_metrics(child.pid)
                children[slot] = start()
    finally:
        for child, _ in children:
            if child.is_alive():
                os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS + 5
        for child, _ in children:
            child.join(max(deadline - time.monotonic(), 0.1))
            if child.is_alive():
                child.kill()
                child.join()


def _worker_child(app: Flask) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until the runtime sets its own handler
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _run_engine_until_signal(app, None)


@cli.group()
def workspace() -> None:
    """Workspaces (tenants)."""


@workspace.command("create")
@click.argument("name")
@friendly_errors
def workspace_create(name: str) -> None:
    """Create a workspace and print its id."""
    with opened_app() as app, get_database(app).transaction() as session:
        created = accounts.create_workspace(session, name)
        click.echo(created.id)


@cli.group()
def user() -> None:
    """Builder users."""


@user.command("create")
@click.argument("email")
@click.option("--workspace", "workspace_id", required=True, help="Workspace id.")
@click.option(
    "--role", type=click.Choice(["owner", "editor", "viewer"]), default="owner", show_default=True
)
@click.option("--password", help="Prompted for when omitted (at a terminal).")
@friendly_errors
def user_create(email: str, workspace_id: str, role: str, password: str | None) -> None:
    """Create a user (or add an existing one) as a member of a workspace."""
    with opened_app() as app, get_database(app).transaction() as session:
        if accounts.get_workspace(session, workspace_id) is None:
            raise CommandError(f"no workspace with id {workspace_id}")
        existing = accounts.get_user_by_email(session, email)
        if existing is None:
            if password is None:
                if not sys.stdin.isatty():
                    raise CommandError("--password is required when not at a terminal")
                password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
            if len(password) < MIN_PASSWORD_LENGTH:
                raise CommandError(
                    f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
                )
            existing = accounts.create_user(
                session, email=email, password_hash=hash_password(password)
            )
        elif password is not None:
            raise CommandError(
                f"{existing.email} already exists; its password was not changed "
                "(use `hookcast user set-password`)"
            )
        before = accounts.get_membership(session, user_id=existing.id, workspace_id=workspace_id)
        accounts.set_membership(session, user_id=existing.id, workspace_id=workspace_id, role=role)
        if before is None or before.role != role:
            kind, what = (
                ("member.added", f"added {existing.email} as {role}")
                if before is None
                else ("member.role_changed", f"changed {existing.email} to {role}")
            )
            activity.record(
                session,
                workspace_id,
                CLI_ACTOR,
                kind,
                what,
                object_type="user",
                object_id=existing.id,
            )
        click.echo(f"{existing.email} is {role} of {workspace_id}")


def _new_password(password: str | None) -> str:
    """``--password``, or one asked for twice at a terminal; at least the minimum length."""
    if password is None:
        if not sys.stdin.isatty():
            raise CommandError("--password is required when not at a terminal")
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CommandError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


@user.command("set-password")
@click.argument("email")
@click.option("--password", help="Prompted for when omitted (at a terminal).")
@friendly_errors
def user_set_password(email: str, password: str | None) -> None:
    """Set a user's password; every session of theirs ends and sign-in is unlocked."""
    with opened_app() as app, get_database(app).transaction() as session:
        found = accounts.get_user_by_email(session, email)
        if found is None:
            raise CommandError(f"no user with email {email.strip().lower()}")
        accounts.set_password_hash(session, found, hash_password(_new_password(password)))
        ended = login_sessions.end_all_of_user(session, found.id)
        login_throttle.clear_account(session, found.email)
        activity.record_for_user(
            session,
            found,
            "password.changed",
            f"set a new password for {found.email}; {ended} sessions ended",
            actor=CLI_ACTOR,
        )
        click.echo(f"password of {found.email} changed; {ended} sessions ended")


@cli.group("api-key")
def api_key() -> None:
    """API keys for the REST API."""


@api_key.command("create")
@click.option("--workspace", "workspace_id", required=True, help="Workspace id.")
@click.option("--name", default="", help="A label to recognise the key by.")
@click.option(
    "--scope",
    type=click.Choice(["full", "events"]),
    default="full",
    show_default=True,
    help="events: only POST /events and contact writes.",
)
@friendly_errors
def api_key_create(workspace_id: str, name: str, scope: str) -> None:
    """Create an API key and print it alone on stdout (it is shown only this once)."""
    with opened_app() as app, get_database(app).transaction() as session:
        created = accounts.create_api_key(
            session, workspace_id=workspace_id, name=name, scope=scope
        )
        record = created.record
        activity.record(
            session,
            workspace_id,
            CLI_ACTOR,
            "api_key.created",
            f"created API key {record.name or record.prefix + '…'} (scope {scope})",
            object_type="api_key",
            object_id=record.id,
        )
        click.echo(created.key)


def main() -> None:
    cli(prog_name="hookcast")
