"""Worker processes killed with SIGKILL lose nothing; two workers never send twice.

These start real ``hookcast worker`` processes against the test database and a loopback
receiver that records every ``webhook-id`` it is sent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.store.models import Notification
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.integration import factories
from tests.integration.loopback_receiver import ReceivedRequest, Receiver, Reply

HOOKCAST = str(Path(sys.executable).with_name("hookcast"))


@pytest.fixture
def slow_receiver() -> Iterator[Receiver]:
    """Answers 200 after 20 ms, so a run lasts long enough to be killed in the middle."""

    def respond(_request: ReceivedRequest) -> Reply:
        time.sleep(0.02)
        return Reply()

    server = Receiver(respond)
    yield server
    server.close()


def hookcast_environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a ``hookcast`` process on the test database (none of this
    process's own ``HOOKCAST_`` settings), sending only to loopback."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOOKCAST_")},
        "HOOKCAST_DATABASE_URL": database_url,
        "HOOKCAST_SECRET_KEY": "crash-test",
        "HOOKCAST_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "HOOKCAST_REQUIRE_HTTPS": "0",
        "HOOKCAST_ALLOWED_NETWORKS": "127.0.0.0/8",
        "HOOKCAST_INSTANCE_PATH": str(tmp_path / "instance"),
        "HOOKCAST_SENDER_THREADS": "4",
    }


def start_worker(database_url: str, tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [HOOKCAST, "worker", *args],
        env=hookcast_environment(database_url, tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until(condition, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def delivered_count(db, ids) -> int:
    with db.session() as session:
        return session.scalar(
            select(func.count()).where(Notification.id.in_(ids), Notification.status == "delivered")
        )


def leased_ids(db, ids) -> set[str]:
    with db.session() as session:
        return set(
            session.scalars(
                select(Notification.id).where(
                    Notification.id.in_(ids), Notification.status == "sending"
                )
            )
        )


def stop(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr is None:
        return ""
    with process.stderr:
        return process.stderr.read().decode(errors="replace")


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_delivers_everything(
    db, workspace, slow_receiver, database_url, tmp_path
):
    _, ids = factories.make_notifications(
        db, workspace.id, slow_receiver.url(), 150, timeout_seconds=1
    )
    first = start_worker(database_url, tmp_path)
    try:
        wait_until(lambda: len(slow_receiver.requests) >= 30)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        stop(first)
    sent_before_restart = len(slow_receiver.requests)
    assert sent_before_restart < 150, "the worker finished before it could be killed"
    leased_at_kill = leased_ids(db, ids)

    second = start_worker(database_url, tmp_path)
    try:
        wait_until(lambda: delivered_count(db, ids) == 150)
    finally:
        log = stop(second)
    assert "Traceback" not in log, log
    counts = Counter(slow_receiver.ids())
    assert set(counts) == set(ids)
    # Only sends whose lease was open at the kill (sent, result never recorded) may
    # arrive twice: that is at-least-once, and the receiver deduplicates on webhook-id.
    twice = {notification_id for notification_id, n in counts.items() if n > 1}
    assert twice <= leased_at_kill
    assert all(n <= 2 for n in counts.values())
    # and of those, only sends that were really in flight: at most SENDER_THREADS (4 here),
    # since a worker commits finished attempts before it starts more sends than it has threads
    assert len(twice) <= 4


@pytest.mark.slow
def test_two_workers_share_one_outbox_without_double_sends(
    db, workspace, slow_receiver, database_url, tmp_path
):
    if not db.is_postgres:
        pytest.skip("several worker processes share one PostgreSQL database")
    workers = [start_worker(database_url, tmp_path) for _ in range(2)]
    try:
        time.sleep(1.0)  # both listening; the notifications arrive while they run
        _, ids = factories.make_notifications(db, workspace.id, slow_receiver.url(), 200)
        wait_until(lambda: delivered_count(db, ids) == 200)
    finally:
        logs = [stop(w) for w in workers]
    for log in logs:
        assert "Traceback" not in log, log
    counts = Counter(slow_receiver.ids())
    assert set(counts) == set(ids) and max(counts.values()) == 1


def children_of(pid: int) -> set[int]:
    return {int(n) for n in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


@pytest.mark.slow
def test_worker_processes_replace_a_dead_one_share_the_outbox_and_stop_together(
    db, workspace, slow_receiver, database_url, tmp_path
):
    parent = start_worker(database_url, tmp_path, "--processes", "2")
    try:
        wait_until(lambda: len(children_of(parent.pid)) == 2)
        victim = min(children_of(parent.pid))
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(children_of(parent.pid) - {victim}) == 2, timeout=20)
        time.sleep(1.0)  # the replacement is listening too
        _, ids = factories.make_notifications(db, workspace.id, slow_receiver.url(), 200)
        wait_until(lambda: delivered_count(db, ids) == 200)
        children = children_of(parent.pid)
    finally:
        log = stop(parent)
    assert parent.returncode == 0, log
    assert "Traceback" not in log, log
    assert f"worker process {victim} exited" in log
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    counts = Counter(slow_receiver.ids())
    assert set(counts) == set(ids) and max(counts.values()) == 1
