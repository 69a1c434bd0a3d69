"""What a channel recipe may hold (SPEC §4), and the checks of what a render produced.

Each ``*_problem`` function returns why a value cannot be used, or None; the builder's
validation (:mod:`engine.templating.channel`) and every render share them. The checks run
per render, so the costly parts are cached (per URL authority, per header name).
"""

from __future__ import annotations

import base64
import functools
import re
from typing import Any
from urllib.parse import urlsplit

from engine.netguard import is_address_allowed, parse_host_literal
from engine.templating.errors import GuardProblem, RenderError
from engine.templating.request import RenderSettings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CONTENT_TYPES = {"json": "application/json", "form": "application/x-www-form-urlencoded"}
AUTH_TYPES = ("none", "basic", "bearer")
BODY_MODES = ("default", "mapping", "raw")
FIELD_TYPES = ("string", "number", "boolean", "json")
RESERVED_HEADERS = frozenset(
    {"content-length", "host", "user-agent", "transfer-encoding", "connection"}
)
MAX_URL_LENGTH = 32 * 1024

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

_SOURCE_PATH = re.compile(r"[^\s.]+(\.[^\s.]+)*")

#: C0 controls but tab, DEL, and the C1 controls (U+0080-U+009F, e.g. U+0085 NEL, which
#: some HTTP stacks read as a line break).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def url_problem(url: str, settings: RenderSettings) -> str | None:
    """Why a rendered URL cannot be used, or None."""
    if not url:
        return "the URL is empty"
    if _CONTROL.search(url) or " " in url or "\t" in url:
        return "the URL contains spaces or control characters (use | urlencode on values)"
    if len(url) > MAX_URL_LENGTH:
        return f"the URL is longer than {MAX_URL_LENGTH // 1024} KiB"
    authority = _AUTHORITY.match(url)
    if authority is not None:  # the rest of the URL cannot change scheme, host or port
        return _authority_problem(authority.group(), settings)
    return _parts_problem(url, settings)


def url_host(url: str) -> str | None:
    """The host of a URL (lower case, as ``urlsplit`` gives it), cached per scheme+authority."""
    authority = _AUTHORITY.match(url)
    return _host(authority.group() if authority is not None else url)


#: ``scheme://authority`` at the start of a URL: ``urlsplit`` takes scheme, user, password,
#: host and port from this part alone (the checks above already refused spaces and controls).
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")


@functools.lru_cache(maxsize=1024)
def _authority_problem(authority: str, settings: RenderSettings) -> str | None:
    return _parts_problem(authority, settings)


@functools.lru_cache(maxsize=1024)
def _host(authority: str) -> str | None:
    return urlsplit(authority).hostname


def _parts_problem(url: str, settings: RenderSettings) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (validates the port)
    except ValueError as exc:
        return f"the URL is not valid ({exc})"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "the URL must be an absolute http:// or https:// URL"
    if settings.require_https and parts.scheme.lower() != "https":
        return "the URL must use https:// (REQUIRE_HTTPS is on)"
    if parts.username is not None or parts.password is not None:
        return "put credentials in auth, not in the URL"
    return host_problem(parts.hostname, settings)


def host_problem(host: str, settings: RenderSettings) -> str | None:
    """Refuses a host written as a literal private/reserved address unless allowed (a
    :class:`GuardProblem`: a render that meets it ends as ``ssrf_blocked``)."""
    address = parse_host_literal(host)
    if address is not None and not is_address_allowed(address, settings.allowed_networks):
        return GuardProblem(
            f"{host} is a private or reserved address, refused by the private-network guard "
            "(not in ALLOWED_NETWORKS)"
        )
    return None


def header_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a header row's name, or None."""
    if isinstance(name, str):
        return _header_name_problem(name)
    return "a header name must be a non-empty token (letters, digits, - and _ ...)"


@functools.lru_cache(maxsize=1024)
def _header_name_problem(name: str) -> str | None:
    if not _TOKEN.fullmatch(name):
        return "a header name must be a non-empty token (letters, digits, - and _ ...)"
    lowered = name.lower()
    if lowered in RESERVED_HEADERS or lowered.startswith("webhook-"):
        return f"{name} is set by Hookcast and cannot be a custom header"
    return None


def header_value_problem(value: str, name: str | None = None) -> str | None:
    """Why ``value`` cannot be sent as header ``name``'s value (C0 and C1 controls but tab,
    non-Latin-1 text), naming the header and the character; or None."""
    control = _CONTROL.search(value)
    header = f"the {name} header" if name else "a header value"
    if control:
        return (
            f"{header} must not contain line breaks or control characters "
            f"(found U+{ord(control.group()):04X})"
        )
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return f"{header} can only hold Latin-1 characters (use | urlencode)"
    return None


_TEMPLATE_TAGS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_TRIMMED_BEFORE = re.compile(r"\s+(?=\{[{%#]-)")
_TRIMMED_AFTER = re.compile(r"(?<=-[}%#]\})\s+")


def header_template_problem(template: str, name: str | None = None) -> str | None:
    """:func:`header_value_problem` of the text a header value template writes itself
    (outside its tags, less what ``{%-``/``-%}`` trim), so a control character typed into
    the recipe is refused when it is saved, not first when a notification renders."""
    text = _TRIMMED_AFTER.sub("", _TRIMMED_BEFORE.sub("", template))
    return header_value_problem(_TEMPLATE_TAGS.sub("", text).strip(" \t"), name)


def parse_source_path(path: Any) -> list[str] | None:
    """The segments of a mapping ``source`` path (``event.properties.score``), or None."""
    if not isinstance(path, str):
        return None
    segments = split_source_path(path)
    return None if segments is None else list(segments)


@functools.lru_cache(maxsize=4096)
def split_source_path(path: str) -> tuple[str, ...] | None:
    """The segments of a source path (cached), or None when it is not one."""
    return tuple(path.split(".")) if _SOURCE_PATH.fullmatch(path) else None


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` value for rendered basic-auth credentials."""
    if ":" in username or _CONTROL.search(username):
        raise RenderError(
            "a basic auth username cannot contain ':' or control characters",
            location="auth.username",
        )
    if _CONTROL.search(password):
        raise RenderError("the password contains control characters", location="auth.password")
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def bearer_authorization(token: str) -> str:
    """The ``Authorization`` value for a rendered bearer token."""
    token = token.strip()
    if not token or any(ch.isspace() for ch in token) or _CONTROL.search(token):
        raise RenderError("the bearer token is empty or contains spaces", location="auth.token")
    return f"Bearer {token}"
