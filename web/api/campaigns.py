"""``/campaigns``: create, list, read, PATCH, delete, lifecycle actions, test send, runs.

Views parse with ``web.schemas.campaign``, call ``engine.campaigns.service`` and serialize with
``campaign_to_json`` (secrets masked; the signing secret in full only in the answers of
create, duplicate and rotate-secret). Lifecycle refusals are 409 (wrong state) or 422
(incomplete campaign, ``details`` maps each problem's path to its messages).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, request
from sqlalchemy.exc import OperationalError

from engine.campaigns import service
from engine.campaigns import test_send as test_sends
from engine.delivery.transport import Transport
from engine.store import campaigns as campaign_store
from engine.store import templates as template_store
from engine.store.availability import is_deadlock
from engine.store.models import Campaign
from web import engine_settings, render_settings
from web.activity_log import record_campaign, record_template
from web.api import bp, json_body, load, page, page_size, workspace_id
from web.api.errors import ApiError, not_found
from web.api.keyset import before_id
from web.database import get_database, get_session
from web.schemas.campaign import (
    CampaignActionSchema,
    CampaignSchema,
    TestSendSchema,
    campaign_to_json,
    run_to_json,
    test_send_to_json,
)
from web.schemas.template import template_to_json

STATUSES = ("draft", "active", "paused", "archived")
T = TypeVar("T")


def _campaign(campaign_id: str, *, for_update: bool = False) -> Campaign:
    campaign = campaign_store.get_campaign(
        get_session(), workspace_id(), campaign_id, for_update=for_update
    )
    if campaign is None:
        raise not_found("campaign", campaign_id)
    return campaign


def _refused(exc: service.CampaignError) -> ApiError:
    """The refusal in the API's error shape: ``details`` maps each path to its messages,
    as validation errors do."""
    code = "invalid_state" if exc.status == 409 else "incomplete_campaign"
    details: dict[str, list[str]] = {}
    for problem in exc.problems:
        details.setdefault(problem["path"], []).append(problem["message"])
    return ApiError(exc.status, exc.message, code=code, details=details or None)


@bp.post("/campaigns")
def create_campaign() -> tuple[dict[str, Any], int]:
    body = json_body()
    session = get_session()
    base = None
    if isinstance(body, dict) and isinstance(body.get("template_id"), str):
        template = template_store.get_template(session, workspace_id(), body["template_id"])
        if template is None:
            raise not_found("template", body["template_id"])
        base = service.masked_channel(template.channel, template.channel_secrets)
    data = load(CampaignSchema(settings=render_settings(), base_channel=base), body)
    try:
        campaign, _secret = service.create_campaign(session, workspace_id(), data)
    except service.CampaignError as exc:
        raise _refused(exc) from None
    record_campaign(session, "campaign.created", campaign)
    session.commit()
    return campaign_to_json(campaign, reveal_secret=True), 201


@bp.get("/campaigns")
def list_campaigns() -> dict[str, Any]:
    size = page_size()
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
    rows = campaign_store.list_campaigns_page(
        get_session(),
        workspace_id(),
        limit=size + 1,
        before_id=before_id(),
        status=status,
    )
    return page(rows, size, campaign_to_json, lambda c: {"before": c.id})


@bp.get("/campaigns/<campaign_id>")
def get_campaign(campaign_id: str) -> dict[str, Any]:
    return campaign_to_json(_campaign(campaign_id))


@bp.patch("/campaigns/<campaign_id>")
def update_campaign(campaign_id: str) -> dict[str, Any]:
    campaign = _campaign(campaign_id, for_update=True)
    data = load(CampaignSchema.for_update(campaign, render_settings()))
    data.pop("template_id", None)
    try:
        service.update_campaign(get_session(), campaign, data, settings=render_settings())
    except service.CampaignError as exc:
        raise _refused(exc) from None
    record_campaign(get_session(), "campaign.saved", campaign)
    get_session().commit()
    return campaign_to_json(campaign)


@bp.delete("/campaigns/<campaign_id>")
def delete_campaign(campaign_id: str) -> tuple[str, int]:
    def delete() -> None:
        campaign = _campaign(campaign_id)  # locked by the service, in the workers' order
        try:
            service.delete_campaign(get_session(), campaign)
        except service.CampaignError as exc:
            raise _refused(exc) from None
        record_campaign(get_session(), "campaign.deleted", campaign)
        get_session().commit()

    _retrying_deadlocks(delete)
    return "", 204


def _lifecycle(campaign_id: str, action: Any, kind: str, **kwargs: Any) -> dict[str, Any]:
    def change() -> Campaign:
        campaign = _campaign(campaign_id, for_update=True)
        try:
            action(get_session(), campaign, **kwargs)
        except service.CampaignError as exc:
            raise _refused(exc) from None
        record_campaign(get_session(), kind, campaign)
        get_session().commit()
        return campaign

    return campaign_to_json(_retrying_deadlocks(change))


#: A change that PostgreSQL picked as a deadlock's victim is tried again this many times in
#: all (its locks are taken in the workers' order, so this is a safety net, not the plan).
DEADLOCK_TRIES = 3


def _retrying_deadlocks(change: Callable[[], T]) -> T:
    tries = 1
    while True:
        try:
            return change()
        except OperationalError as exc:
            if tries >= DEADLOCK_TRIES or not is_deadlock(exc):
                raise
            current_app.logger.warning("a deadlock was detected; the change is tried again")
            get_session().rollback()
            tries += 1


@bp.post("/campaigns/<campaign_id>/activate")
def activate_campaign(campaign_id: str) -> dict[str, Any]:
    return _lifecycle(
        campaign_id, service.activate_campaign, "campaign.activated", settings=render_settings()
    )


@bp.post("/campaigns/<campaign_id>/pause")
def pause_campaign(campaign_id: str) -> dict[str, Any]:
    return _lifecycle(campaign_id, service.pause_campaign, "campaign.paused")


@bp.post("/campaigns/<campaign_id>/archive")
def archive_campaign(campaign_id: str) -> dict[str, Any]:
    return _lifecycle(campaign_id, service.archive_campaign, "campaign.archived")


def _optional_body(schema: Any) -> dict[str, Any]:
    return load(schema, json_body()) if request.data else {}


@bp.post("/campaigns/<campaign_id>/duplicate")
def duplicate_campaign(campaign_id: str) -> tuple[dict[str, Any], int]:
    options = _optional_body(CampaignActionSchema())
    campaign = _campaign(campaign_id)
    copy, _secret = service.duplicate_campaign(get_session(), campaign, name=options.get("name"))
    record_campaign(get_session(), "campaign.created", copy, f"as a copy of {campaign.name!r}")
    get_session().commit()
    return campaign_to_json(copy, reveal_secret=True), 201


@bp.post("/campaigns/<campaign_id>/rotate-secret")
def rotate_secret(campaign_id: str) -> dict[str, Any]:
    campaign = _campaign(campaign_id, for_update=True)
    service.rotate_secret(get_session(), campaign)
    get_session().commit()
    answer = campaign_to_json(campaign, reveal_secret=True)
    answer["previous_secret_expires_at"] = campaign.previous_secret_expires_at
    return answer


@bp.post("/campaigns/<campaign_id>/save-as-template")
def save_as_template(campaign_id: str) -> tuple[dict[str, Any], int]:
    options = _optional_body(CampaignActionSchema())
    campaign = _campaign(campaign_id)
    template = service.save_as_template(
        get_session(),
        campaign,
        name=options.get("name"),
        description=options.get("description", ""),
    )
    record_template(get_session(), "template.created", template, f"from campaign {campaign.name!r}")
    get_session().commit()
    return template_to_json(template), 201


@bp.get("/campaigns/<campaign_id>/runs")
def list_runs(campaign_id: str) -> dict[str, Any]:
    campaign = _campaign(campaign_id)
    size = page_size()
    rows = campaign_store.list_runs(
        get_session(),
        campaign.id,
        limit=size + 1,
        before_id=before_id(),
    )
    return page(rows, size, run_to_json, lambda r: {"before": r.id})


# -- test send ------------------------------------------------------------------------------


@bp.post("/campaigns/<campaign_id>/test")
def test_send(campaign_id: str) -> dict[str, Any]:
    """Render for the given contact and event, send ONE request now, return what happened.

    The notification is logged with ``test: true`` (never retried, no effect on endpoint
    health). Answer: see ``web.schemas.campaign.test_send_to_json``.
    """
    data = load(TestSendSchema())
    return run_test_send(workspace_id(), _campaign(campaign_id), data)


def run_test_send(workspace: str, campaign: Campaign, data: dict[str, Any]) -> dict[str, Any]:
    """Send a test of ``campaign`` for ``data`` (a loaded ``TestSendSchema``); its answer.

    Shared with the builder's Test tab; refusals are ``ApiError`` (422 without a URL,
    404 for an unknown contact).
    """
    if not (campaign.channel or {}).get("url"):
        raise ApiError(422, "the campaign has no webhook URL yet", details={"webhook.url": []})
    contact = test_sends.contact_for_test(get_session(), workspace, data["contact"])
    if contact is None:
        raise not_found("contact", data["contact"]["external_id"])
    event = test_sends.event_for_test(data.get("event"))
    campaign_id = campaign.id
    get_session().rollback()  # send_test runs its own short transactions; touch no row now
    settings = engine_settings(current_app)
    with Transport(allowed_networks=settings.allowed_networks) as transport:
        result = test_sends.send_test(
            get_database(),
            workspace,
            campaign_id,
            contact=contact,
            event=event,
            settings=render_settings(),
            transport=transport,
        )
    if result is None:
        raise not_found("campaign", campaign_id)
    return test_send_to_json(result)
