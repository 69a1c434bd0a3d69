"""The HTTP edge: one attempt of one webhook request, and what came of it.

``Transport.send`` never raises for anything the network or the endpoint does; it returns
an :class:`AttemptOutcome` with one of the error codes of SPEC §5. Decisions:

- **Deadline.** ``timeout`` is one wall-clock budget for resolving the connection,
  connecting, TLS, sending and reading the status line and headers. A watchdog thread shuts
  the socket down when it runs out, so a server that trickles bytes cannot stretch it.
  Name lookups run on threads of their own (``getaddrinfo`` cannot be interrupted), shared
  by the attempts that need the same name; an attempt stops waiting at its deadline.
- **Success** is a 2xx status line and headers within the deadline. The body is then read
  up to ``max_response_bytes`` while time remains; a longer body, or one cut off by the
  deadline or a dropped connection, is kept in part and flagged ``response_truncated`` —
  the status still decides, so an endpoint that accepted a message is not sent it again.
- **No redirects**: a 3xx is an ``http_status`` failure whose message names the Location.
- ``response_too_large`` is used when the status line or headers exceed what we read
  (a line over 64 KiB, more than 100 headers); an over-long *body* is only truncated.
- **Private-network guard**: each new connection resolves the host itself (or takes the
  literal address, in any spelling ``netguard.parse_host_literal`` knows), refuses the send
  with ``ssrf_blocked`` if *any* resolved address is not allowed (a name that mixes public
  and private answers is the DNS-rebinding pattern), and connects to the checked addresses
  only (``engine.delivery.guarded_http``). The Host header, TLS SNI and certificate check keep the
  original host name. Proxy and certificate settings from the environment are ignored:
  requests are prepared here and handed to the session's adapter, never through
  ``Session.send`` (which reads the environment, cookies and redirects).
- **Headers**: the transport sets ``User-Agent: Hookcast/<version>`` and owns the framing
  headers (Host, Content-Length, Transfer-Encoding, Connection); the caller's values for
  those are dropped. Signing is the caller's: ``engine.delivery.signing.webhook_headers``.
  Cookies set by endpoints are never stored or sent back. No compression is asked for
  (``Accept-Encoding: identity``), so the recorded body is what came over the wire.
- **Threads**: ``send`` is thread-safe; each thread gets its own pooled ``requests.Session``
  (keep-alive per endpoint host).
"""

from __future__ import annotations

import http.client
import logging
import re
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from importlib import metadata

import requests
import requests.exceptions
import urllib3.exceptions

from engine.delivery.deadline import AttemptDeadline, DeadlineWatch
from engine.delivery.guarded_http import (
    CONNECTION_ERROR,
    DNS_ERROR,
    ERROR_CODES,
    HTTP_STATUS,
    RESPONSE_TOO_LARGE,
    SSRF_BLOCKED,
    TIMEOUT,
    TLS_ERROR,
    Guard,
    GuardedAdapter,
    Resolver,
    SendRefused,
    default_resolver,
    plain_reason,
    sending,
)
from engine.netguard import IPNetwork

__all__ = [
    "CONNECTION_ERROR",
    "DNS_ERROR",
    "ERROR_CODES",
    "HTTP_STATUS",
    "RESPONSE_TOO_LARGE",
    "SSRF_BLOCKED",
    "TIMEOUT",
    "TLS_ERROR",
    "AttemptOutcome",
    "OutgoingRequest",
    "Transport",
    "default_resolver",
    "parse_retry_after",
]

RETRY_AFTER_CAP_SECONDS = 86400
_READ_CHUNK = 16384
_TRANSPORT_OWNED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "user-agent"}
)

logger = logging.getLogger(__name__)


def _package_version() -> str:
    try:
        return metadata.version("hookcast")
    except metadata.PackageNotFoundError:
        return "0"


DEFAULT_USER_AGENT = f"Hookcast/{_package_version()}"


