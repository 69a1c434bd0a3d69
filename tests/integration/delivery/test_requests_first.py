"""``hookcast serve``: while the process answers requests its delivery worker spaces its
cycles (requests first), yet still delivers everything; with none, it cycles at once."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from engine.delivery import worker as worker_module
from engine.delivery.transport import Transport
from engine.delivery.worker import REQUESTS_FIRST_CYCLE_SECONDS, Worker
from engine.netguard import parse_networks
from tests.integration import factories
from tests.integration.delivery.test_delivery import wait_for
from tests.integration.delivery.test_worker import statuses
from web.serving import RequestsInFlight


def _deliver_while(db: Any, workspace: Any, receiver: Any, answering: bool) -> list[float]:
    """Deliver 30 notifications, 10 at a time so that it takes several cycles; the start
    time of each of the worker's cycles."""
    starts: list[float] = []
    transport = Transport(allowed_networks=parse_networks("127.0.0.0/8"))
    worker = Worker(
        db, transport, threads=2, poll_interval=0.2, answering_requests=lambda: answering
    )
    cycle = worker._cycle

    def timed_cycle(room: int) -> None:  # records, then runs the real cycle
        if not worker._stopping:  # (stopping settles what is left at once)
            starts.append(time.monotonic())
        cycle(room)

    worker._cycle = timed_cycle  # type: ignore[method-assign]
    ids: list[str] = []
    worker.start()
    try:
        for _ in range(3):
            ids += factories.make_notifications(db, workspace.id, receiver.url(), 10)[1]
            wanted = {"delivered": len(ids)}
            wait_for(lambda: statuses(db, ids) == wanted)  # noqa: B023 - waited for at once
    finally:
        worker.stop(5)
        transport.close()
    return starts


def test_cycles_are_spaced_while_requests_are_answered_and_all_is_delivered(
    db: Any, workspace: Any, receiver: Any
) -> None:
    starts = _deliver_while(db, workspace, receiver, answering=True)

    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert len(starts) >= 3
    assert min(gaps) >= REQUESTS_FIRST_CYCLE_SECONDS * 0.99


def test_without_requests_cycles_are_not_held_back(
    db: Any, workspace: Any, receiver: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(worker_module, "REQUESTS_FIRST_CYCLE_SECONDS", 60.0)

    starts = _deliver_while(db, workspace, receiver, answering=False)  # would take minutes

    assert len(starts) >= 3


def test_requests_in_flight_are_counted_until_answered() -> None:
    seen: list[bool] = []
    release = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        release.wait(5)
        start_response("200 OK", [])
        return [b"ok"]

    counted = RequestsInFlight(app)
    thread = threading.Thread(target=counted, args=({}, lambda *_: None))
    thread.start()
    wait_for(counted.answering, timeout=5)
    seen.append(counted.answering())
    release.set()
    thread.join(5)
    seen.append(counted.answering())

    assert seen == [True, False]
