"""The data model: typed SQLAlchemy 2 declarative classes.

Every row below ``Workspace`` carries ``workspace_id``; queries always filter on it, which
is how workspaces stay isolated. Ids are prefixed ULIDs (see ``engine.ids``) so they sort by
creation time. Secrets live only in ``Encrypted*`` columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from engine.ids import new_id
from engine.store.types import EncryptedJSON, EncryptedText, PortableJSON, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("owner", "editor", "viewer")
#: ``full``: everything the API offers; ``events``: only ``POST /events`` and contact writes.
API_KEY_SCOPES = ("full", "events")
CAMPAIGN_STATUSES = ("draft", "active", "paused", "archived")
NOTIFICATION_STATUSES = (
    "pending",
    "sending",
    "retrying",
    "delivered",
    "failed",
    "held",
    "cancelled",
    "skipped",
)
#: Statuses whose notifications the worker still has to act on.
OPEN_STATUSES = ("pending", "sending", "retrying", "held")
ERROR_CODES = (
    "timeout",
    "connection_error",
    "dns_error",
    "tls_error",
    "http_status",
    "ssrf_blocked",
    "render_error",
    "response_too_large",
)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: PortableJSON}


def _id(prefix: str) -> Mapped[str]:
    return mapped_column(String(40), primary_key=True, default=lambda: new_id(prefix))


def _workspace_fk() -> Mapped[str]:
    return mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = _id("ws")
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = _id("usr")
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    #: Whether this user, as an owner, gets endpoint alerts by email (Settings → Account).
    alert_emails: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    __tablename__ = "memberships"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = _id("key")
    workspace_id: Mapped[str] = _workspace_fk()
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(20))  # first characters, for display
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(20), default="full", server_default="full")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class LoginSession(Base):
    """A signed-in browser. The cookie carries a random token; only its hash is stored, so
    the table cannot be read back into live sessions. ``workspace_id``: the workspace the
    user is working in (checked against their memberships on every request)."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = _id("ses")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="SET NULL")
    )
    client_address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginThrottle(Base):
    """Failed password checks counted per key, shared by every web process.

    ``key`` is a kind (``account``, ``address``, ``pair``) and a hash of the email and/or
    client address, so failed attempts leave no plain email addresses behind.
    """

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Activity(Base):
    """One entry of a workspace's activity log: who did what to which object, and when."""

    __tablename__ = "activity"
    __table_args__ = (
        Index("ix_activity_workspace", "workspace_id", "id"),
        Index("ix_activity_workspace_kind", "workspace_id", "kind", "id"),
        Index("ix_activity_workspace_user", "workspace_id", "user_id", "id"),
    )

    id: Mapped[str] = _id("act")
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: Who, as shown: the user's email, ``API key <name> (<prefix>…)`` or ``command line``.
    actor: Mapped[str] = mapped_column(String(400))
    kind: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "external_id"),
        # Schedule audiences page through a workspace's contacts by id (keyset).
        Index("ix_contacts_workspace_page", "workspace_id", "id"),
    )

    id: Mapped[str] = _id("con")
    workspace_id: Mapped[str] = _workspace_fk()
    external_id: Mapped[str] = mapped_column(String(255))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "client_id"),
        Index("ix_events_workspace_name", "workspace_id", "name"),
    )

    id: Mapped[str] = _id("evt")
    workspace_id: Mapped[str] = _workspace_fk()
    client_id: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    contact_id: Mapped[str | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Campaign(Base):
    """A campaign and its webhook channel.

    ``channel`` holds the recipe of SPEC §4 without secrets; ``channel_secrets`` holds the
    auth password/token (encrypted). The signing secret and its predecessor (valid for 24 h
    after a rotation) have columns of their own. Endpoint health lives here too.
    """

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_workspace_status", "workspace_id", "status"),)

    id: Mapped[str] = _id("cmp")
    workspace_id: Mapped[str] = _workspace_fk()
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    trigger_type: Mapped[str] = mapped_column(String(20), default="event")
    trigger: Mapped[dict[str, Any]] = mapped_column(default=dict)
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    frequency_cap: Mapped[dict[str, Any] | None]
    channel: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channel_secrets: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    signing_secret: Mapped[str] = mapped_column(EncryptedText)
    previous_signing_secret: Mapped[str | None] = mapped_column(EncryptedText)
    previous_secret_expires_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    webhook_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[datetime | None]
    #: When the campaign last became active: schedule fire times before it never run.
    activated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChannelState(Base):
    """How a campaign's webhook channel is being paced, shared by every worker process.

    ``rate_next_at``: the rate limit's next free send slot (a virtual clock that moves by
    one interval per send). ``paused_until`` with ``pause_reason`` (``retry_after``: the
    receiver answered 429; ``breaker``: it keeps timing out or refusing connections): no
    send starts before then, except the breaker's single probe. ``stalls`` and
    ``throttles`` count consecutive attempts that stalled / were answered 429. A channel
    that never needed pacing has no row.
    """

    __tablename__ = "channel_states"

    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    rate_next_at: Mapped[datetime | None]
    paused_until: Mapped[datetime | None]
    pause_reason: Mapped[str | None] = mapped_column(String(20))
    stalls: Mapped[int] = mapped_column(Integer, default=0)
    throttles: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WorkerHeartbeat(Base):
    """A live worker process: channels' ``max_concurrency`` is shared out among these."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class Template(Base):
    __tablename__ = "templates"

    id: Mapped[str] = _id("tpl")
    workspace_id: Mapped[str] = _workspace_fk()
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channel_secrets: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Notification(Base):
    """One webhook message: the outbox row the worker claims, and the log's row.

    ``request`` is the rendered request with secret header values masked (what the log
    shows); ``request_secrets`` holds those values encrypted. ``next_attempt_at`` is when
    the worker should next act: the due time while pending/retrying, the lease expiry while
    sending.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index(
            "ix_notifications_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'retrying', 'sending')"),
            sqlite_where=text("status IN ('pending', 'retrying', 'sending')"),
        ),
        Index("ix_notifications_log", "workspace_id", "id"),
        Index("ix_notifications_log_campaign", "workspace_id", "campaign_id", "id"),
        Index("ix_notifications_log_status", "workspace_id", "status", "id"),
        Index("ix_notifications_log_contact", "workspace_id", "contact_external_id", "id"),
        Index("ix_notifications_log_event", "workspace_id", "event_name", "id"),
        Index(  # test sends are rare: the log's "test only" filter must not scan the rest
            "ix_notifications_log_test",
            "workspace_id",
            "id",
            postgresql_where=text("test IS true"),  # as the log query spells it, so the
            sqlite_where=text("test IS 1"),  # planner matches the partial index
        ),
        Index("ix_notifications_campaign_status", "campaign_id", "status"),
        Index(  # fair claims: each channel's earliest due notification, one seek each
            "ix_notifications_open_by_campaign",
            "campaign_id",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'retrying', 'sending')"),
            sqlite_where=text("status IN ('pending', 'retrying', 'sending')"),
        ),
        Index("ix_notifications_cap", "campaign_id", "contact_id", "created_at"),
        Index("ix_notifications_created", "created_at"),
    )

    id: Mapped[str] = _id("msg")
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[str | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    contact_external_id: Mapped[str | None] = mapped_column(String(255))
    event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    event_name: Mapped[str | None] = mapped_column(String(255))
    schedule_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("schedule_runs.id", ondelete="SET NULL")
    )
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    reason: Mapped[str | None] = mapped_column(String(200))
    endpoint_host: Mapped[str | None] = mapped_column(String(255))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(100))
    request: Mapped[dict[str, Any] | None]
    request_secrets: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    delivered_at: Mapped[datetime | None]


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("notification_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    duration_ms: Mapped[int | None]
    status_code: Mapped[int | None]
    response_headers: Mapped[dict[str, Any] | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    response_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    #: The request this attempt sent (secrets masked) when it differs from the
    #: notification's: written when a retry renders the notification's request again, so
    #: the hot path stores nothing extra and every attempt still shows what it sent.
    request: Mapped[dict[str, Any] | None]


class ScheduleRun(Base):
    """One fire time of a schedule campaign; the unique key makes it run exactly once."""

    __tablename__ = "schedule_runs"
    __table_args__ = (
        UniqueConstraint("campaign_id", "fire_time"),
        # Every scheduler tick looks for stalled runs: only the running ones are indexed.
        Index(
            "ix_schedule_runs_running",
            "heartbeat_at",
            postgresql_where=text("status = 'running'"),
            sqlite_where=text("status = 'running'"),
        ),
    )

    id: Mapped[str] = _id("run")
    workspace_id: Mapped[str] = _workspace_fk()
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    fire_time: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="running")
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    #: While running: when the claimer last wrote a page (a stalled run is taken over),
    #: and the last contact id written (the resume point, pages go in contact id order).
    heartbeat_at: Mapped[datetime | None]
    last_contact_id: Mapped[str | None] = mapped_column(String(40))
    notification_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Of those, how many were skipped (frequency cap) and how many failed to render.
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_workspace_open", "workspace_id", "acknowledged_at"),)

    id: Mapped[str] = _id("alr")
    workspace_id: Mapped[str] = _workspace_fk()
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))  # failures_5, failures_10, failures_15, disabled
    message: Mapped[str] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(40))


