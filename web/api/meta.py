"""Service endpoints of the API: who am I."""

from __future__ import annotations

from typing import Any

from engine.store import accounts
from web.api import bp, workspace_id
from web.database import get_session


@bp.get("/workspace")
def current_workspace() -> dict[str, Any]:
    workspace = accounts.get_workspace(get_session(), workspace_id())
    assert workspace is not None  # the key's workspace is cascade-deleted with its keys
    return {"id": workspace.id, "name": workspace.name, "created_at": workspace.created_at}
