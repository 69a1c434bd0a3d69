"""HTTP load for the single-event benchmark: servers in their own processes, a keep-alive
client of several threads, and the bare Flask endpoint every figure is compared with."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start(args: list[str], env: dict[str, str], up_url: str | None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(args, env={**os.environ, **env}, cwd=ROOT)
    if up_url:
        wait_until_up(up_url, process)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_bare_flask(port: int, threads: int) -> subprocess.Popen[bytes]:
    """A Flask app on waitress that parses the JSON body and answers 202 (the baseline)."""
    code = (
        "import sys, waitress\n"
        "from flask import Flask, request\n"
        "app = Flask('bare')\n"
        "@app.post('/api/v1/events')\n"
        "def events():\n"
        "    request.get_json()\n"
        "    return {'accepted': True}, 202\n"
        "@app.get('/healthz')\n"
        "def health():\n"
        "    return {'status': 'ok'}\n"
        f"waitress.serve(app, host='127.0.0.1', port={port}, threads={threads})\n"
    )
    return start([sys.executable, "-c", code], {}, f"http://127.0.0.1:{port}/healthz")


@dataclass
class Load:
    requests: int
    seconds: float
    latencies_ms: list[float]
    failures: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else 0.0


def load(
    url: str,
    headers: dict[str, str],
    body: Callable[[int, int], dict[str, Any]],
    *,
    clients: int = 8,
    seconds: float = 8.0,
    expect: int = 202,
) -> Load:
    """``clients`` threads, each on one keep-alive connection, POST ``body(client, n)`` to
    ``url`` back to back for ``seconds``; answers other than ``expect`` count as failures."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    go = threading.Event()
    deadline = [0.0]

    def client(index: int) -> None:
        with requests.Session() as session:
            session.headers.update(headers)
            n = 0
            go.wait()
            while time.perf_counter() < deadline[0]:
                started = time.perf_counter()
                answer = session.post(url, json=body(index, n), timeout=30)
                latencies[index].append((time.perf_counter() - started) * 1000)
                if answer.status_code != expect:
                    failures[index] += 1
                n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    go.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    flat = [value for per_client in latencies for value in per_client]
    return Load(len(flat), elapsed, flat, sum(failures))
