"""The campaign service: lifecycle, secrets and templates, shared by the API and the builder.

Callers hand in data already shaped by the campaign schema (``web.schemas.campaign``) and
commit the session themselves. Rules kept here, in one place:

- A new campaign is a ``draft`` with a fresh signing secret (unless one is given); the
  full secret is returned once, by :func:`create_campaign` and :func:`rotate_secret`.
- Secrets are write-only. The channel row holds no secrets (``channel_secrets`` keeps the
  auth password/token, encrypted); a write that omits a secret, or sends back the masked
  ``****`` form, keeps the stored value.
- Only ``active`` campaigns fire; activating checks the campaign is complete; an
  ``archived`` campaign can never be activated again (duplicate it instead). Editing an
  active campaign's channel applies to notifications created afterwards only: stored
  notifications keep the request rendered when they were made.
- Using a template copies its channel (secrets included, signing secret excluded); later
  template edits never reach the campaign.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from engine.delivery import signing
from engine.rules.conditions import RuleProblem, validate_conditions
from engine.rules.sql import audience_sql_supported
from engine.rules.triggers import next_fire_time, validate_trigger
from engine.store import campaigns as campaign_store
from engine.store import templates as template_store
from engine.store.models import Campaign, Template
from engine.store.types import utcnow
from engine.templating.channel import validate_channel
from engine.templating.request import RenderSettings

MASK = "****"
AUTH_SECRET_FIELDS = ("password", "token")
PREVIOUS_SECRET_TTL = timedelta(hours=24)
DEFAULT_TRIGGER: dict[str, Any] = {"type": "event", "events": []}


class CampaignError(Exception):
    """A lifecycle rule refused the action: ``status`` 409 (state) or 422 (incomplete)."""

    def __init__(self, message: str, *, status: int = 409, problems: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.problems = problems or []


def is_masked(value: Any) -> bool:
    """True for a value that is the masked form of a secret (sent back unchanged)."""
    return isinstance(value, str) and MASK in value


# -- channel and secrets ----------------------------------------------------------------------


def split_channel(
    channel: Mapping[str, Any], stored_secrets: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(channel without secrets, auth secrets)``; omitted or masked secrets keep stored ones.

    The signing ``secret`` is removed too; callers read it from ``channel["secret"]``.
    """
    clean = {k: v for k, v in channel.items() if k != "secret"}
    auth = dict(clean.get("auth") or {"type": "none"})
    secrets: dict[str, Any] = {}
    needed = {"basic": "password", "bearer": "token"}.get(auth.get("type", "none"))
    for name in AUTH_SECRET_FIELDS:
        value = auth.pop(name, None)
        if name != needed:
            continue
        if value is None or is_masked(value):
            value = (stored_secrets or {}).get(name)
        if value is not None:
            secrets[name] = value
    clean["auth"] = auth
    return clean, secrets