#: ``trigger_type`` of a workspace's alerts webhook: a hidden channel that only carries
#: operational events (``endpoint.failing`` …), never listed or matched as a campaign.
OPERATIONAL_TRIGGER = "operational"
MAIL_STATUSES = ("pending", "sent", "failed")


class MailMessage(Base):
    """One email in the durable queue, written in the transaction that caused it.

    ``kind`` names its templates (``templates/mail/<kind>.*``) and ``params`` their values,
    encrypted (an invitation's or reset's link is in them); the worker renders and sends it.
    ``next_attempt_at`` is when it is due, or its lease's end while a worker sends it.
    """

    __tablename__ = "mail_messages"
    __table_args__ = (
        Index(
            "ix_mail_messages_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_mail_messages_workspace", "workspace_id", "status"),
    )

    id: Mapped[str] = _id("mail")
    workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(40))
    to_address: Mapped[str] = mapped_column(String(320))
    params: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    subject: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None]


class Invitation(Base):
    """An owner's invitation to join a workspace; only the link token's hash is stored."""

    __tablename__ = "invitations"

    id: Mapped[str] = _id("inv")
    workspace_id: Mapped[str] = _workspace_fk()
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class PasswordReset(Base):
    """A password reset link sent to a user; only the token's hash is stored."""

    __tablename__ = "password_resets"

    id: Mapped[str] = _id("pwr")
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class BulkJob(Base):
    """A background bulk action (e.g. retry all failed matching a filter) and its progress."""

    __tablename__ = "bulk_jobs"

    id: Mapped[str] = _id("job")
    workspace_id: Mapped[str] = _workspace_fk()
    kind: Mapped[str] = mapped_column(String(40))
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class BulkJobNotification(Base):
    """A notification a bulk retry job moved, so its page can say how they ended."""

    __tablename__ = "bulk_job_notifications"

    job_id: Mapped[str] = mapped_column(
        ForeignKey("bulk_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    notification_id: Mapped[str] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True, index=True
    )
