"""SMTP: ``SMTP_URL`` parsed into connection settings, and one connection that sends.

``smtp://user:pass@host:port`` (plain, port 25), ``smtp+starttls://…`` (upgraded with
STARTTLS, port 587) and ``smtps://…`` (TLS from the start, port 465). User and password are
percent-decoded, so ``@`` or ``:`` in a password are written ``%40`` / ``%3A``.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class SmtpConfig:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        """Raises ``ValueError`` naming what is wrong (the password is never repeated)."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError(
                "SMTP_URL must start with smtp://, smtp+starttls:// or smtps://, "
                f"got {scheme or 'no scheme'}"
            )
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise ValueError("SMTP_URL has a port that is not a number") from None
        if not parts.hostname:
            raise ValueError("SMTP_URL names no host")
        return cls(
            scheme=scheme,
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def describe(self) -> str:
        """Where mail goes, without credentials (for logs and pages)."""
        return f"{self.scheme}://{self.host}:{self.port}"


class SmtpConnection:
    """One SMTP session, opened on first use and reused for a batch; close when done."""

    def __init__(self, config: SmtpConfig, *, tls_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self._tls = tls_context or ssl.create_default_context()
        self._client: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        config = self.config
        client: smtplib.SMTP
        if config.scheme == "smtps":
            client = smtplib.SMTP_SSL(
                config.host, config.port, timeout=TIMEOUT_SECONDS, context=self._tls
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=TIMEOUT_SECONDS)
        try:
            if config.scheme == "smtp+starttls":
                client.starttls(context=self._tls)
            if config.username:
                client.login(config.username, config.password or "")
        except BaseException:
            client.close()
            raise
        return client

    def send(self, message: EmailMessage) -> None:
        if self._client is None:
            self._client = self._open()
        try:
            self._client.send_message(message)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.close()
            raise

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
