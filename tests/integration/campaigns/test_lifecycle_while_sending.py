"""Pausing, archiving and deleting campaigns while a real worker sends their notifications
(issue #14: deletes deadlocked with the worker on PostgreSQL and answered 500).

The receiver on loopback fails every request, so the worker keeps settling failures, which
counts them on the campaign's row (endpoint health) while it holds the notifications: the
order a delete has to take the same rows in."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import func, select

from engine.store.models import Campaign, Notification
from tests.conftest import ApiClient
from tests.integration import factories
from tests.integration.delivery.test_delivery import running_worker, wait_for
from tests.integration.loopback_receiver import Receiver, Reply

CAMPAIGNS = 8
NOTIFICATIONS = 40


def _failing_slowly(_request: Any) -> Reply:
    time.sleep(0.02)  # sends stay in flight while the campaigns change
    return Reply(status=500, body=b"no")


def test_pause_archive_delete_while_the_worker_sends(api: ApiClient, db: Any, caplog) -> None:
    receiver = Receiver(_failing_slowly)
    caplog.set_level(logging.WARNING)
    overrides = {"retry": {"schedule": [1], "max_attempts": 20}, "disable_after_failures": 1000}
    campaign_ids = [
        factories.make_notifications(
            db, api.workspace.id, receiver.url(), NOTIFICATIONS, **overrides
        )[0]
        for _ in range(CAMPAIGNS)
    ]
    answers = []
    try:
        with running_worker(db, threads=8):
            wait_for(lambda: len(receiver.requests) >= 2 * CAMPAIGNS)
            for campaign_id in campaign_ids:
                answers.append(api.post(f"/campaigns/{campaign_id}/pause").status_code)
                answers.append(api.post(f"/campaigns/{campaign_id}/archive").status_code)
                answers.append(api.delete(f"/campaigns/{campaign_id}").status_code)
            sent_during = len(receiver.requests)
    finally:
        receiver.close()
    assert answers == [200, 200, 204] * CAMPAIGNS
    assert sent_during > 2 * CAMPAIGNS
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
        assert session.scalar(select(func.count()).select_from(Notification)) == 0
    assert not [r for r in caplog.records if "deadlock" in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
