"""After a fix, the editor offers to rebuild the notifications still waiting to retry."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient

from engine.campaigns import service as campaign_service
from engine.campaigns.manual_retry import wait_for_background_jobs
from engine.store import Database
from engine.store.models import Campaign, Notification
from engine.store.types import utcnow
from tests.conftest import WorkspaceFixture, csrf_token
from tests.integration.factories import make_recorded_notification


def test_save_counts_waiting_retries_and_the_banner_rebuilds_them(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    with db.transaction() as session:
        campaign, _ = campaign_service.create_campaign(
            session,
            workspace.id,
            {"name": "Lead sync", "webhook": {"url": "http://127.0.0.1:9/typo"}},
        )
        campaign_id = campaign.id
        row = session.get(Campaign, campaign_id)
        for _ in range(2):
            make_recorded_notification(
                session,
                row,
                status="retrying",
                contact=None,
                event=None,
                next_attempt_at=utcnow() + timedelta(hours=6),
            )
    page = logged_in.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    banner = page[page.index('data-testid="retry-banner"') :][:900]
    assert "hidden" not in banner.split(">")[0]
    assert "Apply the new recipe to the <span data-retry-count>2</span>" in banner
    token = csrf_token(logged_in, f"/campaigns/{campaign_id}")
    saved = logged_in.post(
        f"/campaigns/{campaign_id}/save",
        json={"name": "Lead sync", "webhook": {"url": "http://127.0.0.1:9/fixed"}},
        headers={"X-CSRFToken": token},
    )
    assert saved.status_code == 200 and saved.get_json()["waiting_to_retry"] == 2
    answer = logged_in.post(
        "/notifications/bulk-retry",
        data={"csrf_token": token, "campaign_id": campaign_id, "status": "retrying"},
    )
    assert answer.status_code == 302 and "/notifications/jobs/" in answer.headers["Location"]
    wait_for_background_jobs()
    with db.session() as session:
        rows = session.query(Notification).filter_by(campaign_id=campaign_id).all()
        assert {r.status for r in rows} == {"pending"}
        assert {r.request["url"] for r in rows} == {"http://127.0.0.1:9/fixed"}
    page = logged_in.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'data-testid="retry-banner" role="status" hidden' in page
