"""Delivery benchmark: throughput against a bare requests loop, wake-up latency, isolation.

Run: ``.venv/bin/python bench/bench_delivery.py [--postgres URL] [--count 5000]
[--processes 2]``. Receivers run as a separate process (a ThreadingHTTPServer on 127.0.0.1
answering 200 at once, and one on 127.0.0.2 that stalls every request for 10 s).
Everything is measured in this run; ratios compare against the bare loop measured against
the same receiver. Throughput is measured for one worker process and for ``--processes``
forked ones (``hookcast worker --processes N``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratch import database_kinds, scratch_database  # bench/scratch.py

from engine import crypto
from engine.campaigns.ingest import IncomingEvent, ingest_and_commit
from engine.delivery.transport import Transport
from engine.delivery.worker import Worker
from engine.netguard import parse_networks
from engine.store import Database, accounts
from engine.store.models import Notification
from tests.integration import factories

THREADS = int(os.environ.get("BENCH_SENDER_THREADS", "64"))
STALL_SECONDS = 10
#: How often the throughput runs count settled notifications (the end is seen at most this
#: late; each count costs the process it runs in CPU the single worker process then lacks).
POLL_SECONDS = 0.05


# -- receivers (separate process) -------------------------------------------------------------


def _receiver_main(ports: multiprocessing.Queue) -> None:
    arrivals: list[tuple[str, float]] = []
    lock = threading.Lock()

    class Fast(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.time()
            msg_id = self.headers.get("webhook-id")
            if msg_id:
                with lock:
                    arrivals.append((msg_id, now))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self) -> None:  # /arrivals: hand over and forget what was recorded
            with lock:
                body = json.dumps(arrivals).encode()
                arrivals.clear()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Stalling(Fast):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(STALL_SECONDS)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    fast = ThreadingHTTPServer(("127.0.0.1", 0), Fast)
    stall = ThreadingHTTPServer(("127.0.0.2", 0), Stalling)
    for server in (fast, stall):
        server.daemon_threads = True
        server.request_queue_size = 128
    threading.Thread(target=stall.serve_forever, daemon=True).start()
    ports.put((fast.server_address[1], stall.server_address[1]))
    fast.serve_forever()


def arrivals(port: int) -> dict[str, float]:
    return dict(requests.get(f"http://127.0.0.1:{port}/arrivals", timeout=10).json())


# -- databases --------------------------------------------------------------------------------


def setup_campaign(database: Database, url: str, **overrides: object) -> tuple[str, str, str]:
    with database.transaction() as session:
        workspace = accounts.create_workspace(session, "Bench")
        campaign = factories.make_campaign(session, workspace.id, url, **overrides)
        contact = factories.make_contact(session, workspace.id)
        return workspace.id, campaign.id, contact.id


def ingest(database: Database, workspace_id: str, count: int) -> list[str]:
    """``count`` notifications made as the product makes them: events ingested in batches
    of 1,000, each matching the campaign once (rendered, secrets encrypted per batch)."""
    ids: list[str] = []
    for start in range(0, count, 1000):
        events = [
            IncomingEvent(name="test.created", external_id=f"lead-{n}", properties={"n": n})
            for n in range(start, min(count, start + 1000))
        ]
        with database.session(write=True) as session:
            results = ingest_and_commit(
                session, workspace_id, events, settings=factories.TEST_RENDER_SETTINGS
            )
        ids.extend(nid for result in results for nid in result.notifications)
    assert len(ids) == count
    return ids


def wait_until_settled(database: Database, campaign_id: str, count: int) -> None:
    """Return once ``count`` of the campaign's notifications are settled.

    One connection held for the wait and a plain SQL count every ``POLL_SECONDS``: the
    measured worker may share this process, and an ORM session per poll cost it ~2 ms of
    CPU each on PostgreSQL.
    """
    settled = text(
        "SELECT count(*) FROM notifications"
        " WHERE campaign_id = :campaign AND status IN ('delivered', 'failed')"
    )
    with database.engine.connect() as connection:
        while True:
            done = connection.execute(settled, {"campaign": campaign_id}).scalar_one()
            connection.rollback()  # the next count sees what was committed since
            if done >= count:
                return
            time.sleep(POLL_SECONDS)


def new_worker(database: Database, threads: int = THREADS) -> tuple[Worker, Transport]:
    transport = Transport(allowed_networks=parse_networks("127.0.0.0/8"))
    worker = Worker(database, transport, threads=threads, poll_interval=1.0)
    return worker, transport


# -- measurements -----------------------------------------------------------------------------


def bare_loop(port: int, database: Database, ids: list[str]) -> float:
    """Requests per second of one requests.Session posting the same bodies, one by one."""
    with database.session() as session:
        bodies = [
            r.request["body"].encode()
            for r in session.scalars(select(Notification).where(Notification.id.in_(ids)))
        ]
    url = f"http://127.0.0.1:{port}/hook"
    with requests.Session() as http:
        started = time.perf_counter()
        for body in bodies:
            response = http.post(url, data=body, headers={"Content-Type": "application/json"})
            response.content  # noqa: B018
        elapsed = time.perf_counter() - started
    arrivals(port)
    return len(bodies) / elapsed


def throughput(
    database: Database, port: int, count: int, processes: int = 1
) -> tuple[float, list[str]]:
    """Deliveries per second of one worker process, or of ``processes`` forked ones (what
    ``hookcast worker --processes N`` runs); their start-up is part of the time."""
    workspace_id, campaign_id, _ = setup_campaign(database, f"http://127.0.0.1:{port}/hook")
    ids = ingest(database, workspace_id, count)
    started = time.perf_counter()
    if processes == 1:
        worker, transport = new_worker(database)
        worker.start()
        wait_until_settled(database, campaign_id, count)
        elapsed = time.perf_counter() - started
        worker.stop(5)
        transport.close()
    else:
        context = multiprocessing.get_context("fork")
        database.dispose()  # the children open their own connections
        stop = context.Event()
        url = database.url.render_as_string(hide_password=False)
        children = [
            context.Process(target=_worker_process, args=(url, stop)) for _ in range(processes)
        ]
        for child in children:
            child.start()
        wait_until_settled(database, campaign_id, count)
        elapsed = time.perf_counter() - started
        stop.set()
        for child in children:
            child.join()
    got = arrivals(port)
    assert len(set(got) & set(ids)) == count, "not every notification arrived"
    return count / elapsed, ids


def _worker_process(url: str, stop: object) -> None:
    database = Database(url)
    worker, transport = new_worker(database)
    worker.start()
    stop.wait()  # type: ignore[attr-defined]
    worker.stop(5)
    transport.close()
    database.dispose()


def paced_latency(
    database: Database, port: int, rate: float, seconds: float, stall_url: str | None
) -> list[float]:
    """Latency (ms) from the creating commit to the receiver, at ``rate`` per second.

    With ``stall_url``, every fifth transaction also creates a notification for the stalling
    endpoint (20 per second at 100/s). It joins the healthy one's transaction, so both runs
    make the same writes at the same moments and differ only in the stalled endpoint: a
    separate write right after each healthy commit delays its claim on SQLite (one writer)
    whatever the second endpoint does, as a fast second endpoint showed.
    """
    _, campaign_id, contact_id = setup_campaign(database, f"http://127.0.0.1:{port}/hook")
    stall = None
    if stall_url:
        _, stall_campaign, stall_contact = setup_campaign(
            database, stall_url, channel_overrides={"timeout_seconds": 15}
        )
        stall = (stall_campaign, stall_contact)
    worker, transport = new_worker(database)
    worker.start()
    created: dict[str, float] = {}
    total = int(rate * seconds)
    next_at = time.perf_counter()
    for n in range(total):
        also = stall if stall and n % 5 == 0 else None
        nid = create_announced(database, (campaign_id, contact_id), also)
        created[nid] = time.time()
        next_at += 1 / rate
        time.sleep(max(0.0, next_at - time.perf_counter()))
    deadline = time.monotonic() + 30
    got: dict[str, float] = {}
    while len(got) < total and time.monotonic() < deadline:
        got.update(arrivals(port))
        time.sleep(0.1)
    worker.stop(0.5)
    transport.close()
    return [(got[i] - created[i]) * 1000 for i in created if i in got]


def create_announced(
    database: Database, target: tuple[str, str], also: tuple[str, str] | None
) -> str:
    """Create a notification for ``target`` (campaign id, contact id), and one for ``also``
    in the same transaction, announced at commit; return the first one's id."""
    from engine.store import wakeups
    from engine.store.models import Campaign, Contact

    with database.transaction() as session:
        made = []
        for campaign_id, contact_id in filter(None, (target, also)):
            campaign = session.get(Campaign, campaign_id)
            contact = session.get(Contact, contact_id)
            made.append(factories.make_notification(session, campaign, contact, announce=False))
        wakeups.announce_new_notifications(session)
    return made[0].id


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=os.environ.get("HOOKCAST_TEST_POSTGRES_URL"))
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    crypto.configure_encryption(crypto.generate_key())

    ports: multiprocessing.Queue = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=_receiver_main, args=(ports,), daemon=True)
    receiver.start()
    port, stall_port = ports.get(timeout=10)
    stall_url = f"http://127.0.0.2:{stall_port}/hook"

    if args.postgres:
        os.environ["HOOKCAST_BENCH_POSTGRES_URL"] = args.postgres  # where scratch.py makes them
    rows = []
    for kind in database_kinds():
        with scratch_database(kind) as url:
            database = Database(url)
            try:
                rate, ids = throughput(database, port, args.count)
                bare = bare_loop(port, database, ids)
                unloaded = paced_latency(database, port, args.rate, args.seconds, None)
                stalled = paced_latency(database, port, args.rate, args.seconds, stall_url)
                scaled, _ = throughput(database, port, args.count, processes=args.processes)
            finally:
                database.dispose()
        rows.append((kind, rate, bare, unloaded, stalled, scaled))
        print(f"[{kind}] done", file=sys.stderr)

    print(f"\nDelivery benchmark ({os.cpu_count()} cores, SENDER_THREADS={THREADS})")
    scaled_label = f"{args.processes} procs/s"
    header = (
        f"{'db':9} {'deliveries/s':>12} {'bare loop/s':>11} {'ratio':>6} "
        f"{scaled_label:>12} {'ratio':>6} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'stall p50':>9} {'stall p99':>9} {'p99 ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    for kind, rate, bare, unloaded, stalled, scaled in rows:
        print(
            f"{kind:9} {rate:12.0f} {bare:11.0f} {rate / bare:6.2f} "
            f"{scaled:12.0f} {scaled / bare:6.2f} "
            f"{statistics.median(unloaded):7.1f} {pct(unloaded, 0.99):7.1f} "
            f"{statistics.median(stalled):9.1f} {pct(stalled, 0.99):9.1f} "
            f"{pct(stalled, 0.99) / pct(unloaded, 0.99):9.2f}"
        )
    print(
        f"\ndeliveries/s: one worker process; '{scaled_label}': {args.processes} forked worker "
        f"processes sharing the outbox (hookcast worker --processes {args.processes})."
    )
    print(
        "\nlatency: commit of a new notification -> arrival at the receiver, "
        f"{args.rate:.0f}/s for {args.seconds:.0f} s; 'stall': the same while another "
        f"endpoint (127.0.0.2) stalls every request for {STALL_SECONDS} s (20 new/s)."
    )
    receiver.terminate()


if __name__ == "__main__":
    main()
