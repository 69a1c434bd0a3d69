"""What a render takes and gives: the settings it reads, and one exact request.

A rendered request never includes ``User-Agent`` or ``webhook-*`` headers: the sender adds
those. Its snapshot for the log masks every header that looks secret.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.netguard import IPNetwork, parse_networks
from engine.templating.limits import DEFAULT_TIME_LIMIT_SECONDS

_SECRET_HEADER = re.compile(r"authorization|cookie|token|secret|key|password|signature", re.I)


@dataclass(frozen=True)
class RenderSettings:
    """What rendering needs from the configuration (``REQUIRE_HTTPS``, ``ALLOWED_NETWORKS``)."""

    require_https: bool = True
    allowed_networks: tuple[IPNetwork, ...] = ()
    time_limit_seconds: float = DEFAULT_TIME_LIMIT_SECONDS

    @classmethod
    def from_settings(cls, settings: Any) -> RenderSettings:
        """From anything with ``require_https`` and ``allowed_networks`` (``EngineSettings``)."""
        networks = settings.allowed_networks
        if isinstance(networks, str):
            networks = parse_networks(networks)
        return cls(require_https=bool(settings.require_https), allowed_networks=tuple(networks))


@functools.lru_cache(maxsize=1024)
def _is_secret_header(name: str) -> bool:
    return _SECRET_HEADER.search(name) is not None


def _mask(name: str, value: str) -> str:
    scheme, _, rest = value.partition(" ")
    if name.lower() == "authorization" and rest and scheme.lower() in ("basic", "bearer"):
        return f"{scheme} ****"
    return "****"


@dataclass(frozen=True)
class RenderedRequest:
    """One exact request: ready for the transport, and (masked) the stored snapshot."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def masked(self) -> dict[str, Any]:
        headers = [
            {"name": name, "value": _mask(name, value) if _is_secret_header(name) else value}
            for name, value in self.headers
        ]
        return {
            "method": self.method,
            "url": self.url,
            "headers": headers,
            "body": self.body.decode("utf-8", errors="replace"),
        }

    def secret_headers(self) -> dict[str, str]:
        return {name: value for name, value in self.headers if _is_secret_header(name)}

    @classmethod
    def from_snapshot(
        cls, snapshot: Mapping[str, Any], secret_headers: Mapping[str, str]
    ) -> RenderedRequest:
        headers = tuple(
            (h["name"], secret_headers[h["name"]] if _is_secret_header(h["name"]) else h["value"])
            for h in snapshot["headers"]
        )
        return cls(
            str(snapshot["method"]),
            str(snapshot["url"]),
            headers,
            str(snapshot.get("body") or "").encode("utf-8"),
        )