def channel_with_secrets(
    channel: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The full recipe to render: the stored channel plus its auth secrets."""
    full = dict(channel or {})
    auth = dict(full.get("auth") or {})
    for name in AUTH_SECRET_FIELDS:
        if secrets and secrets.get(name) is not None:
            auth[name] = secrets[name]
    if auth:
        full["auth"] = auth
    return full


def masked_channel(
    channel: Mapping[str, Any] | None,
    secrets: Mapping[str, Any] | None,
    signing_secret: str | None = None,
    *,
    reveal_signing_secret: bool = False,
) -> dict[str, Any]:
    """The channel as responses show it: auth secrets ``****``, the signing secret masked."""
    shown = dict(channel or {})
    auth = dict(shown.get("auth") or {})
    for name in AUTH_SECRET_FIELDS:
        if secrets and secrets.get(name) is not None:
            auth[name] = MASK
    if auth:
        shown["auth"] = auth
    if signing_secret is not None:
        shown["secret"] = (
            signing_secret if reveal_signing_secret else signing.mask_secret(signing_secret)
        )
    return shown


def merge_channel_patch(
    stored: Mapping[str, Any] | None, patch: Mapping[str, Any]
) -> dict[str, Any]:
    """A PATCH of a channel: given keys replace stored ones (``auth`` merges its keys when
    the auth type is unchanged, so ``{"auth": {"username": "x"}}`` keeps the password)."""
    merged = dict(stored or {})
    for key, value in patch.items():
        if key == "auth" and isinstance(value, Mapping):
            old = dict(merged.get("auth") or {})
            same_type = value.get("type", old.get("type")) == old.get("type")
            merged["auth"] = {**old, **value} if same_type else dict(value)
        else:
            merged[key] = value
    return merged


# -- campaigns --------------------------------------------------------------------------------


def _apply_signing_secret(campaign: Campaign, secret: str | None, now: datetime) -> str | None:
    """Install a caller-given signing secret (the old one stays valid for 24 h)."""
    if secret is None or is_masked(secret) or secret == campaign.signing_secret:
        return None
    if not signing.is_valid_secret(secret):
        raise CampaignError(
            "webhook.secret must be whsec_ followed by a base64 key of 24 to 64 bytes",
            status=422,
            problems=[{"path": "webhook.secret", "message": "not a valid signing secret"}],
        )
    campaign.previous_signing_secret = campaign.signing_secret
    campaign.previous_secret_expires_at = now + PREVIOUS_SECRET_TTL
    campaign.signing_secret = secret
    return secret


def _set_channel(campaign: Campaign | Template, channel: Mapping[str, Any]) -> None:
    clean, secrets = split_channel(channel, campaign.channel_secrets)
    campaign.channel = clean
    campaign.channel_secrets = secrets or None


def create_campaign(
    session: Session, workspace_id: str, data: Mapping[str, Any], *, now: datetime | None = None
) -> tuple[Campaign, str]:
    """A new draft campaign; returns it and its full signing secret (shown once).

    ``data``: ``name``, optional ``trigger``, ``audience``, ``frequency_cap``, ``webhook``
    and ``template_id`` (copies that template's channel; ``webhook`` keys override it).
    Raises ``LookupError`` when the template is not in the workspace.
    """
    now = now or utcnow()
    channel: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    if data.get("template_id"):
        template = template_store.get_template(session, workspace_id, data["template_id"])
        if template is None:
            raise LookupError(data["template_id"])
        channel = dict(template.channel or {})
        secrets = dict(template.channel_secrets or {})
    webhook = dict(data.get("webhook") or {})
    given_secret = webhook.get("secret")
    if webhook:
        channel = merge_channel_patch(channel, webhook)
    trigger = dict(data.get("trigger") or DEFAULT_TRIGGER)
    campaign = Campaign(
        workspace_id=workspace_id,
        name=data["name"],
        status="draft",
        trigger_type=trigger.get("type", "event"),
        trigger=trigger,
        audience=dict(data.get("audience") or {}),
        frequency_cap=data.get("frequency_cap"),
        channel_secrets=secrets or None,
        signing_secret=signing.generate_secret(),
        created_at=now,
        updated_at=now,
    )
    _set_channel(campaign, channel)
    if given_secret and not is_masked(given_secret):
        if not signing.is_valid_secret(given_secret):
            raise CampaignError(
                "webhook.secret must be whsec_ followed by a base64 key of 24 to 64 bytes",
                status=422,
                problems=[{"path": "webhook.secret", "message": "not a valid signing secret"}],
            )
        campaign.signing_secret = given_secret
    campaign_store.add_campaign(session, campaign)
    return campaign, campaign.signing_secret


def update_campaign(
    session: Session,
    campaign: Campaign,
    changes: Mapping[str, Any],
    *,
    settings: RenderSettings | None = None,
    now: datetime | None = None,
) -> Campaign:
    """PATCH: only the keys in ``changes`` change; ``webhook`` is merged key by key.

    An active campaign must stay complete (``CampaignError`` 422 otherwise); an archived
    one cannot be edited (409).
    """
    now = now or utcnow()
    if campaign.status == "archived":
        raise CampaignError("an archived campaign cannot be edited; duplicate it instead")
    if "name" in changes:
        campaign.name = changes["name"]
    if "trigger" in changes:
        campaign.trigger = dict(changes["trigger"])
        campaign.trigger_type = campaign.trigger.get("type", "event")
    if "audience" in changes:
        campaign.audience = dict(changes["audience"] or {})
    if "frequency_cap" in changes:
        campaign.frequency_cap = changes["frequency_cap"]
    if "webhook" in changes and changes["webhook"] is not None:
        webhook = dict(changes["webhook"])
        _apply_signing_secret(campaign, webhook.get("secret"), now)
        _set_channel(campaign, merge_channel_patch(campaign.channel, webhook))
    if campaign.status == "active":
        problems = completeness_problems(campaign, settings or RenderSettings(), now)
        if problems:
            raise CampaignError(
                "an active campaign must stay complete", status=422, problems=problems
            )
        if "trigger" in changes and campaign.trigger_type == "schedule":
            campaign.activated_at = now  # a new schedule starts from now
    campaign.updated_at = now
    session.flush()
    return campaign


def completeness_problems(
    campaign: Campaign, settings: RenderSettings, now: datetime
) -> list[dict[str, str]]:
    """What keeps a campaign from being activated, each with a path (empty = complete)."""
    problems: list[RuleProblem] = list(validate_trigger(campaign.trigger))
    trigger = campaign.trigger or {}
    audience = campaign.audience or {}
    if trigger.get("type") == "event" and not trigger.get("events"):
        problems = [p for p in problems if p.path != "trigger.events"]  # said once, plainly
        problems.append(RuleProblem("trigger.events", "name at least one event"))
    if trigger.get("type") == "schedule":
        problems += audience_sql_supported(audience.get("conditions"))
        if not problems and "at" in trigger and next_fire_time(trigger, after=now) is None:
            problems.append(RuleProblem("trigger.at", "this time has already passed"))
    else:
        problems += validate_conditions(audience.get("conditions"), path="audience.conditions")
    found = [p.as_dict() for p in problems]
    channel = channel_with_secrets(campaign.channel, campaign.channel_secrets)
    if not channel.get("url"):
        found.append({"path": "webhook.url", "message": "the webhook needs a URL"})
    else:
        for problem in validate_channel(channel, settings):
            if problem.severity == "error":
                found.append(
                    {
                        "path": f"webhook.{problem.location or ''}".rstrip("."),
                        "message": problem.message,
                    }
                )
    return found


def activate_campaign(
    session: Session,
    campaign: Campaign,
    *,
    settings: RenderSettings | None = None,
    now: datetime | None = None,
) -> Campaign:
    """draft/paused → active, after checking the campaign is complete."""
    now = now or utcnow()
    if campaign.status == "archived":
        raise CampaignError("an archived campaign cannot be activated; duplicate it instead")
    if campaign.status == "active":
        return campaign
    problems = completeness_problems(campaign, settings or RenderSettings(), now)
    if problems:
        raise CampaignError(
            "the campaign is not complete: "
            + "; ".join(f"{p['path']}: {p['message']}" for p in problems[:5]),
            status=422,
            problems=problems,
        )
    campaign.status = "active"
    campaign.activated_at = now
    campaign.updated_at = now
    session.flush()
    return campaign


def pause_campaign(
    session: Session, campaign: Campaign, *, now: datetime | None = None
) -> Campaign:
    """active → paused (paused stays paused); drafts and archived campaigns cannot pause."""
    if campaign.status == "paused":
        return campaign
    if campaign.status != "active":
        raise CampaignError(f"only an active campaign can be paused; this one is {campaign.status}")
    campaign.status = "paused"
    campaign.updated_at = now or utcnow()
    session.flush()
    return campaign


def archive_campaign(
    session: Session, campaign: Campaign, *, now: datetime | None = None
) -> Campaign:
    """Any status → archived (final: it never fires again; duplicate it to reuse it)."""
    if campaign.status != "archived":
        campaign.status = "archived"
        campaign.updated_at = now or utcnow()
        session.flush()
    return campaign


def delete_campaign(session: Session, campaign: Campaign) -> None:
    """Delete a campaign that is not active (its notifications go with it).

    Takes its locks in the workers' order (see ``campaign_store.lock_for_delete``), so the
    caller must not have locked the campaign already; the status is read again under it.
    """
    campaign_store.lock_for_delete(session, campaign.id)
    session.refresh(campaign)
    if campaign.status == "active":
        raise CampaignError("pause or archive the campaign before deleting it")
    campaign_store.delete_campaign(session, campaign)


def duplicate_campaign(
    session: Session, campaign: Campaign, *, name: str | None = None, now: datetime | None = None
) -> tuple[Campaign, str]:
    """A draft copy (recipe and secrets copied, a fresh signing secret, health reset)."""
    now = now or utcnow()
    copy = Campaign(
        workspace_id=campaign.workspace_id,
        name=name or f"Copy of {campaign.name}"[:200],
        status="draft",
        trigger_type=campaign.trigger_type,
        trigger=dict(campaign.trigger or {}),
        audience=dict(campaign.audience or {}),
        frequency_cap=campaign.frequency_cap,
        channel=dict(campaign.channel or {}),
        channel_secrets=dict(campaign.channel_secrets) if campaign.channel_secrets else None,
        signing_secret=signing.generate_secret(),
        created_at=now,
        updated_at=now,
    )
    campaign_store.add_campaign(session, copy)
    return copy, copy.signing_secret


def rotate_secret(session: Session, campaign: Campaign, *, now: datetime | None = None) -> str:
    """A new signing secret; the old one keeps signing (second signature) for 24 h."""
    now = now or utcnow()
    secret = signing.generate_secret()
    campaign.previous_signing_secret = campaign.signing_secret
    campaign.previous_secret_expires_at = now + PREVIOUS_SECRET_TTL
    campaign.signing_secret = secret
    campaign.updated_at = now
    session.flush()
    return secret


def save_as_template(
    session: Session, campaign: Campaign, *, name: str | None = None, description: str = ""
) -> Template:
    """A template holding a copy of the campaign's channel (auth secrets, not the signing
    secret: every campaign made from it gets its own)."""
    template = Template(
        workspace_id=campaign.workspace_id,
        name=name or campaign.name,
        description=description,
        channel=dict(campaign.channel or {}),
        channel_secrets=dict(campaign.channel_secrets) if campaign.channel_secrets else None,
    )
    return template_store.add_template(session, template)


# -- templates --------------------------------------------------------------------------------


def create_template(
    session: Session, workspace_id: str, data: Mapping[str, Any], *, now: datetime | None = None
) -> Template:
    """A saved channel recipe: ``name``, ``description``, ``webhook``."""
    now = now or utcnow()
    template = Template(
        workspace_id=workspace_id,
        name=data["name"],
        description=data.get("description") or "",
        created_at=now,
        updated_at=now,
    )
    _set_channel(template, data.get("webhook") or {})
    return template_store.add_template(session, template)


def update_template(
    session: Session, template: Template, changes: Mapping[str, Any], *, now: datetime | None = None
) -> Template:
    """PATCH a template; campaigns made from it earlier are not affected (they hold copies)."""
    if "name" in changes:
        template.name = changes["name"]
    if "description" in changes:
        template.description = changes["description"] or ""
    if changes.get("webhook") is not None:
        _set_channel(template, merge_channel_patch(template.channel, changes["webhook"]))
    template.updated_at = now or utcnow()
    session.flush()
    return template
