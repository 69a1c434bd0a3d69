"""Browser-test fixtures: a real ``hookcast serve`` on loopback, Chromium, a receiver.

- ``live_server``: a fresh instance directory, ``hookcast init``, a workspace, an owner and
  an API key made with the CLI, and ``hookcast serve`` on a free loopback port (one per
  test module). Gives ``url``, ``api_key``, ``workspace_id``, ``owner_email``,
  ``owner_password`` and ``api(method, path, json)`` for REST calls.
- ``browser_page``: a Playwright page in a fresh context (1280 x 900), Debian's Chromium.
- ``receiver``: pytest-httpserver on 127.0.0.1 (webhooks are sent only to loopback).

The whole directory is skipped, with the reason, where ``/usr/bin/chromium`` or Playwright
is missing (``apt-get install chromium``; ``./dev test`` installs it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
OWNER_PASSWORD = "browser-test-password"
HOOKCAST = str(Path(sys.executable).with_name("hookcast"))
SERVER_START_SECONDS = 30

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if sync_playwright is None:
        reason = "playwright is not installed (pip install playwright)"
    elif not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium; ./dev test installs it)"
    if reason is None:
        return
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class LiveServer:
    url: str
    api_key: str
    workspace_id: str
    owner_email: str
    owner_password: str
    log_path: Path

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One REST call with the workspace's key: ``(status, parsed JSON or None)``."""
        response = requests.request(
            method,
            f"{self.url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=15,
        )
        return response.status_code, response.json() if response.content else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKCAST_")}
    env.update(
        HOOKCAST_INSTANCE_PATH=str(instance),
        HOOKCAST_REQUIRE_HTTPS="0",
        HOOKCAST_ALLOWED_NETWORKS="127.0.0.0/8",
        HOOKCAST_SENDER_THREADS="4",
    )
    return env


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [HOOKCAST, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"hookcast {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout.strip()


def _wait_until_up(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"hookcast serve exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    pytest.fail(
        f"hookcast serve did not answer within {SERVER_START_SECONDS} s:\n{log_path.read_text()}"
    )


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("live")
    env = _server_env(root / "instance")
    _cli(env, "init")
    workspace_id = _cli(env, "workspace", "create", "Browser Co").split()[-1]
    email = "owner@browser.test"
    _cli(
        env,
        "user",
        "create",
        email,
        "--workspace",
        workspace_id,
        "--role",
        "owner",
        "--password",
        OWNER_PASSWORD,
    )
    api_key = _cli(env, "api-key", "create", "--workspace", workspace_id, "--name", "browser")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = root / "serve.log"
    with serving(env, port, log_path):
        yield LiveServer(url, api_key, workspace_id, email, OWNER_PASSWORD, log_path)


@contextmanager
def serving(env: dict[str, str], port: int, log_path: Path) -> Iterator[None]:
    """``hookcast serve`` on 127.0.0.1:``port`` (its output in ``log_path``) until the block
    ends, once it answers."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [HOOKCAST, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(f"http://127.0.0.1:{port}", process, log_path)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def browser_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver on IPv4 loopback (not ``localhost``, which may be ::1)."""
    return ("127.0.0.1", 0)


@pytest.fixture
def receiver(httpserver: Any) -> Any:
    """A real HTTP receiver on loopback: ``receiver.url_for("/hook")``, ``.log``."""
    return httpserver


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def log_in(
    page: Page, server: LiveServer, email: str | None = None, password: str | None = None
) -> None:
    """Log in through the real form and land on the campaigns list."""
    page.goto(f"{server.url}/login")
    page.fill("input[name=email]", email or server.owner_email)
    page.fill("input[name=password]", password or server.owner_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/campaigns")
