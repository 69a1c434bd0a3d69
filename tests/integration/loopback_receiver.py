"""A real HTTP receiver on 127.0.0.1 for delivery tests: records requests, answers as told.

Runs a ``ThreadingHTTPServer`` in a thread (or ``python -m tests.integration.loopback_receiver
PORT_FILE`` as a separate process that answers 200 and appends each ``webhook-id`` to a
file, for crash tests).
"""

from __future__ import annotations

import contextlib
import socket
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


class Blackhole:
    """A loopback endpoint that accepts connections and never answers, until ``answer()``.

    Counts the connections it was sent (``accepted``) and the most that were open at once
    (``peak``); once answering, it replies 200 to every request on a new connection.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.accepted = 0
        self.open = 0
        self.peak = 0
        self._answering = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._socket = socket.create_server((host, 0))
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def answer(self) -> None:
        self._answering.set()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            with self._lock:
                self.accepted += 1
                self.open += 1
                self.peak = max(self.peak, self.open)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(0.2)
        answering = self._answering.is_set()
        received = b""
        try:
            while not self._closed.is_set():
                try:
                    chunk = connection.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break  # the client gave up (its timeout)
                received += chunk
                if answering and b"\r\n\r\n" in received:
                    connection.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    )
                    break
        except OSError:
            pass
        finally:
            connection.close()
            with self._lock:
                self.open -= 1

    def close(self) -> None:
        self._closed.set()
        self._socket.close()


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
