"""A real HTTP receiver on 127.0.0.1 for delivery tests: records requests, answers as told.

Runs a ``ThreadingHTTPServer`` in a thread (or ``python -m tests.integration.loopback_receiver
PORT_FILE`` as a separate process that answers 200 and appends each ``webhook-id`` to a
file, for crash tests).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


Responder = Callable[[ReceivedRequest], Reply]


class Receiver:
    """``Receiver(respond)`` serves on an ephemeral loopback port until ``close()``."""

    def __init__(self, respond: Responder | None = None, host: str = "127.0.0.1") -> None:
        self.respond: Responder = respond or (lambda _request: Reply())
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = ReceivedRequest(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with receiver._lock:
                    receiver.requests.append(request)
                reply = receiver.respond(request)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(reply.body)

            do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *_args: None  # clients hanging up are expected
        self.host = host
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def ids(self) -> list[str]:
        with self._lock:
            return [r.headers.get("webhook-id", "") for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _serve_recording(port_file: Path, log_file: Path) -> None:
    """Answer 200 to everything, appending each request's webhook-id to ``log_file``."""
    lock = threading.Lock()
    log = log_file.open("a", buffering=1)

    def respond(request: ReceivedRequest) -> Reply:
        with lock:
            log.write(request.headers.get("webhook-id", "") + "\n")
        return Reply()

    receiver = Receiver(respond)
    port_file.write_text(str(receiver.port))
    threading.Event().wait()


if __name__ == "__main__":
    _serve_recording(Path(sys.argv[1]), Path(sys.argv[2]))
