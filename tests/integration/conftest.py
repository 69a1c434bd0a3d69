"""Integration-test fixtures shared across modules (the app and database ones are in
``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.loopback_receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A recording HTTP receiver on 127.0.0.1 (answers 200 until told otherwise)."""
    server = Receiver()
    yield server
    server.close()
