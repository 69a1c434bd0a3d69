"""The HTTP edge against real receivers on loopback.

pytest-httpserver plays well-behaved endpoints; a scripted raw-socket server plays the
misbehaving ones (stalls, trickles, giant bodies). Every packet goes to 127.0.0.0/8 or ::1:
addresses the guard must refuse are refused before any connection is attempted, and fake
host names are mapped to loopback (or to refused private addresses) by an injected resolver.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import format_datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Response

from engine.delivery.signing import generate_secret, webhook_headers
from engine.delivery.transport import (
    DEFAULT_USER_AGENT,
    OutgoingRequest,
    Transport,
    parse_retry_after,
)
from engine.netguard import parse_networks

LOOPBACK = parse_networks("127.0.0.0/8,::1/128")
QUICK = 0.5  # seconds: the timeout for tests where a server stalls


# --- receivers -------------------------------------------------------------------------


def _http_server(host: str) -> Iterator[HTTPServer]:
    server = HTTPServer(host=host, port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def _receiver_v4() -> Iterator[HTTPServer]:
    yield from _http_server("127.0.0.1")


@pytest.fixture
def receiver(_receiver_v4: HTTPServer) -> HTTPServer:
    _receiver_v4.clear()
    return _receiver_v4


@pytest.fixture(scope="module")
def _receiver_127_0_0_2() -> Iterator[HTTPServer]:
    yield from _http_server("127.0.0.2")


@pytest.fixture
def receiver_127_0_0_2(_receiver_127_0_0_2: HTTPServer) -> HTTPServer:
    _receiver_127_0_0_2.clear()
    return _receiver_127_0_0_2


@pytest.fixture(scope="module")
def _receiver_v6() -> Iterator[HTTPServer]:
    yield from _http_server("::1")


@pytest.fixture
def receiver_v6(_receiver_v6: HTTPServer) -> HTTPServer:
    _receiver_v6.clear()
    return _receiver_v6


class ScriptedServer:
    """A loopback TCP server that runs ``script(conn, server)`` for every connection."""

    def __init__(self, script: Callable[[socket.socket, ScriptedServer], None]) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.stopping = threading.Event()
        self.client_hung_up = threading.Event()
        self.threads: list[threading.Thread] = []
        self.connections: list[socket.socket] = []
        self.threads.append(threading.Thread(target=self._accept, daemon=True))
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self.connections.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.script(conn, self)
            except OSError:
                self.client_hung_up.set()

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Callable[[socket.socket, ScriptedServer], None]) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionResetError
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            while len(body) < int(value):
                body += conn.recv(65536)
    return head


def trickle(conn: socket.socket, server: ScriptedServer, head: bytes, *, pieces: int) -> None:
    """Send ``head``, then one byte every 50 ms; ends early only when the client hangs up."""
    conn.sendall(head)
    for _ in range(pieces):
        if server.stopping.wait(0.05):
            return
        conn.sendall(b"x")


# --- transports ------------------------------------------------------------------------


@pytest.fixture
def transport() -> Iterator[Transport]:
    """A transport that may reach loopback (as with ``ALLOWED_NETWORKS=127.0.0.0/8,::1``)."""
    with Transport(allowed_networks=LOOPBACK) as transport:
        yield transport


@pytest.fixture
def guarded() -> Iterator[Transport]:
    """A transport with the default guard: no private network allowed."""
    with Transport() as transport:
        yield transport


def get(url: str) -> OutgoingRequest:
    return OutgoingRequest(method="GET", url=url, headers=(), body=b"")


def post(url: str, body: bytes = b"{}", headers=()) -> OutgoingRequest:
    return OutgoingRequest(
        method="POST", url=url, headers=(("Content-Type", "application/json"), *headers), body=body
    )


def url(server: HTTPServer, path: str = "/hook") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


# --- well-behaved endpoints ------------------------------------------------------------


def test_2xx_is_delivered_with_signature_and_user_agent(transport, receiver):
    secret = generate_secret()
    body = json.dumps({"email": "zoë@example.com"}).encode()
    signed = webhook_headers(
        msg_id="msg_1", timestamp=int(time.time()), body=body, secrets=[secret]
    )
    receiver.expect_request("/hook", method="POST").respond_with_json(
        {"ok": True}, status=202, headers={"X-Receipt": "r-1"}
    )

    outcome = transport.send(
        post(url(receiver), body, signed.items()),
        timeout=5,
    )

    assert outcome.delivered
    assert (outcome.status_code, outcome.error_code, outcome.error_message) == (202, None, None)
    assert json.loads(outcome.response_body) == {"ok": True}
    assert outcome.response_headers["X-Receipt"] == "r-1"
    assert not outcome.response_truncated
    assert outcome.remote_address == "127.0.0.1"
    assert outcome.started_at.tzinfo is not None and outcome.duration_ms >= 0
    ((request, _),) = receiver.log
    assert request.headers["User-Agent"] == DEFAULT_USER_AGENT
    assert DEFAULT_USER_AGENT.startswith("Hookcast/")
    assert request.get_data() == body
    assert Webhook(secret).verify(request.get_data(), dict(request.headers)) == {
        "email": "zoë@example.com"
    }


def test_3xx_is_a_failure_and_not_followed(transport, receiver):
    receiver.expect_request("/hook").respond_with_data(
        "", status=302, headers={"Location": url(receiver, "/elsewhere")}
    )
    receiver.expect_request("/elsewhere").respond_with_data("should not be reached")

    outcome = transport.send(post(url(receiver)), timeout=5)

    assert not outcome.delivered
    assert (outcome.status_code, outcome.error_code) == (302, "http_status")
    assert "302" in outcome.error_message and "redirects are not followed" in outcome.error_message
    assert "/elsewhere" in outcome.error_message
    assert [request.path for request, _ in receiver.log] == ["/hook"]


@pytest.mark.parametrize("status", [400, 404, 410, 500, 502])
def test_non_2xx_is_an_http_status_failure(transport, receiver, status):
    receiver.expect_request("/hook").respond_with_data("nope", status=status)

    outcome = transport.send(post(url(receiver)), timeout=5)

    assert not outcome.delivered
    assert (outcome.status_code, outcome.error_code) == (status, "http_status")
    assert str(status) in outcome.error_message
    assert outcome.response_body == b"nope"
    assert outcome.retry_after is None


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds(transport, receiver, status):
    receiver.expect_request("/hook").respond_with_data(
        "slow down", status=status, headers={"Retry-After": "120"}
    )
    outcome = transport.send(post(url(receiver)), timeout=5)
    assert (outcome.error_code, outcome.retry_after) == ("http_status", 120)


def test_retry_after_as_http_date_is_capped_at_a_day(transport, receiver):
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    receiver.expect_request("/hook").respond_with_data(
        "", status=429, headers={"Retry-After": format_datetime(later, usegmt=True)}
    )
    outcome = transport.send(post(url(receiver)), timeout=5)
    assert outcome.retry_after == 86400


def test_retry_after_is_ignored_on_other_statuses(transport, receiver):
    receiver.expect_request("/hook").respond_with_data(
        "", status=500, headers={"Retry-After": "60"}
    )
    assert transport.send(post(url(receiver)), timeout=5).retry_after is None


NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0),
        ("3600", 3600),
        (" 90 ", 90),
        ("999999", 86400),
        ("Sat, 01 Mar 2025 12:02:00 GMT", 120),
        ("Sat, 01 Mar 2025 11:00:00 GMT", 0),
        ("Tue, 04 Mar 2025 12:00:00 GMT", 86400),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def test_huge_body_is_truncated_and_the_status_decides(transport, receiver):
    receiver.expect_request("/hook").respond_with_data(b"a" * (3 * 1024 * 1024), status=200)
    outcome = transport.send(post(url(receiver)), timeout=5)
    assert outcome.delivered
    assert outcome.response_truncated
    assert outcome.response_body == b"a" * 65536


def test_huge_chunked_body_is_truncated_at_the_configured_limit(receiver):
    def chunks() -> Iterator[bytes]:
        for _ in range(200):
            yield b"b" * 10000

    receiver.expect_request("/hook").respond_with_response(Response(chunks(), status=500))
    with Transport(allowed_networks=LOOPBACK, max_response_bytes=100) as transport:
        outcome = transport.send(post(url(receiver)), timeout=5)
    assert (outcome.status_code, outcome.error_code) == (500, "http_status")
    assert outcome.response_truncated and outcome.response_body == b"b" * 100


def test_body_of_exactly_the_limit_is_not_truncated(receiver):
    receiver.expect_request("/hook").respond_with_data(b"c" * 100)
    with Transport(allowed_networks=LOOPBACK, max_response_bytes=100) as transport:
        outcome = transport.send(post(url(receiver)), timeout=5)
    assert outcome.response_body == b"c" * 100 and not outcome.response_truncated


def test_keep_alive_reuses_one_connection(transport, scripted):
    answered = []

    def keep_alive(conn: socket.socket, server: ScriptedServer) -> None:
        while True:
            read_request(conn)
            answered.append(True)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server = scripted(keep_alive)
    for _ in range(3):
        outcome = transport.send(post(server.url), timeout=5)
        assert outcome.delivered and outcome.response_body == b"ok"
        assert outcome.remote_address == "127.0.0.1"  # on the reused connection too
    assert len(answered) == 3 and server.accepted == 1


def test_connection_survives_a_truncated_body(receiver):
    receiver.expect_ordered_request("/big").respond_with_data(b"x" * 5000)
    receiver.expect_ordered_request("/next").respond_with_data("fine")
    with Transport(allowed_networks=LOOPBACK, max_response_bytes=10) as transport:
        assert transport.send(get(url(receiver, "/big")), timeout=5).response_truncated
        outcome = transport.send(get(url(receiver, "/next")), timeout=5)
    assert (outcome.status_code, outcome.response_body) == (200, b"fine")


def test_cookies_are_not_sent_back(transport, receiver):
    receiver.expect_ordered_request("/hook").respond_with_data(
        "", headers={"Set-Cookie": "session=abc; Path=/"}
    )
    receiver.expect_ordered_request("/hook").respond_with_data("")
    transport.send(post(url(receiver)), timeout=5)
    transport.send(post(url(receiver)), timeout=5)
    assert "Cookie" not in receiver.log[1][0].headers


def test_transport_owns_user_agent_and_framing_headers(transport, receiver):
    receiver.expect_request("/hook").respond_with_data("")
    headers = [
        ("User-Agent", "curl/8"),
        ("Content-Length", "999"),
        ("X-Tag", "a"),
        ("x-tag", "b"),
    ]
    transport.send(post(url(receiver), b'{"a": 1}', headers), timeout=5)
    ((request, _),) = receiver.log
    assert request.headers["User-Agent"] == DEFAULT_USER_AGENT
    assert request.headers["Content-Length"] == "8"
    assert request.headers["X-Tag"] == "a, b"


def test_accept_defaults_to_anything_and_the_caller_may_set_it(transport, receiver):
    receiver.expect_ordered_request("/hook").respond_with_data("")
    receiver.expect_ordered_request("/hook").respond_with_data("")
    transport.send(post(url(receiver)), timeout=5)
    transport.send(post(url(receiver), headers=[("accept", "application/json")]), timeout=5)
    (first, _), (second, _) = receiver.log
    assert first.headers["Accept"] == "*/*"
    assert second.headers.getlist("Accept") == ["application/json"]


def test_urls_are_quoted_and_bodiless_posts_are_framed(transport, receiver):
    receiver.expect_request("/a b/é").respond_with_data("")
    request = OutgoingRequest("POST", url(receiver, "/a b/é?q=x y"), (), b"")
    assert transport.send(request, timeout=5).status_code == 200
    ((sent, _),) = receiver.log
    assert sent.environ["RAW_URI"] == "/a%20b/%C3%A9?q=x%20y"
    assert sent.headers["Content-Length"] == "0"


def test_environment_proxies_are_ignored(transport, receiver, receiver_127_0_0_2, monkeypatch):
    proxy = f"http://127.0.0.2:{receiver_127_0_0_2.port}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    receiver.expect_request("/hook").respond_with_data("direct")
    outcome = transport.send(post(url(receiver)), timeout=5)
    assert outcome.response_body == b"direct"
    assert receiver_127_0_0_2.log == []


def test_concurrent_sends_from_many_threads(transport, receiver):
    receiver.expect_request("/hook").respond_with_data("ok")
    results = []

    def send_some() -> None:
        for _ in range(5):
            results.append(transport.send(post(url(receiver)), timeout=5).delivered)

    threads = [threading.Thread(target=send_some) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 20


# --- misbehaving endpoints -------------------------------------------------------------


def test_connection_refused(transport):
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    outcome = transport.send(post(f"http://127.0.0.1:{port}/hook"), timeout=5)
    assert outcome.error_code == "connection_error"
    assert outcome.status_code is None
    assert "refused" in outcome.error_message


def test_slow_response_past_the_timeout(transport, scripted):
    def stall(conn: socket.socket, server: ScriptedServer) -> None:
        read_request(conn)
        server.stopping.wait(30)

    server = scripted(stall)
    outcome = transport.send(post(server.url), timeout=QUICK)
    assert (outcome.error_code, outcome.status_code) == ("timeout", None)
    assert "timeout" in outcome.error_message


def test_trickling_headers_cannot_stretch_the_timeout(transport, scripted):
    def slow_headers(conn: socket.socket, server: ScriptedServer) -> None:
        read_request(conn)
        trickle(conn, server, b"HTTP/1.1 200 OK\r\nX-Padding: ", pieces=600)

    server = scripted(slow_headers)
    outcome = transport.send(post(server.url), timeout=QUICK)
    assert outcome.error_code == "timeout"
    assert server.client_hung_up.wait(5)  # the client gave up long before the 30 s trickle


def test_trickling_body_is_cut_at_the_deadline_and_the_status_decides(transport, scripted):
    def slow_body(conn: socket.socket, server: ScriptedServer) -> None:
        read_request(conn)
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\nstart"
        trickle(conn, server, head, pieces=595)

    server = scripted(slow_body)
    outcome = transport.send(post(server.url), timeout=QUICK)
    assert outcome.delivered and outcome.status_code == 200
    assert outcome.response_truncated
    assert outcome.response_body.startswith(b"start") and len(outcome.response_body) < 600
    assert server.client_hung_up.wait(5)


def test_trickling_tls_handshake_cannot_stretch_the_timeout(transport, scripted):
    def slow_handshake(conn: socket.socket, server: ScriptedServer) -> None:
        conn.recv(65536)  # the ClientHello
        # A TLS record header announcing 16 KiB of handshake, then one byte at a time.
        trickle(conn, server, b"\x16\x03\x03\x40\x00", pieces=600)

    server = scripted(slow_handshake)
    outcome = transport.send(post(f"https://127.0.0.1:{server.port}/hook"), timeout=QUICK)
    assert outcome.error_code == "timeout"
    assert server.client_hung_up.wait(5)


def test_a_stall_after_the_connection_is_reused(transport, scripted):
    def fast_then_stall(conn: socket.socket, server: ScriptedServer) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        read_request(conn)
        server.stopping.wait(30)

    server = scripted(fast_then_stall)
    assert transport.send(post(server.url), timeout=5).delivered
    assert transport.send(post(server.url), timeout=QUICK).error_code == "timeout"
    assert server.accepted == 1


def test_closing_without_a_response(transport, scripted):
    server = scripted(lambda conn, server: read_request(conn))
    outcome = transport.send(post(server.url), timeout=5)
    assert outcome.error_code == "connection_error"
    assert "without a response" in outcome.error_message


def test_too_many_headers_is_response_too_large(transport, scripted):
    def many_headers(conn: socket.socket, server: ScriptedServer) -> None:
        read_request(conn)
        lines = b"".join(b"X-H%d: v\r\n" % n for n in range(150))
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 0\r\n\r\n")

    server = scripted(many_headers)
    assert transport.send(post(server.url), timeout=5).error_code == "response_too_large"


def test_tls_to_a_plain_http_port_is_a_tls_error(transport, receiver):
    receiver.expect_request("/hook").respond_with_data("")
    outcome = transport.send(post(f"https://127.0.0.1:{receiver.port}/hook"), timeout=5)
    assert outcome.error_code == "tls_error"


def _self_signed_context(name: str) -> tuple[ssl.SSLContext, list[str]]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with tempfile.NamedTemporaryFile() as cert_file, tempfile.NamedTemporaryFile() as key_file:
        cert_file.write(cert_pem)
        key_file.write(key_pem)
        cert_file.flush()
        key_file.flush()
        context.load_cert_chain(cert_file.name, key_file.name)
    server_names: list[str] = []
    context.sni_callback = lambda sock, server_name, ctx: server_names.append(server_name)
    return context, server_names


def test_untrusted_certificate_is_a_tls_error_and_sni_names_the_host():
    context, server_names = _self_signed_context("hooks.example.test")
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    try:
        server.expect_request("/hook").respond_with_data("")
        resolver = {"hooks.example.test": [ipaddress.ip_address("127.0.0.1")]}
        with Transport(
            allowed_networks=LOOPBACK, resolver=lambda host, port: resolver[host]
        ) as transport:
            outcome = transport.send(
                post(f"https://hooks.example.test:{server.port}/hook"), timeout=5
            )
    finally:
        server.stop()
    assert outcome.error_code == "tls_error"
    assert "certificate" in outcome.error_message
    assert server_names == ["hooks.example.test"]  # SNI carries the name, not the address
    assert server.log == []


# --- the private-network guard ---------------------------------------------------------

GUARDED_HOSTS = [
    ("localhost", "v4"),
    ("127.0.0.2", "127.0.0.2"),
    ("[::1]", "v6"),
    ("[::ffff:127.0.0.1]", "v4"),
    ("2130706433", "v4"),
    ("0x7f.0.0.1", "v4"),
    ("0x7f.1", "v4"),
    ("0177.0.0.1", "v4"),
    ("127.1", "v4"),
]


@pytest.fixture
def receivers(receiver, receiver_127_0_0_2, receiver_v6) -> dict[str, HTTPServer]:
    servers = {"v4": receiver, "127.0.0.2": receiver_127_0_0_2, "v6": receiver_v6}
    for server in servers.values():
        server.expect_request("/hook").respond_with_data("reached")
    return servers


@pytest.mark.parametrize(("host", "which"), GUARDED_HOSTS)
def test_guard_refuses_private_hosts_before_connecting(guarded, receivers, host, which):
    server = receivers[which]
    outcome = guarded.send(post(f"http://{host}:{server.port}/hook"), timeout=5)
    assert outcome.error_code == "ssrf_blocked"
    assert "private" in outcome.error_message
    assert outcome.status_code is None and outcome.remote_address is None
    assert all(s.log == [] for s in receivers.values())


@pytest.mark.parametrize(("host", "which"), GUARDED_HOSTS)
def test_allowed_networks_let_them_through(transport, receivers, host, which):
    server = receivers[which]
    outcome = transport.send(post(f"http://{host}:{server.port}/hook"), timeout=5)
    assert outcome.delivered, outcome.error_message
    assert outcome.response_body == b"reached"
    assert len(server.log) == 1


# IPv6 spellings of private IPv4 addresses: refused by what they embed (issue #14). None is
# ever connected to: the guard refuses each before a socket is opened.
EMBEDDED_PRIVATE_HOSTS = [
    "[::127.0.0.1]",
    "[::10.0.0.1]",
    "[64:ff9b::7f00:1]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:7f00:1::1]",
    "[2002:a00:1::1]",
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
]


@pytest.mark.parametrize("host", EMBEDDED_PRIVATE_HOSTS)
def test_guard_judges_ipv6_by_the_ipv4_it_embeds(guarded, receivers, host):
    outcome = guarded.send(post(f"http://{host}:{receivers['v4'].port}/hook"), timeout=5)
    assert outcome.error_code == "ssrf_blocked"
    assert "private-network guard" in outcome.error_message
    assert outcome.remote_address is None
    assert all(s.log == [] for s in receivers.values())


def test_allowing_one_network_does_not_allow_another(receivers):
    with Transport(allowed_networks=parse_networks("127.0.0.1/32")) as transport:
        assert transport.send(post(f"http://127.0.0.1:{receivers['v4'].port}/hook"), timeout=5)
        outcome = transport.send(
            post(f"http://127.0.0.2:{receivers['127.0.0.2'].port}/hook"), timeout=5
        )
        assert outcome.error_code == "ssrf_blocked"
        outcome = transport.send(post(f"http://[::1]:{receivers['v6'].port}/hook"), timeout=5)
        assert outcome.error_code == "ssrf_blocked"
    assert receivers["127.0.0.2"].log == [] and receivers["v6"].log == []


def test_connects_to_the_address_the_resolver_gave_and_keeps_the_host_name(receiver):
    receiver.expect_request("/hook").respond_with_data("ok")
    calls = []

    def resolver(host: str, port: int) -> list:
        calls.append((host, port))
        return [ipaddress.ip_address("127.0.0.1")]

    with Transport(allowed_networks=LOOPBACK, resolver=resolver) as transport:
        outcome = transport.send(post(f"http://rebind.test:{receiver.port}/hook"), timeout=5)
    assert outcome.delivered and outcome.remote_address == "127.0.0.1"
    assert calls == [("rebind.test", receiver.port)]
    assert receiver.log[0][0].headers["Host"] == f"rebind.test:{receiver.port}"


def test_dns_rebinding_cannot_swap_the_checked_address(receivers):
    """The resolver answers an allowed address first and a refused one after: the one
    answer that was checked is the one connected to, so the second never matters."""
    answers = iter(["127.0.0.1", "127.0.0.2", "127.0.0.2"])
    calls = []

    def rebinding_resolver(host: str, port: int) -> list:
        calls.append(host)
        return [ipaddress.ip_address(next(answers))]

    with Transport(
        allowed_networks=parse_networks("127.0.0.1/32"), resolver=rebinding_resolver
    ) as transport:
        outcome = transport.send(post(f"http://rebind.test:{receivers['v4'].port}/hook"), timeout=5)
    assert outcome.delivered and outcome.remote_address == "127.0.0.1"
    assert len(calls) == 1
    assert receivers["127.0.0.2"].log == []


@pytest.mark.parametrize(
    "answers",
    [
        ["10.0.0.5"],
        ["169.254.169.254"],
        ["127.0.0.1", "10.0.0.5"],  # one refused answer refuses the name
        ["::ffff:10.0.0.5"],
        ["fd00::1"],
        ["::10.0.0.5"],
        ["64:ff9b::a00:5"],
        ["2002:a00:5::1"],
        ["2001:0:4136:e378:8000:63bf:f5ff:fffa"],  # Teredo, client 10.0.0.5
    ],
)
def test_names_resolving_to_refused_addresses_are_blocked(receiver, answers):
    receiver.expect_request("/hook").respond_with_data("ok")
    with Transport(
        allowed_networks=LOOPBACK,
        resolver=lambda host, port: [ipaddress.ip_address(a) for a in answers],
    ) as transport:
        outcome = transport.send(post(f"http://rebind.test:{receiver.port}/hook"), timeout=5)
    assert outcome.error_code == "ssrf_blocked"
    assert "rebind.test resolves to" in outcome.error_message
    assert receiver.log == []


def test_resolver_failure_is_a_dns_error(transport):
    def failing(host: str, port: int) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with Transport(resolver=failing) as transport:
        outcome = transport.send(post("http://no-such-host.invalid/hook"), timeout=5)
    assert outcome.error_code == "dns_error"
    assert "no-such-host.invalid" in outcome.error_message
    assert "not known" in outcome.error_message


def test_resolver_with_no_answer_is_a_dns_error():
    with Transport(resolver=lambda host, port: []) as transport:
        assert transport.send(post("http://empty.test/"), timeout=5).error_code == "dns_error"


def test_a_hanging_name_lookup_costs_the_attempt_its_timeout_not_the_thread(receiver):
    """getaddrinfo cannot be interrupted: an attempt stops waiting for it at its deadline
    (a timeout), while the lookup is left to finish on its own, shared by every attempt
    that needs the name; other names are looked up meanwhile."""
    receiver.expect_request("/hook").respond_with_data("ok")
    release = threading.Event()
    lookups = []

    def hanging(host: str, port: int) -> list:
        lookups.append(host)
        if host == "slow-dns.test":
            release.wait(30)
        return [ipaddress.ip_address("127.0.0.1")]

    with Transport(allowed_networks=LOOPBACK, resolver=hanging) as transport:
        try:
            slow = post(f"http://slow-dns.test:{receiver.port}/hook")
            outcomes = []
            senders = [
                threading.Thread(target=lambda: outcomes.append(transport.send(slow, timeout=0.5)))
                for _ in range(12)  # more sends of the hanging name than any pool would hold
            ]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
            assert not release.is_set()  # the sends came back while the lookup still hung
            assert [o.error_code for o in outcomes] == ["timeout"] * 12
            assert all(o.status_code is None for o in outcomes)
            fine = transport.send(post(f"http://fast-dns.test:{receiver.port}/hook"), timeout=5)
            assert fine.delivered
        finally:
            release.set()
    # One lookup of the hanging name, shared by its twelve sends; the other name not held up.
    assert lookups == ["slow-dns.test", "fast-dns.test"]
    assert len(receiver.log) == 1  # only the last send reached it


def test_a_closed_transport_refuses_to_send():
    transport = Transport(allowed_networks=LOOPBACK)
    transport.close()
    with pytest.raises(RuntimeError):
        transport.send(post("http://127.0.0.1:9/"), timeout=1)
