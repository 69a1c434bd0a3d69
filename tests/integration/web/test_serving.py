"""Waitress under load (issue #14): "Task queue depth" is logged at most once a minute."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from waitress.server import create_server

from web.serving import QueueDepthWarnings, quiet_queue_warnings, waitress_options


def _slow_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_a_busy_server_warns_about_its_queue_once(caplog) -> None:
    quiet_queue_warnings()
    caplog.set_level(logging.WARNING, "waitress.queue")
    options = waitress_options("127.0.0.1", 0, threads=1)
    server = create_server(_slow_app, **options)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}/"
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: requests.get(url, timeout=30).status_code, range(48)))
    finally:
        server.close()
    assert answers == [200] * 48
    queue_lines = [r for r in caplog.records if r.name == "waitress.queue"]
    assert len(queue_lines) == 1, [r.getMessage() for r in queue_lines]
    assert queue_lines[0].getMessage().startswith("Task queue depth is")


def test_the_filter_counts_what_it_left_out() -> None:
    now = [0.0]
    gate = QueueDepthWarnings(60, clock=lambda: now[0])

    def record(depth: int) -> logging.LogRecord:
        return logging.LogRecord("waitress.queue", logging.WARNING, __file__, 1,
                                 "Task queue depth is %d", (depth,), None)  # fmt: skip

    assert gate.filter(record(1))
    assert [gate.filter(record(d)) for d in (3, 9, 2)] == [False, False, False]
    now[0] = 61
    later = record(4)
    assert gate.filter(later)
    assert later.getMessage() == (
        "Task queue depth is 4 (every request thread busy; 3 more such warnings in the last "
        "60 s left out, deepest queue 9)"
    )
    now[0] = 200
    quiet = record(1)
    assert gate.filter(quiet) and quiet.getMessage() == "Task queue depth is 1"
