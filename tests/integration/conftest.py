"""Integration-test fixtures shared across modules (the app and database ones are in
``tests/conftest.py``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.integration.loopback_receiver import Receiver
from tests.integration.smtp_server import SmtpServer


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A recording HTTP receiver on 127.0.0.1 (answers 200 until told otherwise)."""
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger back as it was (``hookcast serve``/``worker`` configure it
    process-wide when run in-process)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that wants user ``hookcast``, password ``p@ss:word``."""
    server = SmtpServer(user="hookcast", password="p@ss:word")
    yield server
    server.close()


def mail_settings(server: SmtpServer) -> dict[str, str]:
    """Configuration that sends email through ``server`` (the password percent-encoded)."""
    return {
        "SMTP_URL": f"smtp://hookcast:p%40ss%3Aword@127.0.0.1:{server.port}",
        "MAIL_FROM": "Hookcast <hookcast@acme.test>",
        "BASE_URL": "https://hookcast.acme.test",
    }
