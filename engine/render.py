"""Variables + a webhook channel recipe → one exact HTTP request (SPEC §3, §4). Pure code.

Encoding decisions, so quotes, newlines and unicode in data can never break a request:

- JSON bodies are written by ``json.dumps`` (compact, UTF-8, no NaN), never by string pasting.
- ``form`` bodies and GET query strings flatten nested objects into dotted keys
  (``{"lead": {"score": 5}}`` → ``lead.score=5``, the same names a mapping uses); lists are
  sent as JSON text, ``true``/``false`` as words, ``null`` as an empty value.
- A mapping field's ``fallback`` is a static value. It replaces a ``source`` that is missing,
  ``null`` or ``""``, and a ``value`` template that renders ``""`` or uses a missing variable.
- ``type`` casts: ``string`` (default for ``value``; objects/lists become JSON text),
  ``number``, ``boolean`` (``true/false/1/0/yes/no/on/off``), ``json`` (parses a string);
  a ``source`` without ``type`` keeps its JSON type; ``null`` stays ``null``.
- The request never includes ``User-Agent`` or ``webhook-*``: the sender adds those.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

from engine.netguard import IPNetwork, is_address_allowed, parse_host_literal, parse_networks
from engine.sandbox import (
    DEFAULT_TIME_LIMIT_SECONDS,
    MAX_OUTPUT_BYTES,
    MissingVariableError,
    RenderBudget,
    TemplateLimitError,
    render_template,
    to_json,
    wrap_variables,
)

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
_SECRET_HEADER = re.compile(r"authorization|cookie|token|secret|key|password|signature", re.I)
_SOURCE_PATH = re.compile(r"[^\s.]+(\.[^\s.]+)*")
_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BOOLEANS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


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


class RenderError(Exception):
    """A channel cannot be rendered with these variables; the notification fails, unretried."""

    code = "render_error"

    def __init__(self, message: str, *, location: str | None = None, variable: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.variable = variable

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": str(self),
            "location": self.location,
            "variable": self.variable,
        }


def _iso_utc(moment: datetime) -> str:
    global _last_iso
    last = _last_iso
    if last[0] is moment:  # a batch renders every row with the same ``now``
        return last[1]
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    text = aware.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_iso = (moment, text)
    return text


_last_iso: tuple[datetime | None, str] = (None, "")


def build_variables(
    *,
    contact: Mapping | None,
    event: Mapping | None,
    campaign: Mapping,
    workspace: Mapping,
    notification_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The template variables of SPEC §3; ``event`` is absent for schedule runs."""
    variables: dict[str, Any] = {
        "campaign": {"id": campaign.get("id"), "name": campaign.get("name")},
        "workspace": {"id": workspace.get("id"), "name": workspace.get("name")},
        "notification": {"id": notification_id},
        "now": _iso_utc(now),
    }
    if contact is not None:
        attributes = contact.get("attributes") or {}
        variables["contact"] = {
            "id": contact.get("id"),
            "external_id": contact.get("external_id"),
            **{k: v for k, v in attributes.items() if k not in ("id", "external_id")},
        }
    if event is not None:
        occurred_at = event.get("occurred_at")
        if isinstance(occurred_at, datetime):
            occurred_at = _iso_utc(occurred_at)
        variables["event"] = {
            "id": event.get("id"),
            "name": event.get("name"),
            "occurred_at": occurred_at,
            "properties": dict(event.get("properties") or {}),
        }
    return variables


def sample_variables(now: datetime | None = None) -> dict[str, Any]:
    """Realistic sample variables for builder previews and validation of raw JSON bodies."""
    return build_variables(
        contact={
            "id": "con_sample",
            "external_id": "lead-1042",
            "attributes": {
                "email": "ada@example.com",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "plan": "pro",
                "score": 87,
                "vip": True,
                "tags": ["beta", "newsletter"],
                "city": "Dublin",
            },
        },
        event={
            "id": "evt_sample",
            "name": "lead.status.update",
            "occurred_at": datetime(2026, 11, 22, 9, 58, tzinfo=UTC),
            "properties": {"status": "qualified", "score": 42, "source": "website"},
        },
        campaign={"id": "cmp_sample", "name": "Sample campaign"},
        workspace={"id": "wsp_sample", "name": "Sample workspace"},
        notification_id="ntf_sample",
        now=now or datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
    )


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


