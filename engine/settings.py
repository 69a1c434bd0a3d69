"""Engine settings: the part of the configuration the engine needs, as plain values.

The web layer reads configuration (defaults, ``instance/config.py``, ``HOOKCAST_*``) and
hands the engine an ``EngineSettings``; the engine never reads Flask's config itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.mail.smtp import SmtpConfig
from engine.netguard import IPNetwork, parse_networks


def parse_bool(value: Any) -> bool:
    """``1/0``, ``true/false``, ``yes/no``, ``on/off`` (any case) or a real bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def parse_positive_int(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be at least 1, got {number}")
    return number


@dataclass(frozen=True)
class EngineSettings:
    database_url: str
    require_https: bool = True
    allowed_networks: tuple[IPNetwork, ...] = ()
    sender_threads: int = 64
    retention_days: int = 30
    #: A login session ends after this long without a request, or this long after login.
    session_idle_hours: int = 12
    session_lifetime_days: int = 14
    #: Email: where it goes (unset: no email), who it is from, and the public URL of links.
    smtp: SmtpConfig | None = None
    mail_from: str = ""
    base_url: str = ""

    @property
    def mail_enabled(self) -> bool:
        return self.smtp is not None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EngineSettings:
        """Build from a Flask-style config mapping; raises ``ValueError`` naming a bad value."""
        smtp, mail_from, base_url = parse_mail(config)
        return cls(
            smtp=smtp,
            mail_from=mail_from,
            base_url=base_url,
            database_url=str(config["DATABASE_URL"]),
            require_https=parse_bool(config.get("REQUIRE_HTTPS", True)),
            allowed_networks=parse_networks(config.get("ALLOWED_NETWORKS") or ""),
            sender_threads=parse_positive_int("SENDER_THREADS", config.get("SENDER_THREADS", 64)),
            retention_days=parse_positive_int("RETENTION_DAYS", config.get("RETENTION_DAYS", 30)),
            session_idle_hours=parse_positive_int(
                "SESSION_IDLE_HOURS", config.get("SESSION_IDLE_HOURS", 12)
            ),
            session_lifetime_days=parse_positive_int(
                "SESSION_LIFETIME_DAYS", config.get("SESSION_LIFETIME_DAYS", 14)
            ),
        )


def parse_mail(config: Mapping[str, Any]) -> tuple[SmtpConfig | None, str, str]:
    """``SMTP_URL``, ``MAIL_FROM`` and ``BASE_URL``; with ``SMTP_URL`` set, the other two
    are required (a mail needs a sender, and its links a public address)."""
    base_url = str(config.get("BASE_URL") or "").strip().rstrip("/")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ValueError(f"BASE_URL must start with http:// or https://, got {base_url!r}")
    url = str(config.get("SMTP_URL") or "").strip()
    mail_from = str(config.get("MAIL_FROM") or "").strip()
    if not url:
        return None, mail_from, base_url
    smtp = SmtpConfig.parse(url)
    if "@" not in mail_from or "\n" in mail_from or "\r" in mail_from:
        raise ValueError("MAIL_FROM must be set to an email address when SMTP_URL is set")
    if not base_url:
        raise ValueError("BASE_URL must be set when SMTP_URL is set: links in emails need it")
    return smtp, mail_from, base_url
