"""Delivery against hostile receivers: dead hosts, a slow endpoint, a rate limit, a crash.

Run: ``.venv/bin/python bench/bench_endpoints.py [--postgres URL]`` (``./dev bench`` runs it
with the others). Each scenario states its target and prints PASS or MISS; every figure is
measured in this run against receivers in a separate process on loopback:

1. **Dead hosts**: 10 endpoints on 127.0.0.41 to .50 accept connections and never answer (30
   notifications each, ``timeout_seconds`` 30) while a healthy endpoint gets 10 new
   notifications a second; its event-to-arrival p99 stays within 2x its p99 measured
   without the dead hosts, or under 100 ms.
2. **Slow endpoint**: answers after 1 s, ``max_concurrency`` 20, 200 notifications:
   at least 15 deliveries a second.
3. **Rate limit**: ``{"requests": 10, "per": "second"}``, 120 notifications, two worker
   processes: no 1-second window holds more than 11 requests and the overall rate is
   within 10% of 10/s.
4. **Crash**: a worker process is SIGKILLed mid-run over 3,000 notifications and another
   finishes the work: nothing lost, at most ``SENDER_THREADS`` sent twice.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_delivery import create_announced, ingest, new_worker, pct, setup_campaign
from scratch import database_kinds, scratch_database  # bench/scratch.py

from engine import crypto
from engine.store import Database

THREADS = int(os.environ.get("BENCH_SENDER_THREADS", "64"))
DEAD_HOSTS = [f"127.0.0.{n}" for n in range(41, 51)]


# -- receivers (separate process) -------------------------------------------------------------


def _receiver_main(ports: multiprocessing.Queue) -> None:
    """A recording endpoint, a slow one (1 s) and dead ones (accept, never answer)."""
    arrivals: list[tuple[str, float]] = []
    lock = threading.Lock()

    class Recording(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        delay = 0.0

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.delay:
                time.sleep(self.delay)
            with lock:
                arrivals.append((self.headers.get("webhook-id") or "", time.time()))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self) -> None:  # hand over and forget what was recorded
            with lock:
                body = json.dumps(arrivals).encode()
                arrivals.clear()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Slow(Recording):
        delay = 1.0

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Recording)]
    servers.append(ThreadingHTTPServer(("127.0.0.1", 0), Slow))
    for server in servers:
        server.daemon_threads = True
        server.request_queue_size = 256
        server.handle_error = lambda *_args: None  # a killed worker hangs up: expected
        threading.Thread(target=server.serve_forever, daemon=True).start()
    held: list[socket.socket] = []
    dead_ports = []
    for host in DEAD_HOSTS:
        listener = socket.create_server((host, 0), backlog=256)
        dead_ports.append(listener.getsockname()[1])

        def hold(listener: socket.socket = listener) -> None:
            while True:
                connection, _ = listener.accept()
                held.append(connection)  # never read, never answered

        threading.Thread(target=hold, daemon=True).start()
    ports.put(([s.server_address[1] for s in servers], dead_ports))
    threading.Event().wait()


def arrivals(port: int) -> list[tuple[str, float]]:
    return [tuple(a) for a in requests.get(f"http://127.0.0.1:{port}/", timeout=10).json()]


# -- workers ----------------------------------------------------------------------------------


def _worker_process(url: str, stop: object) -> None:
    database = Database(url)
    worker, transport = new_worker(database, threads=THREADS)
    worker.start()
    stop.wait()  # type: ignore[attr-defined]
    worker.stop(1)
    transport.close()
    database.dispose()


def start_workers(database: Database, count: int) -> tuple[object, list]:
    context = multiprocessing.get_context("fork")
    database.dispose()  # the children open their own connections
    stop = context.Event()
    url = database.url.render_as_string(hide_password=False)
    children = [context.Process(target=_worker_process, args=(url, stop)) for _ in range(count)]
    for child in children:
        child.start()
    return stop, children


def stop_workers(stop: object, children: list) -> None:
    stop.set()  # type: ignore[attr-defined]
    for child in children:
        child.join(20)
        if child.is_alive():
            child.kill()


def settled(database: Database, campaign_id: str) -> int:
    with database.engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM notifications"
                " WHERE campaign_id = :c AND status IN ('delivered', 'failed')"
            ),
            {"c": campaign_id},
        ).scalar_one()


def wait_settled(database: Database, campaign_id: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while settled(database, campaign_id) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{campaign_id}: not settled in {timeout:.0f} s")
        time.sleep(0.1)


# -- scenarios --------------------------------------------------------------------------------


def healthy_latency(
    database: Database, port: int, seconds: float, dead_ports: list[int] | None
) -> list[float]:
    """Event-to-arrival latency (ms) of a healthy endpoint at 10 new notifications a second,
    with or without dead hosts holding 300 notifications (created first)."""
    _, campaign_id, contact_id = setup_campaign(database, f"http://127.0.0.1:{port}/hook")
    worker, transport = new_worker(database, threads=THREADS)
    worker.start()
    for host, dead_port in zip(DEAD_HOSTS, dead_ports or (), strict=False):
        workspace_id, _, _ = setup_campaign(
            database,
            f"http://{host}:{dead_port}/hook",
            channel_overrides={"timeout_seconds": 30},
        )
        ingest(database, workspace_id, 30)
    created: dict[str, float] = {}
    next_at = time.perf_counter()
    for _ in range(int(10 * seconds)):
        created[create_announced(database, (campaign_id, contact_id), None)] = time.time()
        next_at += 0.1
        time.sleep(max(0.0, next_at - time.perf_counter()))
    deadline = time.monotonic() + 30
    got: dict[str, float] = {}
    while len(got) < len(created) and time.monotonic() < deadline:
        got.update(arrivals(port))
        time.sleep(0.1)
    worker.stop(0.5)
    transport.close()
    return [(got[i] - created[i]) * 1000 for i in created if i in got]


def slow_endpoint(database: Database, port: int) -> float:
    workspace_id, campaign_id, _ = setup_campaign(
        database,
        f"http://127.0.0.1:{port}/hook",
        channel_overrides={"max_concurrency": 20, "timeout_seconds": 10},
    )
    ingest(database, workspace_id, 200)
    worker, transport = new_worker(database, threads=THREADS)
    started = time.perf_counter()
    worker.start()
    wait_settled(database, campaign_id, 200, timeout=120)
    elapsed = time.perf_counter() - started
    worker.stop(1)
    transport.close()
    arrivals(port)
    return 200 / elapsed


def rate_limited(database: Database, port: int, processes: int) -> tuple[int, float]:
    workspace_id, campaign_id, _ = setup_campaign(
        database,
        f"http://127.0.0.1:{port}/hook",
        channel_overrides={"rate_limit": {"requests": 10, "per": "second"}},
    )
    ingest(database, workspace_id, 120)
    arrivals(port)
    stop, children = start_workers(database, processes)
    wait_settled(database, campaign_id, 120, timeout=60)
    stop_workers(stop, children)
    times = sorted(moment for _, moment in arrivals(port))
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most, (len(times) - 1) / (times[-1] - times[0])


def crash(database: Database, port: int) -> tuple[int, int, int]:
    """(sent twice, lost, sent before the kill) after SIGKILL of a worker mid-run."""
    workspace_id, campaign_id, _ = setup_campaign(
        database, f"http://127.0.0.1:{port}/hook", channel_overrides={"timeout_seconds": 2}
    )
    ids = set(ingest(database, workspace_id, 3000))
    arrivals(port)
    stop, children = start_workers(database, 1)
    while settled(database, campaign_id) < 800:
        time.sleep(0.01)
    os.kill(children[0].pid, signal.SIGKILL)
    children[0].join()
    before = settled(database, campaign_id)
    stop, children = start_workers(database, 1)
    wait_settled(database, campaign_id, 3000, timeout=120)
    stop_workers(stop, children)
    counts = Counter(msg_id for msg_id, _ in arrivals(port))
    twice = sum(1 for msg_id, n in counts.items() if n > 1 and msg_id in ids)
    return twice, len(ids - set(counts)), before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=os.environ.get("HOOKCAST_TEST_POSTGRES_URL"))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="scenarios: dead slow rate crash")
    args = parser.parse_args()
    crypto.configure_encryption(crypto.generate_key())
    ports: multiprocessing.Queue = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=_receiver_main, args=(ports,), daemon=True)
    receiver.start()
    (port, slow_port), dead_ports = ports.get(timeout=10)
    if args.postgres:
        os.environ["HOOKCAST_BENCH_POSTGRES_URL"] = args.postgres

    results = []
    for kind in database_kinds():
        row: dict[str, object] = {"db": kind}
        for name, run in (
            ("unloaded", lambda db: healthy_latency(db, port, args.seconds, None)),
            ("dead", lambda db: healthy_latency(db, port, args.seconds, dead_ports)),
            ("slow", lambda db: slow_endpoint(db, slow_port)),
            ("rate", lambda db: rate_limited(db, port, args.processes)),
            ("crash", lambda db: crash(db, port)),
        ):
            if args.only and name.replace("unloaded", "dead") not in args.only:
                continue
            with scratch_database(kind) as url:
                database = Database(url)
                try:
                    row[name] = run(database)
                finally:
                    database.dispose()
            print(f"[{kind}] {name} done", file=sys.stderr)
        results.append(row)

    print(f"\nEndpoints benchmark ({os.cpu_count()} cores, SENDER_THREADS={THREADS})")
    for row in results:
        print(f"\n[{row['db']}]")
        if "dead" in row:
            report_dead(row)
        if "slow" in row:
            report_slow(row)
        if "rate" in row:
            report_rate(row, args.processes)
        if "crash" in row:
            report_crash(row)
    receiver.terminate()


def report_dead(row: dict) -> None:
    unloaded, dead = row["unloaded"], row["dead"]
    p99, dead_p99 = pct(unloaded, 0.99), pct(dead, 0.99)
    ok = dead_p99 <= max(2 * p99, 100.0)
    print(
        f"  dead hosts   healthy p50/p99 {pct(unloaded, 0.5):.1f}/{p99:.1f} ms alone, "
        f"{pct(dead, 0.5):.1f}/{dead_p99:.1f} ms beside 10 dead hosts "
        f"(p99 ratio {dead_p99 / p99:.2f})  {'PASS' if ok else 'MISS'}"
    )


def report_slow(row: dict) -> None:
    slow = row["slow"]
    print(
        f"  slow         {slow:.1f} deliveries/s at 1 s each, max_concurrency 20 "
        f"(target >= 15)  {'PASS' if slow >= 15 else 'MISS'}"
    )


def report_rate(row: dict, processes: int) -> None:
    most, rate = row["rate"]
    ok = most <= 11 and abs(rate - 10) <= 1
    print(
        f"  rate limit   10/s over {processes} worker processes: busiest second "
        f"{most}, overall {rate:.2f}/s  {'PASS' if ok else 'MISS'}"
    )


def report_crash(row: dict) -> None:
    twice, lost, before = row["crash"]
    ok = twice <= THREADS and lost == 0
    print(
        f"  crash        SIGKILL after {before} of 3000 settled: {twice} sent twice, "
        f"{lost} lost (target <= {THREADS}, 0)  {'PASS' if ok else 'MISS'}"
    )


if __name__ == "__main__":
    main()
