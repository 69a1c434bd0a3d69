"""The login throttle holds across web processes: two ``hookcast web`` on one PostgreSQL
database, failures spread over both, and both refuse the right password afterwards."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from engine.store import Database, login_throttle
from tests.conftest import (
    TEST_ENCRYPTION_KEY,
    TEST_PASSWORD,
    _truncate_postgres,
    make_workspace,
)

HOOKCAST = str(Path(sys.executable).with_name("hookcast"))
LIMIT = login_throttle.ThrottlePolicy().limits["pair"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def two_web_processes(postgres_database: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    _truncate_postgres(postgres_database)
    database = Database(postgres_database)
    email = make_workspace(database).owner_email
    database.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKCAST_")}
    env.update(
        HOOKCAST_INSTANCE_PATH=str(tmp_path / "instance"),
        HOOKCAST_DATABASE_URL=postgres_database,
        HOOKCAST_SECRET_KEY="shared-secret-key",
        HOOKCAST_ENCRYPTION_KEY=TEST_ENCRYPTION_KEY,
    )
    urls, processes = [], []
    for n in range(2):
        port = _free_port()
        with (tmp_path / f"web{n}.log").open("w") as log:
            processes.append(
                subprocess.Popen(
                    [HOOKCAST, "web", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, process in zip(urls, processes, strict=True):
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, (tmp_path / "web0.log").read_text()
                try:
                    if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "hookcast web did not start"
                time.sleep(0.2)
        yield urls[0], urls[1], email
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_failures_on_two_web_processes_add_up(two_web_processes: tuple[str, str, str]) -> None:
    first, second, email = two_web_processes
    browser = requests.Session()
    page = browser.get(f"{first}/login", timeout=10).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def attempt(url: str, password: str) -> requests.Response:
        return browser.post(
            f"{url}/login",
            data={"csrf_token": token, "email": email, "password": password},
            allow_redirects=False,
            timeout=10,
        )

    statuses = [attempt((first, second)[n % 2], "wrong password").status_code for n in range(LIMIT)]
    assert statuses == [401] * (LIMIT - 1) + [429]
    for url in (first, second):
        right = attempt(url, TEST_PASSWORD)
        assert right.status_code == 429
        assert int(right.headers["Retry-After"]) > 0
