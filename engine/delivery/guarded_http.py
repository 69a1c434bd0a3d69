"""The guarded connection under ``requests``: resolve, check, connect to what was checked.

urllib3 would resolve a host name itself when it opens a socket, leaving a gap between
any check we made and the address it connects to (DNS rebinding). Here the connection
classes resolve the host once (or read the literal address), refuse the connection if any
address is not allowed by the private-network guard, and connect to a checked address,
while urllib3 keeps the host name for the Host header, TLS SNI and certificate checks.

Connections are only opened inside :func:`sending`, which names the attempt (its guard
and deadline) for the current thread; ``engine.delivery.transport`` is the only user.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from engine.delivery.deadline import AttemptDeadline
from engine.netguard import IPAddress, IPNetwork, is_address_allowed, parse_host_literal

# The error codes of SPEC §5 that the HTTP edge produces.
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
DNS_ERROR = "dns_error"
TLS_ERROR = "tls_error"
HTTP_STATUS = "http_status"
SSRF_BLOCKED = "ssrf_blocked"
RESPONSE_TOO_LARGE = "response_too_large"
ERROR_CODES = (
    TIMEOUT,
    CONNECTION_ERROR,
    DNS_ERROR,
    TLS_ERROR,
    HTTP_STATUS,
    SSRF_BLOCKED,
    RESPONSE_TOO_LARGE,
)
Resolver = Callable[[str, int], list[IPAddress]]
#: Name lookups that may be waiting for the resolver at once, across all hosts (each runs on
#: a thread of its own until the system resolver answers or gives up).
MAX_PENDING_LOOKUPS = 256


class SendRefused(Exception):
    """Raised inside the connection code: the attempt ends with ``code``.

    Deliberately not an ``OSError`` so urllib3 and requests let it through unwrapped.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def default_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host``, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


