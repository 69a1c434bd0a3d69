"""The template variables of SPEC §3, built from a contact, an event, a campaign and a workspace."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def _iso_utc(moment: datetime) -> str:
    global _last_iso
    last = _last_iso
    if last[0] is moment:  # a batch renders every row with the same ``now``
        return last[1]
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    text = aware.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_iso = (moment, text)
    return text


_last_iso: tuple[datetime | None, str] = (None, "")


def build_variables(
    *,
    contact: Mapping | None,
    event: Mapping | None,
    campaign: Mapping,
    workspace: Mapping,
    notification_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The template variables of SPEC §3; ``event`` is absent for schedule runs."""
    variables: dict[str, Any] = {
        "campaign": {"id": campaign.get("id"), "name": campaign.get("name")},
        "workspace": {"id": workspace.get("id"), "name": workspace.get("name")},
        "notification": {"id": notification_id},
        "now": _iso_utc(now),
    }
    if contact is not None:
        attributes = contact.get("attributes") or {}
        variables["contact"] = {
            "id": contact.get("id"),
            "external_id": contact.get("external_id"),
            **{k: v for k, v in attributes.items() if k not in ("id", "external_id")},
        }
    if event is not None:
        occurred_at = event.get("occurred_at")
        if isinstance(occurred_at, datetime):
            occurred_at = _iso_utc(occurred_at)
        variables["event"] = {
            "id": event.get("id"),
            "name": event.get("name"),
            "occurred_at": occurred_at,
            "properties": dict(event.get("properties") or {}),
        }
    return variables


def sample_variables(now: datetime | None = None) -> dict[str, Any]:
    """Realistic sample variables for builder previews and validation of raw JSON bodies."""
    return build_variables(
        contact={
            "id": "con_sample",
            "external_id": "lead-1042",
            "attributes": {
                "email": "ada@example.com",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "plan": "pro",
                "score": 87,
                "vip": True,
                "tags": ["beta", "newsletter"],
                "city": "Dublin",
            },
        },
        event={
            "id": "evt_sample",
            "name": "lead.status.update",
            "occurred_at": datetime(2026, 11, 22, 9, 58, tzinfo=UTC),
            "properties": {"status": "qualified", "score": 42, "source": "website"},
        },
        campaign={"id": "cmp_sample", "name": "Sample campaign"},
        workspace={"id": "wsp_sample", "name": "Sample workspace"},
        notification_id="ntf_sample",
        now=now or datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
    )
