"""Hard wall-clock deadlines for blocking socket work.

Socket timeouts bound each ``recv``, not a whole exchange: a server that sends one byte
just before every timeout keeps a request alive forever. An :class:`AttemptDeadline` knows
the socket an attempt is using; a :class:`DeadlineWatch` thread shuts that socket down when
the deadline passes, which wakes the blocked thread with an error or end-of-file at once.
One watch thread serves every attempt of a transport; deadlines sit in a heap, and the
thread only wakes for the earliest one.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from typing import Any


class AttemptDeadline:
    """One attempt's deadline (``time.monotonic`` seconds) and the socket it is using."""

    def __init__(self, deadline: float, *, context: Any = None) -> None:
        self.deadline = deadline
        self.context = context  # whatever the attempt's code needs to find again
        self.expired = False
        self.finished = False
        self.remote_address: str | None = None
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._fd = -1

    def remaining(self) -> float:
        """Seconds left; raises ``TimeoutError`` when none are."""
        left = self.deadline - time.monotonic()
        if left <= 0 or self.expired:
            raise TimeoutError("the deadline has passed")
        return left

    def watch_socket(self, sock: socket.socket) -> None:
        """Shut ``sock`` down if the deadline passes while the attempt is still running."""
        with self._lock:
            if self.finished:
                return
            self._socket = sock
            self._fd = sock.fileno()
            if self.expired:
                _shutdown(sock, self._fd)

    def expire(self) -> None:
        """Called by the watch when the deadline passes."""
        with self._lock:
            if self.finished:
                return
            self.expired = True
            if self._socket is not None:
                _shutdown(self._socket, self._fd)

    def finish(self) -> None:
        """The attempt is over: never touch its socket again."""
        with self._lock:
            self.finished = True
            self._socket = None
            self._fd = -1


def _shutdown(sock: socket.socket, fd: int) -> None:
    # The base-class method, so an SSLSocket is shut down at the TCP level at once.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
        return
    except OSError:
        pass
    if sock.fileno() == -1 and fd >= 0:
        # Detached while a TLS handshake wraps it: the descriptor lives on in the wrapper.
        try:
            borrowed = socket.socket(fileno=fd)
        except OSError:
            return
        try:
            borrowed.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            borrowed.detach()


class DeadlineWatch:
    """A daemon thread that expires attempts whose deadline has passed."""

    def __init__(self, name: str = "hookcast-deadlines") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, AttemptDeadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def watch(self, attempt: AttemptDeadline) -> None:
        """Expire ``attempt`` at its deadline unless it finishes first."""
        with self._cond:
            if self._stopped:
                raise RuntimeError("the deadline watch is stopped")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (attempt.deadline, next(self._order), attempt))
            if earliest is None or attempt.deadline < earliest:
                self._cond.notify()

    def stop(self) -> None:
        """Stop the thread; attempts still running lose their deadline enforcement."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)[2].expire()
