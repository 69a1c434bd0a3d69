"""``hookcast db backup`` / ``db restore``: a consistent copy of a SQLite database taken while
``hookcast serve`` writes to it, and a restore that refuses while any process uses it."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
import requests

from tests.conftest import TEST_ENCRYPTION_KEY
from web.cli import cli

HOOKCAST = str(Path(sys.executable).with_name("hookcast"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Instance:
    """A Hookcast instance on a SQLite file, driven through its real command line."""

    def __init__(self, tmp_path: Path) -> None:
        self.database = tmp_path / "hookcast.sqlite3"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HOOKCAST_")},
            "HOOKCAST_INSTANCE_PATH": str(tmp_path / "instance"),
            "HOOKCAST_DATABASE_URL": f"sqlite:///{self.database}",
            "HOOKCAST_SECRET_KEY": "backup-test",
            "HOOKCAST_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [HOOKCAST, *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def start(self, *args: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        process = subprocess.Popen(
            [HOOKCAST, *args, "--port", str(port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/login", timeout=5)
                return process, base
            except requests.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    raise AssertionError(f"hookcast {args[0]} did not start") from None
                time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def events_in(path: Path) -> int:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return connection.execute("SELECT count(*) FROM events").fetchone()[0]


def check_copy(path: Path) -> int:
    """The copy opens on its own, passes the integrity check; its event count."""
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone()
        return connection.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        connection.close()


@pytest.mark.slow
def test_backup_while_serve_writes_then_restore(tmp_path: Path) -> None:
    instance = Instance(tmp_path)
    assert instance.run("init").returncode == 0
    workspace = instance.run("workspace", "create", "Backups").stdout.strip()
    key = instance.run("api-key", "create", "--workspace", workspace).stdout.strip()
    serve, base = instance.start("serve")
    writing = threading.Event()
    stop_writing = threading.Event()
    written = [0]

    def write_events() -> None:
        batch = 0
        while not stop_writing.is_set():
            events = [
                {"name": "order.paid", "contact": {"external_id": f"c{batch}-{n}"}}
                for n in range(50)
            ]
            response = requests.post(
                f"{base}/api/v1/events",
                json={"events": events},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert response.status_code == 202, response.text
            written[0] += 50
            batch += 1
            writing.set()

    writer = threading.Thread(target=write_events)
    writer.start()
    try:
        assert writing.wait(30)
        counts = []
        for n in range(3):
            copy = tmp_path / f"backup-{n}.sqlite3"
            made = instance.run("db", "backup", str(copy))
            assert made.returncode == 0, made.stderr
            assert f"Backed up to {copy}" in made.stdout
            counts.append(check_copy(copy))
        assert 0 < counts[0] <= counts[1] <= counts[2]
        assert all(count % 50 == 0 for count in counts)  # whole batches: a consistent snapshot

        refused = instance.run("db", "restore", str(tmp_path / "backup-0.sqlite3"))
        assert refused.returncode == 1
        assert "is using the database" in refused.stderr
        assert "Traceback" not in refused.stderr
    finally:
        stop_writing.set()
        writer.join()
        stop(serve)
    assert written[0] > counts[0]

    # `hookcast web` beats no heartbeat: its open connections are what give it away
    web, base = instance.start("web")
    try:
        requests.get(f"{base}/login", timeout=5)
        refused = instance.run("db", "restore", str(tmp_path / "backup-0.sqlite3"))
        assert refused.returncode == 1, refused.stdout
        assert "another process has" in refused.stderr
    finally:
        stop(web)

    before = events_in(instance.database)
    restored = instance.run("db", "restore", str(tmp_path / "backup-0.sqlite3"))
    assert restored.returncode == 0, restored.stderr
    assert events_in(instance.database) == counts[0]
    saved = list(tmp_path.glob("hookcast.sqlite3.before-restore-*"))
    assert len(saved) == 1
    assert check_copy(saved[0]) == before
    with closing(sqlite3.connect(instance.database)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # and Hookcast runs on it again
    serve, base = instance.start("serve")
    try:
        response = requests.get(
            f"{base}/api/v1/campaigns", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert response.status_code == 200, response.text
    finally:
        stop(serve)


def test_a_backup_never_overwrites_and_a_restore_wants_a_hookcast_backup(
    runner, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite backups")
    existing = tmp_path / "taken.sqlite3"
    existing.write_text("keep me")
    result = runner.invoke(cli, ["db", "backup", str(existing)])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert existing.read_text() == "keep me"

    result = runner.invoke(cli, ["db", "restore", str(existing)])
    assert result.exit_code == 1
    assert "is not a SQLite database" in result.output

    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    result = runner.invoke(cli, ["db", "restore", str(empty)])
    assert result.exit_code == 1
    assert "is not a Hookcast database" in result.output

    newer = tmp_path / "newer.sqlite3"
    assert runner.invoke(cli, ["db", "backup", str(newer)]).exit_code == 0
    with closing(sqlite3.connect(newer)) as connection, connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    result = runner.invoke(cli, ["db", "restore", str(newer)])
    assert result.exit_code == 1
    assert "schema revision 9999, which this Hookcast does not know" in result.output


def test_on_postgresql_backup_and_restore_print_the_pg_tools_command(
    runner, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL")
    result = runner.invoke(cli, ["db", "backup", str(tmp_path / "dump")])
    assert result.exit_code == 1
    assert f"pg_dump --format=custom --file {tmp_path / 'dump'} postgresql://" in result.output
    assert "+psycopg" not in result.output
    result = runner.invoke(cli, ["db", "restore", str(tmp_path / "dump")])
    assert result.exit_code == 1
    assert "pg_restore --clean --if-exists --no-owner --dbname postgresql://" in result.output
