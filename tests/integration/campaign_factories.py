"""Moved to ``tests.integration.factories``; kept for the test modules that still import it."""

from __future__ import annotations

from tests.integration.factories import event_campaign, send_event, webhook

__all__ = ["event_campaign", "send_event", "webhook"]
