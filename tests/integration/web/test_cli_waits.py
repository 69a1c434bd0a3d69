"""``serve``, ``web`` and ``worker`` started before the database answers wait for it, retrying
with backoff and saying so now and then; ``init`` fails fast (issue #14)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.integration.delivery.test_crash import HOOKCAST, stop, wait_until
from web.cli import cli

UNREACHABLE_POSTGRES = "postgresql+psycopg://hookcast@127.0.0.1:1/hookcast"  # refused at once


def _start(command: list[str], database_url: str, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOOKCAST_")},
        "HOOKCAST_DATABASE_URL": database_url,
        "HOOKCAST_SECRET_KEY": "wait-test",
        "HOOKCAST_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "HOOKCAST_INSTANCE_PATH": str(tmp_path / "instance"),
        "HOOKCAST_SENDER_THREADS": "2",
    }
    log = tmp_path / f"{command[0]}.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [HOOKCAST, *command], env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    return process, log


def test_worker_waits_for_its_sqlite_database_then_starts(tmp_path: Path, sqlite_template) -> None:
    home = tmp_path / "db"  # missing: SQLite cannot open a file there yet
    process, log = _start(["worker"], f"sqlite:///{home}/hookcast.sqlite3", tmp_path)
    try:
        wait_until(lambda: "waiting for the database" in log.read_text(), timeout=30)
        time.sleep(2)
        assert process.poll() is None, log.read_text()
        ready = tmp_path / "ready"
        ready.mkdir()
        shutil.copyfile(sqlite_template, ready / "hookcast.sqlite3")
        os.rename(ready, home)  # the whole migrated database appears at once
        wait_until(lambda: "Hookcast worker started" in log.read_text(), timeout=30)
    finally:
        stop(process)
    output = log.read_text()
    assert "the database answers; starting" in output
    assert "Traceback" not in output
    assert 1 <= output.count("waiting for the database") <= 3, output


def test_web_waits_for_an_unreachable_postgresql(tmp_path: Path) -> None:
    process, log = _start(["web", "--port", "1"], UNREACHABLE_POSTGRES, tmp_path)
    try:
        wait_until(lambda: "waiting for the database" in log.read_text(), timeout=30)
        time.sleep(3)
        assert process.poll() is None, log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    output = log.read_text()
    assert "Connection refused" in output or "connection failed" in output
    assert "Traceback" not in output
    assert output.count("waiting for the database") <= 2, output


def test_init_fails_fast_when_the_database_is_away(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOOKCAST_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("HOOKCAST_DATABASE_URL", UNREACHABLE_POSTGRES)
    result = CliRunner().invoke(cli, ["init"])  # would never return if it waited
    assert result.exit_code == 1
    assert "database error" in result.output and "reachable" in result.output
