"""Logs: readable text by default, ``LOG_FORMAT=json`` one JSON object per line with the ids
known where a line is logged; expected operational errors log one line, not a traceback."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.store import Database, migrate
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.integration import factories
from tests.integration.delivery.test_crash import HOOKCAST, stop, wait_until
from web import create_app
from web.logconfig import JsonFormatter, configure_logging

BAD_CRON = {"type": "schedule", "cron": "61 25 * * *", "timezone": "UTC"}


def test_a_json_line_carries_time_level_logger_message_and_the_ids_known() -> None:
    record = logging.LogRecord(
        "engine.delivery.worker", logging.WARNING, __file__, 1, "sent %s", ("msg_1",), None
    )
    record.campaign_id = "cmp_1"
    record.notification_id = "msg_1"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "engine.delivery.worker"
    assert entry["message"] == "sent msg_1"
    assert entry["campaign_id"] == "cmp_1"
    assert entry["notification_id"] == "msg_1"
    assert "workspace_id" not in entry  # not known here: left out, not null
    assert entry["time"].endswith("Z")


def test_a_traceback_stays_inside_its_one_json_line(capsys, root_logging) -> None:
    configure_logging("json")
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        logging.getLogger("hookcast.test").exception("it broke")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "it broke"
    assert "RuntimeError: boom" in entry["exception"]


def test_an_unknown_log_format_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOOKCAST_INSTANCE_PATH", str(tmp_path))
    with pytest.raises(ValueError, match="LOG_FORMAT must be one of text, json"):
        create_app({"SECRET_KEY": "x", "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY, "LOG_FORMAT": "xml"})


def _worker_log(
    database_url: str, tmp_path: Path, db: Database, workspace, **env: str
) -> tuple[str, str]:
    """Run a real worker that meets a campaign with an unusable stored schedule; its stderr."""
    with db.transaction() as session:
        campaign = factories.make_campaign(session, workspace.id)
        campaign.trigger_type, campaign.trigger = "schedule", BAD_CRON
        campaign_id = campaign.id
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    (instance / "config.py").write_text("".join(f"{k} = {v!r}\n" for k, v in env.items()))
    log_file = tmp_path / "worker.log"
    with log_file.open("wb") as stderr:
        worker = subprocess.Popen(
            [HOOKCAST, "worker"],
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("HOOKCAST_")},
                "HOOKCAST_DATABASE_URL": database_url,
                "HOOKCAST_SECRET_KEY": "log-test",
                "HOOKCAST_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
                "HOOKCAST_INSTANCE_PATH": str(instance),
            },
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:  # the schedule tick runs as the worker starts
        wait_until(lambda: campaign_id in log_file.read_text(), timeout=60)
    finally:
        stop(worker)
    log = log_file.read_text()
    assert campaign_id in log, log
    return log, campaign_id


@pytest.mark.slow
def test_a_worker_logs_json_lines_with_ids_and_no_traceback(
    db, workspace, database_url, tmp_path
) -> None:
    log, campaign_id = _worker_log(database_url, tmp_path, db, workspace, LOG_FORMAT="json")
    entries = [json.loads(line) for line in log.strip().splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries), entries
    messages = [e["message"] for e in entries]
    assert any(m.startswith("Hookcast worker started") for m in messages), messages
    unusable = [e for e in entries if "unusable schedule" in e["message"]]
    assert unusable, entries
    assert unusable[0]["level"] == "WARNING"
    assert unusable[0]["campaign_id"] == campaign_id
    assert unusable[0]["workspace_id"] == workspace.id
    assert all("exception" not in e for e in entries), entries


@pytest.mark.slow
def test_the_default_log_is_readable_text_one_line_per_problem(
    db, workspace, database_url, tmp_path
) -> None:
    log, campaign_id = _worker_log(database_url, tmp_path, db, workspace)
    assert "Traceback" not in log, log
    line = next(line for line in log.splitlines() if "unusable schedule" in line)
    assert f"WARNING engine.campaigns.schedules: campaign {campaign_id} has an unusable" in line
    assert not line.lstrip().startswith("{")


@pytest.fixture
def unreachable_app(tmp_path: Path, monkeypatch) -> Any:
    """An app whose SQLite database cannot be opened (its folder is gone)."""
    monkeypatch.setenv("HOOKCAST_INSTANCE_PATH", str(tmp_path / "instance"))
    folder = tmp_path / "db"
    folder.mkdir()
    url = f"sqlite:///{folder}/hookcast.sqlite3"
    migrate.upgrade(database := Database(url))
    database.dispose()
    app = create_app(
        {"SECRET_KEY": "x", "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY, "DATABASE_URL": url}
    )
    (folder / "hookcast.sqlite3").unlink()
    folder.rmdir()
    return app


def test_a_database_that_does_not_answer_is_a_503_and_one_log_line(unreachable_app, caplog) -> None:
    client = unreachable_app.test_client()
    with caplog.at_level(logging.WARNING):
        response = client.get("/api/v1/campaigns", headers={"Authorization": "Bearer k"})
        page = client.get("/login")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"
    assert response.headers["Retry-After"] == "5"
    assert page.status_code == 503
    records = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(records) == 1  # one line per kind of failure a minute, however many requests
    assert all(r.exc_info is None for r in records)
    assert "unable to open database file" in records[0].getMessage()
