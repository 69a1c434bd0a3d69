"""A schedule campaign shows its next run in the list, and its past and next runs on its
health page; the editor opens the picker on the stored schedule."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient

from engine.campaigns import service as campaign_service
from engine.store import Database
from engine.store.models import ScheduleRun
from tests.conftest import WorkspaceFixture


def test_next_run_in_the_list_and_runs_on_the_health_page(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    with db.transaction() as s:
        campaign, _ = campaign_service.create_campaign(
            s,
            workspace.id,
            {
                "name": "Weekly digest",
                "trigger": {"type": "schedule", "cron": "30 7 * * 1,3", "timezone": "UTC"},
                "webhook": {"url": "https://hooks.example.com/digest"},
            },
        )
        campaign_service.activate_campaign(s, campaign)
        cid = campaign.id
        s.add(
            ScheduleRun(
                workspace_id=workspace.id,
                campaign_id=cid,
                fire_time=datetime(2026, 11, 30, 7, 30, tzinfo=UTC),
                status="done",
                notification_count=12,
                skipped_count=2,
                failed_count=1,
            )
        )
    listing = logged_in.get("/campaigns").get_data(as_text=True)
    assert "Next run: " in listing and "07:30 UTC" in listing
    page = logged_in.get(f"/campaigns/{cid}/health").get_data(as_text=True)
    assert "every Monday and Wednesday at 07:30 (UTC)" in page
    upcoming = page[page.index('data-testid="next-runs"') :].split("</ul>")[0]
    assert upcoming.count("<li>") == 5 and "07:30 UTC)" in upcoming
    runs = page[page.index('data-testid="past-runs"') :]
    assert "2026-11-30 07:30" in runs and "<td>12</td>" in runs
    assert "9 <span" in runs and "2 skipped (frequency cap)" in runs
    assert "1 could not be built" in runs

    editor = logged_in.get(f"/campaigns/{cid}").get_data(as_text=True)
    assert '<option value="weekly" selected>' in editor
    assert 'data-schedule-time value="07:30"' in editor
    assert 'value="1" checked' in editor and 'value="3" checked' in editor
    assert 'value="2" checked' not in editor