@dataclass(frozen=True)
class OutgoingRequest:
    """A fully rendered request, ready for the wire."""

    method: str
    url: str
    headers: Sequence[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt did: timing, the response if any, and the error code if it failed."""

    started_at: datetime
    duration_ms: int
    status_code: int | None
    response_headers: dict[str, str] | None
    response_body: bytes | None
    response_truncated: bool
    error_code: str | None
    error_message: str | None
    retry_after: float | None
    remote_address: str | None = None  # the IP actually connected to, when known

    @property
    def delivered(self) -> bool:
        return (
            self.error_code is None
            and self.status_code is not None
            and (200 <= self.status_code < 300)
        )


class Transport:
    """Sends :class:`OutgoingRequest` objects under the private-network guard."""

    def __init__(
        self,
        *,
        allowed_networks: Iterable[IPNetwork] = (),
        user_agent: str = DEFAULT_USER_AGENT,
        max_response_bytes: int = 65536,
        resolver: Resolver | None = None,
    ) -> None:
        self._guard = Guard(allowed_networks, resolver or default_resolver)
        self.user_agent = user_agent
        self.max_response_bytes = max_response_bytes
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._watch = DeadlineWatch()
        self._closed = False

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every thread's connections and stop the deadline watchdog."""
        with self._lock:
            self._closed = True
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._watch.stop()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()  # only its mounted adapter (the pools) is used
            adapter = GuardedAdapter(pool_connections=64, pool_maxsize=2, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            with self._lock:
                if self._closed:
                    session.close()
                    raise RuntimeError("the transport is closed")
                self._sessions.append(session)
            self._local.session = session
        return session

    def send(self, request: OutgoingRequest, *, timeout: float) -> AttemptOutcome:
        """Make one attempt within ``timeout`` seconds; never raises for network trouble."""
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        if self._closed:
            raise RuntimeError("the transport is closed")
        started_at = datetime.now(UTC)
        started = time.monotonic()
        attempt = AttemptDeadline(started + timeout, context=self._guard)
        session = self._session()
        self._watch.watch(attempt)
        try:
            with sending(attempt):
                fields = self._exchange(session, request, attempt)
        except Exception as exc:  # classified into an error code below, never re-raised
            if not isinstance(exc, _EXPECTED_ERRORS):
                logger.exception("unexpected error while sending to %s", request.url)
            code, message = _classify(exc, attempt, timeout)
            fields = _failure(code, message)
        finally:
            attempt.finish()
        return AttemptOutcome(
            started_at=started_at,
            duration_ms=round((time.monotonic() - started) * 1000),
            remote_address=attempt.remote_address,
            **fields,
        )

    def _exchange(
        self, session: requests.Session, request: OutgoingRequest, attempt: AttemptDeadline
    ) -> dict[str, object]:
        # requests' own preparation (URL parsing, IDNA and quoting, header validation, body
        # framing), handed straight to the session's adapter: ``Session.send`` would only add
        # what a webhook never wants (cookies, redirects, hooks, environment settings) at a
        # cost comparable to the whole HTTP exchange on a fast endpoint.
        prepared = requests.PreparedRequest()
        prepared.prepare_method(request.method)
        prepared.url = _prepared_url(request.url)
        prepared.prepare_headers(self._headers(request.headers))
        prepared.prepare_body(request.body or None, None)
        remaining = attempt.remaining()
        response = session.get_adapter(prepared.url).send(
            prepared, stream=True, timeout=(remaining, remaining), verify=True, proxies={}
        )
        if attempt.expired:  # the deadline cut the headers short; what parsed is not a response
            response.close()
            raise TimeoutError("the deadline passed while reading the response headers")
        body, truncated = self._read_body(response, attempt)
        status = response.status_code
        headers = dict(response.headers)
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        error_code = error_message = None
        if not 200 <= status < 300:
            error_code = HTTP_STATUS
            error_message = f"the endpoint answered {status} {response.reason or ''}".rstrip()
            if 300 <= status < 400:
                location = response.headers.get("Location", "")[:200]
                error_message += "; redirects are not followed"
                if location:
                    error_message += f" (Location: {location})"
        return {
            "status_code": status,
            "response_headers": headers,
            "response_body": body,
            "response_truncated": truncated,
            "error_code": error_code,
            "error_message": error_message,
            "retry_after": retry_after,
        }

    def _headers(self, pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
        headers: dict[str, str] = {}
        names: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            if key in _TRANSPORT_OWNED_HEADERS:
                continue
            if key in names:
                headers[names[key]] += ", " + value
            else:
                names[key] = name
                headers[name] = value
        headers["User-Agent"] = self.user_agent
        if "accept" not in names:
            headers["Accept"] = "*/*"
        return headers

    def _read_body(
        self, response: requests.Response, attempt: AttemptDeadline
    ) -> tuple[bytes, bool]:
        """Up to ``max_response_bytes`` of the body, and whether anything was left unread."""
        limit = self.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        complete = False
        try:
            while size <= limit and not attempt.expired:
                chunk = response.raw.read(min(_READ_CHUNK, limit + 1 - size))
                if not chunk:
                    complete = not attempt.expired
                    break
                chunks.append(chunk)
                size += len(chunk)
        except Exception:  # cut off by the deadline or the peer: keep what arrived
            complete = False
        body = b"".join(chunks)
        if complete:
            response.raw.release_conn()  # fully read: the connection stays alive
        else:
            response.close()
        return body[:limit], not complete or size > limit


@lru_cache(maxsize=4096)
def _prepared_url(url: str) -> str:
    """The URL as requests sends it (parsed, IDNA-encoded, quoted). A campaign's sends mostly
    share a URL, and preparing it costs more than signing the request; a URL that cannot be
    prepared raises (and is not cached)."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url


# What the network, the endpoint or a bad URL can raise; anything else is a bug, and logged.
_EXPECTED_ERRORS = (
    SendRefused,
    OSError,
    ValueError,
    http.client.HTTPException,
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
)


def _failure(code: str, message: str) -> dict[str, object]:
    return {
        "status_code": None,
        "response_headers": None,
        "response_body": None,
        "response_truncated": False,
        "error_code": code,
        "error_message": message,
        "retry_after": None,
    }


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or HTTP-date), capped at 24 h."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        seconds = float(int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), float(RETRY_AFTER_CAP_SECONDS))


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (causes, contexts, urllib3 reasons, nested args)."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen or len(seen) > 20:
            continue
        seen.add(id(current))
        yield current
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        inner.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend(e for e in inner if isinstance(e, BaseException))


def _classify(exc: Exception, attempt: AttemptDeadline, timeout: float) -> tuple[str, str]:
    """The SPEC §5 error code and a plain-words message for an exception from a send."""
    if attempt.expired:
        return TIMEOUT, f"no response within the {timeout:g} s timeout"
    chain = list(_exception_chain(exc))
    for error in chain:
        if isinstance(error, SendRefused):
            return error.code, error.message
    for error in chain:
        if isinstance(error, ssl.SSLCertVerificationError):
            return TLS_ERROR, f"TLS certificate not accepted: {error.verify_message}"
        if isinstance(error, ssl.SSLError | ssl.CertificateError):
            return TLS_ERROR, f"TLS handshake failed: {plain_reason(error)}"
    for error in chain:
        if isinstance(error, TimeoutError | urllib3.exceptions.TimeoutError):
            return TIMEOUT, f"no response within the {timeout:g} s timeout"
    for error in chain:
        if isinstance(error, http.client.LineTooLong):
            return RESPONSE_TOO_LARGE, "the response's status line or a header is too long"
        if isinstance(error, http.client.HTTPException) and "more than" in str(error):
            return RESPONSE_TOO_LARGE, "the response has too many headers"
        if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
            return CONNECTION_ERROR, f"the URL cannot be used: {plain_reason(error)}"
        if isinstance(error, UnicodeEncodeError):
            return CONNECTION_ERROR, "a header contains characters that HTTP cannot carry"
        if isinstance(error, requests.exceptions.InvalidHeader | ValueError):
            return CONNECTION_ERROR, f"the request cannot be sent: {plain_reason(error)}"
        if isinstance(error, http.client.RemoteDisconnected):
            return CONNECTION_ERROR, "the endpoint closed the connection without a response"
        if isinstance(error, http.client.BadStatusLine):
            return CONNECTION_ERROR, "the endpoint did not answer with HTTP"
        if isinstance(error, ConnectionResetError):
            return CONNECTION_ERROR, "the endpoint reset the connection"
        if isinstance(error, OSError) and error.errno is not None:
            return CONNECTION_ERROR, f"connection failed: {plain_reason(error)}"
    return CONNECTION_ERROR, "the connection to the endpoint failed"
