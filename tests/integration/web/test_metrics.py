"""Prometheus metrics, read back with prometheus_client's own parser after real deliveries
to loopback receivers: ``GET /metrics`` on the app, and a ``hookcast worker --processes 2
--metrics-port`` whose forked processes' counters add up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from engine.store.models import Campaign, Notification
from engine.store.types import utcnow
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.integration import factories
from tests.integration.delivery.test_crash import HOOKCAST, start_worker, stop, wait_until
from tests.integration.delivery.test_delivery import running_worker
from tests.integration.loopback_receiver import Receiver, Reply
from web.cli import cli

TOKEN = "scrape-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "METRICS_TOKEN": TOKEN}


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (sample name, sorted labels) → value."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> dict:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    return parse(response.get_data(as_text=True))


def routed_receiver() -> Receiver:
    """200 on /ok, 500 anywhere else."""
    return Receiver(lambda request: Reply(200 if request.path == "/ok" else 500))


def test_metrics_is_off_without_a_token_and_refuses_a_wrong_one(app, client) -> None:
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.get_json()["error"]["code"] == "unauthorized"
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    app.config["METRICS_TOKEN"] = ""
    assert client.get("/metrics", headers=AUTH).status_code == 404


def test_counters_match_what_was_delivered_and_gauges_read_the_outbox(db, api, client) -> None:
    receiver = routed_receiver()
    try:
        factories.event_campaign(
            api, ["lead.*"], name="delivers", webhook=factories.webhook(receiver.url("/ok"))
        )
        factories.event_campaign(
            api,
            ["lead.*"],
            name="fails",
            webhook=factories.webhook(receiver.url("/fail"), retry={"policy": "none"}),
        )
        retrying = factories.event_campaign(
            api,
            ["lead.*"],
            name="retries",
            webhook=factories.webhook(
                receiver.url("/later"), retry={"schedule": [3600], "max_attempts": 3}
            ),
        )
        before = scrape(client)
        events = [
            {"name": "lead.create", "id": f"evt-{n}", "contact": {"external_id": f"c{n}"}}
            for n in range(4)
        ]
        assert api.post("/events", json={"events": events}).status_code == 202
        # the same client ids again: accepted, nothing new stored, nothing counted
        assert api.post("/events", json={"events": events[:2]}).status_code == 202
        with running_worker(db):
            wait_until(lambda: len(receiver.requests) >= 12, timeout=30)
            wait_until(lambda: open_count(db, "sending", "pending") == 0, timeout=30)
        after = scrape(client)
    finally:
        receiver.close()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("hookcast_events_ingested_total") == 4
    assert delta("hookcast_deliveries_total", outcome="delivered") == 4
    assert delta("hookcast_deliveries_total", outcome="failed") == 4
    assert delta("hookcast_deliveries_total", outcome="retrying") == 4
    assert delta("hookcast_attempt_duration_seconds_count") == 12
    assert delta("hookcast_attempt_duration_seconds_sum") > 0
    assert value(after, "hookcast_outbox_due") == 0  # the retries are an hour away
    assert value(after, "hookcast_outbox_oldest_due_age_seconds") == 0
    assert value(after, "hookcast_endpoints_disabled") == 0
    assert value(after, "hookcast_database_up") == 1
    # no label carries an id: the only labels are the bounded outcome (and histogram buckets)
    labels = {key for name, pairs in after for key, _ in pairs if name.startswith("hookcast_")}
    assert labels <= {"outcome", "le"}

    # gauges are read at scrape time: the retries fall due a minute ago, an endpoint is disabled
    with db.transaction() as session:
        session.execute(
            update(Notification)
            .where(Notification.campaign_id == retrying["id"])
            .values(next_attempt_at=utcnow() - timedelta(seconds=60))
        )
        session.execute(
            update(Campaign).where(Campaign.id == retrying["id"]).values(webhook_disabled=True)
        )
    later = scrape(client)
    assert value(later, "hookcast_outbox_due") == 4
    assert 60 <= value(later, "hookcast_outbox_oldest_due_age_seconds") < 120
    assert value(later, "hookcast_endpoints_disabled") == 1


def open_count(db, *statuses: str) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).where(Notification.status.in_(statuses)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_scrape(port: int, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}/metrics", headers=headers or AUTH, timeout=10)


@pytest.mark.slow
def test_a_worker_with_processes_serves_the_sum_of_its_processes(
    db, workspace, database_url: str, tmp_path: Path, monkeypatch
) -> None:
    receiver = Receiver(lambda _request: Reply(200))
    port = free_port()
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "config.py").write_text(f"METRICS_TOKEN = {TOKEN!r}\n")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    worker: subprocess.Popen[bytes] | None = None
    try:
        _, ids = factories.make_notifications(db, workspace.id, receiver.url(), 40)
        worker = start_worker(
            database_url, tmp_path, "--processes", "2", "--metrics-port", str(port)
        )
        wait_until(lambda: delivered(db, ids) == len(ids))
        samples: dict = {}

        def settled_counted() -> bool:  # counted just after each settling commit
            nonlocal samples
            try:
                response = worker_scrape(port)
            except requests.ConnectionError:
                return False
            samples = parse(response.text)
            return value(samples, "hookcast_deliveries_total", outcome="delivered") >= 40

        wait_until(settled_counted, timeout=20)
        time.sleep(0.5)  # nothing more may come
        samples = parse(worker_scrape(port).text)
        assert value(samples, "hookcast_deliveries_total", outcome="delivered") == 40
        assert value(samples, "hookcast_deliveries_total", outcome="failed") == 0
        assert value(samples, "hookcast_attempt_duration_seconds_count") == 40
        assert value(samples, "hookcast_outbox_due") == 0
        assert worker_scrape(port, {"Authorization": "Bearer wrong"}).status_code == 401
        assert requests.get(f"http://127.0.0.1:{port}/other", timeout=10).status_code == 404
    finally:
        receiver.close()
        log = stop(worker) if worker is not None else ""
    assert "Traceback" not in log, log
    assert f"Metrics on http://127.0.0.1:{port}/metrics" in log


def delivered(db, ids: list[str]) -> int:
    with db.session() as session:
        return session.scalar(
            select(func.count()).where(Notification.id.in_(ids), Notification.status == "delivered")
        )


def test_the_worker_metrics_port_refuses_a_taken_address(runner, root_logging) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(cli, ["worker", "--metrics-port", str(port)])
    assert result.exit_code == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.output


@pytest.mark.slow
def test_web_with_gunicorn_workers_counts_across_them_and_logs_json(
    workspace, database_url: str, tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "config.py").write_text(
        f"METRICS_TOKEN = {TOKEN!r}\nLOG_FORMAT = 'json'\n"
    )
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOOKCAST_")},
        "HOOKCAST_DATABASE_URL": database_url,
        "HOOKCAST_SECRET_KEY": "gunicorn-test",
        "HOOKCAST_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "HOOKCAST_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    log_file = tmp_path / "web.log"
    with log_file.open("wb") as stderr:
        web = subprocess.Popen(
            [HOOKCAST, "web", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{base}/login"), timeout=60)
        for n in range(8):  # new connections: gunicorn hands them to either worker
            response = requests.post(
                f"{base}/api/v1/events",
                json={"name": "lead.create", "contact": {"external_id": f"c{n}"}},
                headers=workspace.headers,
                timeout=10,
            )
            assert response.status_code == 202, response.text
        for _ in range(4):  # whichever worker answers has the sum of both
            samples = parse(requests.get(f"{base}/metrics", headers=AUTH, timeout=10).text)
            assert value(samples, "hookcast_events_ingested_total") == 8
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=30)
    lines = log_file.read_text().strip().splitlines()
    assert any("Booting worker" in json.loads(line)["message"] for line in lines)
    assert all(json.loads(line)["level"] for line in lines)  # every line is a JSON object


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=5)
    except requests.ConnectionError:
        return False
    return True
