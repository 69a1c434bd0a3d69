"""Engine settings: the part of the configuration the engine needs, as plain values.

The web layer reads configuration (defaults, ``instance/config.py``, ``HOOKCAST_*``) and
hands the engine an ``EngineSettings``; the engine never reads Flask's config itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EngineSettings:
        """Build from a Flask-style config mapping; raises ``ValueError`` naming a bad value."""
        return cls(
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