# -- checks shared with engine.channel --------------------------------------------------------


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
    """Refuses a host written as a literal private/reserved address unless allowed."""
    address = parse_host_literal(host)
    if address is not None and not is_address_allowed(address, settings.allowed_networks):
        return f"{host} is a private or reserved address (not in ALLOWED_NETWORKS)"
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


def header_value_problem(value: str) -> str | None:
    if _CONTROL.search(value):
        return "a header value must not contain line breaks or control characters"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "a header value can only hold Latin-1 characters (use | urlencode)"
    return None


def parse_source_path(path: Any) -> list[str] | None:
    """The segments of a mapping ``source`` path (``event.properties.score``), or None."""
    if not isinstance(path, str):
        return None
    segments = _split_source_path(path)
    return None if segments is None else list(segments)


@functools.lru_cache(maxsize=4096)
def _split_source_path(path: str) -> tuple[str, ...] | None:
    return tuple(path.split(".")) if _SOURCE_PATH.fullmatch(path) else None


def cast_value(value: Any, type_name: str | None) -> Any:
    """Cast a mapped value; raises ``ValueError`` with a human message."""
    if value is None or type_name is None:
        return value
    if type_name == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return to_json(value)
    if type_name == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            text = value.strip()
            number = int(text) if text.lstrip("-").isdigit() else float(text)
        else:
            raise ValueError(f"{_short(value)} is not a number")
        if isinstance(number, float) and number in (float("inf"), float("-inf")):
            raise ValueError(f"{_short(value)} is too large a number")
        return number
    if type_name == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
            return _BOOLEANS[value.strip().lower()]
        raise ValueError(f"{_short(value)} is not a boolean (true/false)")
    if type_name == "json":
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(f"{_short(value)} is not valid JSON") from None
    raise ValueError(f"unknown type {type_name!r}")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# -- rendering ----------------------------------------------------------------------------------


_CLEAN_ADDRESS = re.compile(r"<[^<>]* at 0x[0-9a-f]+>")


def _as_render_error(exc: BaseException, location: str) -> RenderError:
    if isinstance(exc, MissingVariableError):
        message = f"{exc.path} is missing and has no fallback (add | default(...))"
        return RenderError(message, location=location, variable=exc.path)
    if isinstance(exc, TemplateSyntaxError):
        return RenderError(f"template error on line {exc.lineno}: {exc.message}", location=location)
    if isinstance(exc, TemplateLimitError):
        return RenderError(str(exc), location=location)
    if isinstance(exc, SecurityError):
        return RenderError(f"not allowed in a template: {exc}", location=location)
    if isinstance(exc, RecursionError):
        return RenderError("the template calls itself too deeply", location=location)
    if isinstance(exc, (UndefinedError, TypeError, ValueError, ArithmeticError, LookupError)):
        detail = _CLEAN_ADDRESS.sub("an object", str(exc))[:200]
        return RenderError(f"the template could not be evaluated: {detail}", location=location)
    return RenderError("the template could not be evaluated", location=location)


def _render(source: Any, wrapped: Mapping[str, Any], location: str) -> str:
    if source is None:
        return ""
    if not isinstance(source, str):
        raise RenderError("must be text", location=location)
    if "{" not in source:
        return source
    try:
        return render_template(source, wrapped)
    except RenderError:
        raise
    except Exception as exc:  # every failure inside a template is the marketer's to fix
        raise _as_render_error(exc, location) from None


