"""Settings → Activity (owners): the workspace's activity log, newest first, filtered by
user and kind, a page at a time."""

from __future__ import annotations

from flask import g, render_template, request

from engine.store import accounts
from engine.store import activity as activity_store
from web.auth import login_required, require_role
from web.builder import bp
from web.database import get_session

PAGE_SIZE = 50


@bp.get("/settings/activity")
@login_required
def activity() -> str:
    require_role("owner")
    db = get_session()
    user_id = request.args.get("user_id") or None
    kind = request.args.get("kind") or None
    before = request.args.get("before") or None
    entries = activity_store.list_page(
        db,
        g.workspace.id,
        limit=PAGE_SIZE + 1,
        before=before,
        user_id=user_id,
        kinds=[kind] if kind in activity_store.KINDS else [],
    )
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    return render_template(
        "builder/activity.html",
        entries=entries,
        members=accounts.list_members(db, g.workspace.id),
        kinds=activity_store.KINDS,
        args={"user_id": user_id, "kind": kind},
        next_before=entries[-1].id if more and entries else None,
    )
