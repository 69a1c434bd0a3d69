"""A real SMTP server on 127.0.0.1 for mail tests (aiosmtpd): records every message it
accepts; optionally requires a user name and password, or refuses everything."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    """``SmtpServer(user=..., password=...)`` serves until ``close()``; ``messages`` are
    the accepted mails, parsed. ``refuse = True`` answers every mail with 451. With a user,
    a mail from a client that did not log in is refused (530), a wrong password gets 535."""

    def __init__(
        self,
        *,
        user: str | None = None,
        password: str | None = None,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = False
        self._lock = threading.Lock()
        self.port = free_port()
        self.user, self.password = user, password
        server = self

        class Handler:
            async def handle_DATA(self, _server, _session, envelope):
                if server.refuse:
                    return "451 4.3.0 Mailbox temporarily unavailable"
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with server._lock:
                    server.messages.append(parsed)
                return "250 OK"

        def authenticate(_server, _session, _envelope, _mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (
                auth_data.login.decode(),
                auth_data.password.decode(),
            ) == (user, password)
            return AuthResult(success=ok, handled=False)  # a failure answers 535

        options = {}
        if user is not None:
            # Login over plain SMTP on loopback (aiosmtpd warns when AUTH is *required*
            # without TLS, so handle_DATA checks that the client logged in instead).
            options = {
                "authenticator": authenticate,
                "auth_require_tls": False,
                "auth_exclude_mechanism": ["LOGIN"],  # smtplib then logs in with PLAIN
            }
        if starttls is not None:
            options.update(tls_context=starttls, require_starttls=True)
        if implicit_tls is not None:
            options["ssl_context"] = implicit_tls
        self._controller: Controller | None = Controller(
            Handler(), hostname="127.0.0.1", port=self.port, **options
        )
        self._controller.start()  # type: ignore[union-attr]

    def url(self) -> str:
        credentials = f"{self.user}:{self.password}@" if self.user is not None else ""
        return f"smtp://{credentials}127.0.0.1:{self.port}"

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain text and the HTML part of a message."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "expected a text and an HTML part"
    return text.get_content(), html.get_content()