class _Lookup:
    """One name lookup in progress; every attempt that needs the name waits on it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.addresses: list[IPAddress] = []
        self.error: BaseException | None = None


class Guard:
    """Resolves a host and lets through only addresses the guard allows."""

    def __init__(self, allowed_networks: Iterable[IPNetwork], resolver: Resolver) -> None:
        self.allowed_networks = tuple(allowed_networks)
        self.resolver = resolver
        self._pending: dict[tuple[str, int], _Lookup] = {}
        self._lock = threading.Lock()

    def addresses_for(self, host: str, port: int, *, timeout: float) -> list[IPAddress]:
        """The checked addresses of ``host``, resolved within ``timeout`` seconds."""
        literal = parse_host_literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            resolved = self._resolve(host, port, timeout)
            addresses = list(dict.fromkeys(ipaddress.ip_address(a) for a in resolved))
            if not addresses:
                raise SendRefused(DNS_ERROR, f"{host} resolves to no address")
        for address in addresses:
            if not is_address_allowed(address, self.allowed_networks):
                where = f"{host} resolves to {address}" if literal is None else f"{address}"
                raise SendRefused(
                    SSRF_BLOCKED,
                    f"{where}: a private or reserved address, refused by the private-network "
                    "guard (ALLOWED_NETWORKS can exempt it)",
                )
        return addresses

    def _resolve(self, host: str, port: int, timeout: float) -> list[IPAddress]:
        """The resolver's answer, waited for at most ``timeout`` seconds.

        ``getaddrinfo`` cannot be interrupted, so each lookup runs on a daemon thread of its
        own and the attempt stops waiting at its deadline: a DNS server that never answers
        costs the attempt its timeout, not a sender thread. Attempts that need a name being
        looked up share that lookup, so a hanging name holds one thread however many sends
        it has; and a process can always exit (daemon threads are not waited for).
        """
        key = (host, port)
        with self._lock:
            lookup = self._pending.get(key)
            if lookup is None:
                if len(self._pending) >= MAX_PENDING_LOOKUPS:
                    raise SendRefused(
                        DNS_ERROR, "too many name lookups are waiting for the resolver"
                    )
                lookup = self._pending[key] = _Lookup()
                threading.Thread(
                    target=self._look_up, args=(key, lookup), name="hookcast-dns", daemon=True
                ).start()
        if not lookup.done.wait(max(timeout, 0.0)):
            raise SendRefused(TIMEOUT, f"resolving {host} took longer than the timeout")
        error = lookup.error
        if isinstance(error, OSError | UnicodeError):
            raise SendRefused(DNS_ERROR, f"could not resolve {host}: {plain_reason(error)}")
        if error is not None:
            raise error  # a resolver bug: reported as unexpected by the transport
        return lookup.addresses

    def _look_up(self, key: tuple[str, int], lookup: _Lookup) -> None:
        try:
            lookup.addresses = list(self.resolver(*key))
        except Exception as exc:  # handed to every attempt waiting for this lookup
            lookup.error = exc
        finally:
            with self._lock:
                if self._pending.get(key) is lookup:
                    del self._pending[key]
            lookup.done.set()


# The attempt being sent on this thread; the connection classes below read it.
_current = threading.local()


@contextlib.contextmanager
def sending(attempt: AttemptDeadline) -> Iterator[None]:
    """Let connections opened on this thread serve ``attempt`` (its ``context`` is a Guard)."""
    _current.attempt = attempt
    try:
        yield
    finally:
        _current.attempt = None


def _current_attempt() -> AttemptDeadline:
    attempt = getattr(_current, "attempt", None)
    if attempt is None:
        raise SendRefused(SSRF_BLOCKED, "connections are only made by Transport.send")
    return attempt


class GuardedConnectionMixin:
    """Connects to the guard-checked address instead of letting urllib3 resolve the host."""

    host: str
    port: int
    sock: socket.socket | None
    socket_options: list[tuple[int, int, int | bytes]] | None
    remote_address: str | None = None  # the checked address this connection was opened to

    def _new_conn(self) -> socket.socket:
        attempt = _current_attempt()
        guard: Guard = attempt.context
        failures = []
        for address in guard.addresses_for(self.host, self.port, timeout=attempt.remaining()):
            target = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
            target = target or address
            family = socket.AF_INET if target.version == 4 else socket.AF_INET6
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                attempt.watch_socket(sock)
                sock.settimeout(attempt.remaining())
                sock.connect((str(target), self.port))
            except OSError as exc:
                sock.close()
                if isinstance(exc, TimeoutError) or attempt.expired:
                    raise SendRefused(
                        TIMEOUT, f"connecting to {target} port {self.port} timed out"
                    ) from exc
                failures.append(f"{target} port {self.port}: {plain_reason(exc)}")
                continue
            except BaseException:
                sock.close()
                raise
            attempt.remote_address = self.remote_address = str(target)
            return sock
        raise SendRefused(CONNECTION_ERROR, "could not connect to " + "; ".join(failures))

    def connect(self) -> None:
        try:
            super().connect()  # type: ignore[misc]
        finally:
            attempt = getattr(_current, "attempt", None)
            if self.sock is not None and attempt is not None:
                attempt.watch_socket(self.sock)  # the TLS-wrapped socket, once there is one

    def request(self, *args: object, **kwargs: object) -> None:
        if self.sock is not None:  # a kept-alive connection: watch it for this attempt
            attempt = _current_attempt()
            attempt.watch_socket(self.sock)
            attempt.remote_address = self.remote_address
        super().request(*args, **kwargs)  # type: ignore[misc]


class GuardedHTTPConnection(GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose pools only make guarded connections and never use proxies."""

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPPool,
            "https": GuardedHTTPSPool,
        }

    def proxy_manager_for(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        raise SendRefused(SSRF_BLOCKED, "proxies are not used for webhooks")


def plain_reason(exc: BaseException) -> str:
    """A short human reason: the OS error text without errno numbers or class names."""
    if isinstance(exc, socket.gaierror):
        return (exc.strerror or "name resolution failed").lower()
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc.args[0]) if exc.args else str(exc)
    return text[:200] or "unknown reason"