def render_request(
    channel: Mapping[str, Any],
    variables: Mapping[str, Any],
    settings: RenderSettings = RenderSettings(),
) -> RenderedRequest:
    """Render ``channel`` (SPEC §4 shape) with ``variables``; raises ``RenderError``."""
    wrapped = wrap_variables(variables)
    with RenderBudget(settings.time_limit_seconds):
        method = str(channel.get("method") or "POST").upper()
        if method not in METHODS:
            raise RenderError(f"method must be one of {', '.join(METHODS)}", location="method")
        content_type = channel.get("content_type") or "json"
        if content_type not in CONTENT_TYPES:
            raise RenderError("content_type must be json or form", location="content_type")

        url = _render(channel.get("url"), wrapped, "url").strip()
        problem = url_problem(url, settings)
        if problem:
            raise RenderError(problem, location="url")

        headers = _render_headers(channel, wrapped)
        body_text, query = _render_body(channel, method, content_type, variables, wrapped)

    if query:
        url = url.split("#", 1)[0]
        url += ("&" if "?" in url else "?") + query
        if len(url) > MAX_URL_LENGTH:
            raise RenderError("the URL with the mapped fields is too long", location="body")
    body = body_text.encode("utf-8")
    if len(body) > MAX_OUTPUT_BYTES:
        raise RenderError(
            f"the body is larger than {MAX_OUTPUT_BYTES // 1024} KiB", location="body"
        )
    if method != "GET":
        lowered = {name.lower() for name, _ in headers}
        if "content-type" not in lowered:
            headers.insert(0, ("Content-Type", CONTENT_TYPES[content_type]))
    return RenderedRequest(method, url, tuple(headers), body)


