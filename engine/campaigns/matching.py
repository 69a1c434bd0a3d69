"""A workspace's active event campaigns as ingestion matches them, kept per process.

Every request reads one fingerprint of them (how many, the newest ``updated_at``, the newest
id, and the workspace's name, which templates see); while it is unchanged, the pattern
index, each campaign's conditions and cap, and its compiled channel are reused instead of
being read, decrypted and compiled per request. Activating, pausing, editing or deleting a
campaign, or a change of its endpoint health, moves ``updated_at``, so the next event in
every process sees the change; a compiled channel is kept only while its campaign's
``updated_at`` is.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.campaigns.materialize import CampaignMaterializer
from engine.rules.patterns import EventPatternIndex
from engine.store import campaigns as campaign_store
from engine.templating.request import RenderSettings

CACHED_WORKSPACES = 1024


@dataclass(frozen=True)
class ActiveCampaign:
    """The columns of an active event campaign that matching and rendering read; a plain
    value, so the requests of every thread can share it."""

    id: str
    workspace_id: str
    name: str
    updated_at: datetime
    webhook_disabled: bool
    trigger: Mapping[str, Any] | None
    audience: Mapping[str, Any] | None
    frequency_cap: Mapping[str, Any] | None
    channel: Mapping[str, Any] | None
    channel_secrets: Mapping[str, Any] | None


class WorkspaceCampaigns:
    """One fingerprint's active event campaigns, their pattern index and (made on first
    use) their materializers."""

    def __init__(
        self,
        version: tuple,
        workspace_id: str,
        workspace_name: str | None,
        campaigns: list[ActiveCampaign],
        earlier: WorkspaceCampaigns | None,
    ) -> None:
        self.version = version
        self.workspace = {"id": workspace_id, "name": workspace_name}
        self.campaigns = {campaign.id: campaign for campaign in campaigns}
        self.index = EventPatternIndex(
            [(c.id, list((c.trigger or {}).get("events") or [])) for c in campaigns]
        )
        self._makers: dict[tuple[str, RenderSettings], CampaignMaterializer] = {}
        if earlier is not None and earlier.workspace == self.workspace:
            # A copy: other threads may be adding to the earlier entry right now.
            for (campaign_id, settings), maker in dict(earlier._makers).items():
                before, now = earlier.campaigns.get(campaign_id), self.campaigns.get(campaign_id)
                if before is not None and before == now:
                    self._makers[(campaign_id, settings)] = maker

    def maker(self, campaign_id: str, settings: RenderSettings) -> CampaignMaterializer:
        """The campaign's materializer (its channel decrypted and compiled once)."""
        key = (campaign_id, settings)
        maker = self._makers.get(key)
        if maker is None:  # two threads may both make it: the same value, either is kept
            maker = CampaignMaterializer(self.campaigns[campaign_id], self.workspace, settings)
            self._makers[key] = maker
        return maker


class _Cache:
    """``workspace id → WorkspaceCampaigns``, least recently used dropped."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, WorkspaceCampaigns] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, workspace_id: str) -> WorkspaceCampaigns | None:
        with self._lock:
            return self._entries.get(workspace_id)

    def get(
        self, session: Session, workspace_id: str, version_row: tuple | None = None
    ) -> WorkspaceCampaigns:
        if version_row is None:
            version, name = campaign_store.active_event_campaigns_version(session, workspace_id)
        else:
            version, name = campaign_store.active_event_campaigns_version_of(version_row)
        with self._lock:
            entry = self._entries.get(workspace_id)
            if entry is not None and entry.version == version:
                self._entries.move_to_end(workspace_id)
                return entry
        rows = campaign_store.active_event_campaign_rows(session, workspace_id)
        campaigns = [ActiveCampaign(**row) for row in rows]
        fresh = WorkspaceCampaigns(version, workspace_id, name, campaigns, entry)
        with self._lock:
            self._entries[workspace_id] = fresh
            self._entries.move_to_end(workspace_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return fresh


_cache = _Cache(CACHED_WORKSPACES)


def workspace_campaigns_cached(workspace_id: str) -> WorkspaceCampaigns | None:
    """What this process keeps for the workspace right now, if anything (no query)."""
    return _cache.peek(workspace_id)


def workspace_campaigns(
    session: Session, workspace_id: str, version_row: tuple | None = None
) -> WorkspaceCampaigns:
    """The workspace's active event campaigns as of ``session`` (one small query when
    nothing changed since this process last looked; none when the caller read the row of
    ``campaign_store.active_event_campaigns_version_query`` along with its own)."""
    return _cache.get(session, workspace_id, version_row)
