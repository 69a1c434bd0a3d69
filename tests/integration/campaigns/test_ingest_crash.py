"""A ``hookcast web`` process killed (SIGKILL) while single events pour in never leaves an
event answered 202 without its rows: every answered event and its notification are stored.

Real processes: the web server on this test's database, clients over loopback HTTP.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select

from engine.store.models import Event, Notification
from tests.conftest import ApiClient
from tests.integration.campaign_factories import event_campaign
from tests.integration.delivery.test_crash import HOOKCAST, hookcast_environment


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_killed_mid_load_every_event_answered_202_is_stored(
    api: ApiClient, db: Any, database_url: str, tmp_path: Path
) -> None:
    event_campaign(api, ["lead.*"])
    port = _free_port()
    environment = hookcast_environment(database_url, tmp_path)
    web = subprocess.Popen(
        [HOOKCAST, "web", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_up(url)
    answered: dict[str, str] = {}  # client id -> stored event id, for each 202
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = api.workspace.headers["Authorization"]
            n = 0
            while not stop.is_set():
                body = {
                    "name": "lead.created",
                    "id": f"c{number}-{n}",
                    "contact": {"external_id": f"contact-{number}-{n % 7}"},
                }
                n += 1
                try:
                    answer = session.post(f"{url}/api/v1/events", json=body, timeout=10)
                except requests.RequestException:
                    return  # the server is gone
                if answer.status_code == 202:
                    with lock:
                        answered[body["id"]] = answer.json()["events"][0]["id"]

    clients = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for thread in clients:
        thread.start()
    deadline = time.monotonic() + 20
    while len(answered) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    web.send_signal(signal.SIGKILL)
    web.wait()
    stop.set()
    for thread in clients:
        thread.join(15)

    assert len(answered) >= 200
    with db.session() as session:
        stored = dict(session.execute(select(Event.client_id, Event.id)).all())
        notified = set(session.scalars(select(Notification.event_id)))
    assert {cid: stored.get(cid) for cid in answered} == answered
    assert set(answered.values()) <= notified
    assert set(stored.values()) <= notified  # none half-written: every event has its notification


def _wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")