def _mapping(value: Any, location: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RenderError("must be an object", location=location)
    return value


def _render_headers(
    channel: Mapping[str, Any], wrapped: Mapping[str, Any]
) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    auth = _mapping(channel.get("auth"), "auth")
    auth_type = auth.get("type") or "none"
    for index, row in enumerate(channel.get("headers") or ()):
        name = _mapping(row, f"headers[{index}]").get("name")
        problem = header_name_problem(name)
        if problem is None and name.lower() in seen:
            problem = f"{name} appears twice"
        if problem is None and name.lower() == "authorization" and auth_type != "none":
            problem = "Authorization comes from auth; remove this header or set auth to none"
        if problem:
            raise RenderError(problem, location=f"headers[{index}].name")
        seen.add(name.lower())
        location = f"headers[{index}].value"
        value = _render(row.get("value"), wrapped, location).strip(" \t")
        problem = header_value_problem(value)
        if problem:
            raise RenderError(problem, location=location)
        headers.append((name, value))
    if auth_type == "basic":
        username = _render(auth.get("username"), wrapped, "auth.username")
        password = _render(auth.get("password"), wrapped, "auth.password")
        if ":" in username or _CONTROL.search(username):
            raise RenderError(
                "a basic auth username cannot contain ':' or control characters",
                location="auth.username",
            )
        if _CONTROL.search(password):
            raise RenderError("the password contains control characters", location="auth.password")
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        headers.append(("Authorization", f"Basic {token}"))
    elif auth_type == "bearer":
        token = _render(auth.get("token"), wrapped, "auth.token").strip()
        if not token or any(ch.isspace() for ch in token) or _CONTROL.search(token):
            raise RenderError("the bearer token is empty or contains spaces", location="auth.token")
        headers.append(("Authorization", f"Bearer {token}"))
    elif auth_type != "none":
        raise RenderError("auth.type must be none, basic or bearer", location="auth.type")
    return headers


def _render_body(
    channel: Mapping[str, Any],
    method: str,
    content_type: str,
    variables: Mapping[str, Any],
    wrapped: Mapping[str, Any],
) -> tuple[str, str]:
    """The body text and the query string to append (GET)."""
    body = _mapping(channel.get("body"), "body")
    mode = body.get("mode") or "default"
    if mode == "raw":
        if method == "GET":
            raise RenderError(
                "a GET request has no body; use mapping fields instead", location="body.mode"
            )
        text = _render(body.get("template"), wrapped, "body.template")
        if content_type == "json":
            try:
                json.loads(text)
            except ValueError as exc:
                raise RenderError(
                    f"the rendered body is not valid JSON ({exc})", location="body.template"
                ) from None
        return text, ""
    if mode == "default":
        payload = default_payload(variables)
    elif mode == "mapping":
        payload = _mapped_payload(body.get("fields") or (), variables, wrapped)
    else:
        raise RenderError("body.mode must be default, mapping or raw", location="body.mode")
    if method == "GET":
        return "", urlencode(flatten_for_form(payload))
    if content_type == "form":
        return urlencode(flatten_for_form(payload)), ""
    return to_json(payload), ""


def default_payload(variables: Mapping[str, Any]) -> dict[str, Any]:
    """The standard payload of body mode ``default``."""
    event = variables.get("event") or {}
    workspace = variables.get("workspace") or {}
    campaign = variables.get("campaign") or {}
    return {
        "id": (variables.get("notification") or {}).get("id"),
        "event": event.get("name"),
        "timestamp": variables.get("now"),
        "workspace_id": workspace.get("id"),
        "campaign": {"id": campaign.get("id"), "name": campaign.get("name")},
        "contact": variables.get("contact"),
        "data": event.get("properties") or {},
    }


_MISSING = object()


def resolve_source(variables: Mapping[str, Any], segments: Sequence[str]) -> Any:
    """The value at a source path, or ``_MISSING``; digit segments index lists."""
    value: Any = variables
    for segment in segments:
        if type(value) is dict or isinstance(value, Mapping):
            value = value.get(segment, _MISSING)
        elif isinstance(value, (list, tuple)) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _mapped_value(
    field: Mapping[str, Any], index: int, variables: Mapping, wrapped: Mapping
) -> tuple[Any, str | None]:
    has_fallback = "fallback" in field
    fallback = field.get("fallback")
    if "source" in field:
        location = f"body.fields[{index}].source"
        source = field["source"]
        segments = _split_source_path(source) if isinstance(source, str) else None
        if segments is None:
            raise RenderError(
                "source must be a variable path like contact.email", location=location
            )
        value = resolve_source(variables, segments)
        if value is _MISSING and not has_fallback:
            raise RenderError(
                f"{field['source']} is missing and has no fallback",
                location=location,
                variable=field["source"],
            )
        if has_fallback and (value is _MISSING or value is None or value == ""):
            value = fallback
        return value, field.get("type")
    location = f"body.fields[{index}].value"
    value = field.get("value")
    if isinstance(value, str):
        try:
            value = _render(value, wrapped, location)
        except RenderError as exc:
            if not (has_fallback and exc.variable):
                raise
            value = fallback
        if has_fallback and value == "":
            value = fallback
    elif value is None and has_fallback:
        value = fallback
    return value, field.get("type") or "string"


def _mapped_payload(fields: Any, variables: Mapping, wrapped: Mapping) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if not isinstance(fields, (list, tuple)):
        raise RenderError("mapping mode needs a list of fields", location="body.fields")
    for index, field in enumerate(fields):
        field = _mapping(field, f"body.fields[{index}]")
        value, type_name = _mapped_value(field, index, variables, wrapped)
        try:
            value = cast_value(value, type_name)
        except ValueError as exc:
            raise RenderError(
                f"cannot cast: {exc}", location=f"body.fields[{index}].type"
            ) from None
        name = field.get("name")
        if not isinstance(name, str) or not all(name.split(".")):
            raise RenderError(
                "a field name must be non-empty, like lead.score",
                location=f"body.fields[{index}].name",
            )
        _place(payload, name.split("."), value, f"body.fields[{index}].name")
    return payload


def _place(payload: dict[str, Any], segments: list[str], value: Any, location: str) -> None:
    target = payload
    for segment in segments[:-1]:
        target = target.setdefault(segment, {})
        if not isinstance(target, dict):
            raise RenderError(
                "this name nests under a field that already has a value", location=location
            )
    if segments[-1] in target:
        raise RenderError("two fields have this name (or one nests under it)", location=location)
    target[segments[-1]] = value


def _form_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return to_json(value)


def flatten_for_form(payload: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Form/query pairs: nested objects become dotted keys; lists become JSON text."""
    pairs: list[tuple[str, str]] = []
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            pairs.extend(flatten_for_form(value, f"{name}."))
        else:
            pairs.append((name, _form_text(value)))
    return pairs
