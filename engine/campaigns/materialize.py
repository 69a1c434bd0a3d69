"""One campaign, one contact, one occurrence → a notification row, rendered at creation.

Shared by event ingestion and schedule runs, so both follow the same convention:
the request is rendered now (masked snapshot + encrypted secret headers), a render
failure makes a ``failed`` notification with one ``render_error`` attempt (never retried),
a disabled or inactive webhook makes it ``held``, a frequency cap makes it ``skipped``.
Pure: it builds row dicts; ``engine.store.events`` inserts them in bulk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from engine.campaigns.service import channel_with_secrets
from engine.ids import new_id
from engine.templating.checks import url_host
from engine.templating.errors import RenderError
from engine.templating.render import compile_channel
from engine.templating.request import RenderSettings
from engine.templating.variables import build_variables


class CampaignRecipe(Protocol):
    """What a materializer reads of a campaign: a ``Campaign`` row, or the plain copy
    ingestion keeps (``engine.campaigns.matching.ActiveCampaign``)."""

    @property
    def id(self) -> str: ...
    @property
    def workspace_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def webhook_disabled(self) -> bool: ...
    @property
    def channel(self) -> Mapping[str, Any] | None: ...
    @property
    def channel_secrets(self) -> Mapping[str, Any] | None: ...


@dataclass
class MaterializedBatch:
    """Rows ready for ``engine.store.events.insert_notifications``."""

    notifications: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    pending: int = 0
    skipped: int = 0
    failed: int = 0


class CampaignMaterializer:
    """Renders notifications of one campaign; read the campaign row once per batch."""

    def __init__(
        self,
        campaign: CampaignRecipe,
        workspace: Mapping[str, Any],
        settings: RenderSettings,
        *,
        schedule_run_id: str | None = None,
    ) -> None:
        self.campaign_id = campaign.id
        self.workspace_id = campaign.workspace_id
        self.campaign_vars = {"id": campaign.id, "name": campaign.name}
        self.workspace = dict(workspace)
        self.channel = channel_with_secrets(campaign.channel, campaign.channel_secrets)
        constants = {  # as build_variables makes them for every row of this materializer
            "campaign": self.campaign_vars,
            "workspace": {"id": self.workspace.get("id"), "name": self.workspace.get("name")},
        }
        self.compiled_channel = compile_channel(self.channel, settings, constants=constants)
        self.settings = settings
        self.schedule_run_id = schedule_run_id
        self.hold_reason: str | None = None
        if campaign.webhook_disabled:
            self.hold_reason = "webhook_disabled"
        elif (campaign.channel or {}).get("active", True) is False:
            self.hold_reason = "webhook_inactive"

    def variables(
        self,
        contact: Mapping[str, Any],
        event: Mapping[str, Any] | None,
        notification_id: str,
        now: datetime,
    ) -> dict[str, Any]:
        """The variables conditions and templates see (SPEC §3)."""
        return build_variables(
            contact=contact,
            event=event,
            campaign=self.campaign_vars,
            workspace=self.workspace,
            notification_id=notification_id,
            now=now,
        )

    def add(
        self,
        batch: MaterializedBatch,
        *,
        contact: Mapping[str, Any],
        event: Mapping[str, Any] | None,
        event_row_id: str | None,
        now: datetime,
        capped: bool = False,
        variables: dict[str, Any] | None = None,
        notification_id: str | None = None,
        test: bool = False,
    ) -> str:
        """Render one notification into ``batch``; returns its id.

        ``contact`` is ``{"id", "external_id", "attributes"}``; ``event`` is the event as
        templates see it (``id`` = the client's id when given) or None for schedule runs.
        """
        notification_id = notification_id or new_id("msg")
        row: dict[str, Any] = {
            "id": notification_id,
            "workspace_id": self.workspace_id,
            "campaign_id": self.campaign_id,
            "contact_id": contact.get("id"),
            "contact_external_id": contact.get("external_id"),
            "event_id": event_row_id,
            "event_name": event.get("name") if event else None,
            "schedule_run_id": self.schedule_run_id,
            "test": test,
            "status": "pending",
            "reason": None,
            "endpoint_host": None,
            "attempt_count": 0,
            "next_attempt_at": now,
            "request": None,
            "request_secrets": None,
            "error_code": None,
            "error_message": None,
            "created_at": now,
            "updated_at": now,
        }
        batch.notifications.append(row)
        if capped:
            row.update(status="skipped", reason="frequency_capped", next_attempt_at=None)
            batch.skipped += 1
            return notification_id
        if variables is None:
            variables = self.variables(contact, event, notification_id, now)
        try:
            rendered = self.compiled_channel.render(variables)
        except RenderError as exc:
            message = str(exc)
            row.update(
                status="failed",
                error_code=exc.code,
                error_message=message,
                next_attempt_at=None,
                attempt_count=1,
            )
            batch.attempts.append(
                {
                    "notification_id": notification_id,
                    "number": 1,
                    "started_at": now,
                    "duration_ms": 0,
                    "status_code": None,
                    "response_headers": None,
                    "response_body": None,
                    "response_truncated": False,
                    "error_code": exc.code,
                    "error_message": message,
                }
            )
            batch.failed += 1
            return notification_id
        secrets = rendered.secret_headers()
        row.update(
            request=rendered.masked(),
            request_secrets=secrets or None,
            endpoint_host=url_host(rendered.url),
        )
        if self.hold_reason and not test:
            row.update(status="held", reason=self.hold_reason, next_attempt_at=None)
        else:
            batch.pending += 1
        return notification_id
