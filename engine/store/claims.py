"""What a claim hands a worker and what settling takes back: plain values, no queries.

:mod:`engine.store.outbox` makes these from rows when it claims and stores them when it
settles; :mod:`engine.store.health` reads the settled records. Kept apart so neither of
those two modules imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.store.models import Campaign

#: Added to a channel's timeout to make its lease: room for settling after the deadline.
LEASE_MARGIN_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 15
MAX_TIMEOUT_SECONDS = 60
#: A channel's ``disable_after_failures`` when it sets none.
DEFAULT_DISABLE_AFTER_FAILURES = 20


@dataclass(frozen=True)
class CampaignDelivery:
    """What sending needs from a campaign, read once per claimed batch."""

    id: str
    workspace_id: str
    name: str
    channel: Mapping[str, Any]
    signing_secret: str
    previous_signing_secret: str | None
    previous_secret_expires_at: datetime | None
    webhook_disabled: bool

    @classmethod
    def from_row(cls, campaign: Campaign) -> CampaignDelivery:
        return cls(
            id=campaign.id,
            workspace_id=campaign.workspace_id,
            name=campaign.name,
            channel=dict(campaign.channel or {}),
            signing_secret=campaign.signing_secret,
            previous_signing_secret=campaign.previous_signing_secret,
            previous_secret_expires_at=campaign.previous_secret_expires_at,
            webhook_disabled=bool(campaign.webhook_disabled),
        )

    @property
    def timeout_seconds(self) -> float:
        value = self.channel.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS
        return float(min(max(value, 1), MAX_TIMEOUT_SECONDS))

    @property
    def active(self) -> bool:
        return self.channel.get("active", True) is not False

    @property
    def log_response_body(self) -> bool:
        return self.channel.get("log_response_body", True) is not False

    @property
    def disable_after_failures(self) -> int:
        return int(self.channel.get("disable_after_failures") or DEFAULT_DISABLE_AFTER_FAILURES)


@dataclass(frozen=True)
class ClaimedNotification:
    """A notification leased to one worker for one attempt."""

    id: str
    lease: str
    lease_until: datetime
    endpoint_host: str | None
    attempt_count: int
    test: bool
    request: Mapping[str, Any]
    request_secrets: Mapping[str, str]
    campaign: CampaignDelivery
    #: With a rate limit: the send's slot, before which it must not start.
    not_before: datetime | None = None


def lease_seconds(campaign: CampaignDelivery) -> float:
    """How long a claim lasts: the attempt's deadline plus a margin for settling."""
    return campaign.timeout_seconds + LEASE_MARGIN_SECONDS


@dataclass(frozen=True)
class AttemptRecord:
    """One finished attempt and what the delivery policy decided about it.

    ``retry_at`` None with ``delivered`` False means give up. ``gone`` (410) disables the
    webhook at once.
    """

    claimed: ClaimedNotification
    started_at: datetime
    duration_ms: int | None
    status_code: int | None
    response_headers: Mapping[str, str] | None
    response_body: bytes | None
    response_truncated: bool
    error_code: str | None
    error_message: str | None
    delivered: bool
    retry_at: datetime | None
    gone: bool = False
    #: Seconds a 429/503 asked us to wait (``Retry-After``), if it said.
    retry_after: float | None = None


@dataclass
class SettleSummary:
    recorded: int = 0
    stale: list[str] = field(default_factory=list)
    disabled_campaigns: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
