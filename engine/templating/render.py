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
from engine.templating.sandbox import (
    DEFAULT_TIME_LIMIT_SECONDS,
    MAX_OUTPUT_BYTES,
    MissingVariableError,
    RenderBudget,
    TemplateLimitError,
    compiled_renderer,
    needs_render_budget,
    render_compiled,
    render_template,
    to_json,
    variables_read,
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


# -- checks shared with engine.templating.channel ---------------------------------------


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
    """Render ``channel`` (SPEC §4 shape) with ``variables``; raises ``RenderError``.

    The channel is compiled once per distinct recipe (see :func:`compile_channel`); a batch
    that renders one channel many times should call ``compile_channel`` itself.
    """
    try:
        key = _CHANNEL_KEY(channel)
    except (TypeError, ValueError):  # not plain JSON data: render it directly
        return _render_uncompiled(channel, variables, settings)
    return _cached_compile(key, settings).render(variables)


def _render_uncompiled(
    channel: Mapping[str, Any], variables: Mapping[str, Any], settings: RenderSettings
) -> RenderedRequest:
    """The reference renderer: reads the whole recipe on every call."""
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

    url = _with_query(url, query)
    body = _encoded_body(body_text)
    if method != "GET":
        lowered = {name.lower() for name, _ in headers}
        if "content-type" not in lowered:
            headers.insert(0, ("Content-Type", CONTENT_TYPES[content_type]))
    return RenderedRequest(method, url, tuple(headers), body)


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


def _with_query(url: str, query: str) -> str:
    """``url`` with mapped fields appended to its query string (GET requests)."""
    if not query:
        return url
    url = url.split("#", 1)[0]
    url += ("&" if "?" in url else "?") + query
    if len(url) > MAX_URL_LENGTH:
        raise RenderError("the URL with the mapped fields is too long", location="body")
    return url


def _encoded_body(body_text: str) -> bytes:
    body = body_text.encode("utf-8")
    if len(body) > MAX_OUTPUT_BYTES:
        raise RenderError(
            f"the body is larger than {MAX_OUTPUT_BYTES // 1024} KiB", location="body"
        )
    return body


def _cast_field(value: Any, type_name: str | None, index: int) -> Any:
    try:
        return cast_value(value, type_name)
    except ValueError as exc:
        raise RenderError(f"cannot cast: {exc}", location=f"body.fields[{index}].type") from None


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
        headers.append(("Authorization", basic_authorization(username, password)))
    elif auth_type == "bearer":
        token = _render(auth.get("token"), wrapped, "auth.token")
        headers.append(("Authorization", bearer_authorization(token)))
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
        value = _cast_field(value, type_name, index)
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
        nested = target.get(segment, {})
        if not isinstance(nested, dict):
            raise RenderError(
                "this name nests under a field that already has a value", location=location
            )
        # A dict placed by an earlier field may be the contact's or event's own data:
        # nest into a copy, so rendering never changes the variables it reads.
        target[segment] = nested = dict(nested)
        target = nested
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


# -- compiled channels --------------------------------------------------------------------------
#
# A channel is compiled once: method, content type, header names, auth, field names, source
# paths, casts and every static text are read and checked up front; a render only evaluates
# the templates and sources. Any problem found while compiling (an error every render would
# raise) makes the compiled channel use the reference renderer, so errors keep their order.

_CHANNEL_KEY = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_SOURCE, _TEMPLATE, _CONSTANT = 0, 1, 2


class _StaticProblem(Exception):
    """A problem every render of the channel would raise: use the reference renderer."""


def _text_part(source: Any) -> Any:
    """A static string, or ``(renderer, needs_budget)`` for a template; refuses non-text."""
    if source is None:
        return ""
    if not isinstance(source, str):
        raise _StaticProblem
    if "{" not in source:
        return source
    try:
        renderer = compiled_renderer(source)
    except Exception:  # a syntax error: every render fails the same way
        raise _StaticProblem from None
    return (renderer, needs_render_budget(renderer))


def _evaluate(part: Any, wrapped: Mapping[str, Any], location: str) -> str:
    if type(part) is str:
        return part
    try:
        return render_compiled(part[0], wrapped)
    except Exception as exc:  # every failure inside a template is the marketer's to fix
        raise _as_render_error(exc, location) from None


def _folded(renderer: Any, constants: Mapping[str, Any]) -> str | None:
    """The text of a template that reads only constants; None if it fails (each render
    then raises the error itself, in its place)."""
    try:
        return render_compiled(renderer, wrap_variables(constants))
    except Exception:
        return None


def _static_mapping(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _StaticProblem
    return value


class CompiledChannel:
    """One channel recipe read once; :meth:`render` gives what ``render_request`` gives.

    ``constants`` are top-level variables every render will pass unchanged (a batch's
    ``campaign`` and ``workspace``): simple templates that read only those are rendered once.
    """

    def __init__(
        self,
        channel: Mapping[str, Any],
        settings: RenderSettings,
        constants: Mapping[str, Any] | None = None,
    ) -> None:
        self._channel = channel
        self._settings = settings
        self._templates: list[Any] = []
        self._constants = constants or {}
        try:
            self._compile(channel, settings)
            self._reference = False
        except _StaticProblem:
            self._reference = True
        self._budget = any(type(p) is tuple and p[1] for p in self._templates)
        self._wrap = bool(self._templates)

    def _part(self, source: Any) -> Any:
        part = _text_part(source)
        if type(part) is tuple:
            names = variables_read(part[0])
            if names is not None and names <= self._constants.keys():
                text = _folded(part[0], self._constants)
                if text is not None:
                    return text
            self._templates.append(part)
        return part

    def _compile(self, channel: Mapping[str, Any], settings: RenderSettings) -> None:
        method = str(channel.get("method") or "POST").upper()
        content_type = channel.get("content_type") or "json"
        if method not in METHODS or content_type not in CONTENT_TYPES:
            raise _StaticProblem
        self._method, self._content_type = method, content_type
        self._url = self._part(channel.get("url"))
        if type(self._url) is str:
            self._url = self._url.strip()
            if url_problem(self._url, settings):
                raise _StaticProblem
        self._compile_headers(channel)
        self._compile_body(_static_mapping(channel.get("body")), method, content_type)
        names = {name.lower() for name, _, _ in self._headers}
        self._content_type_header = method != "GET" and "content-type" not in names

    def _compile_headers(self, channel: Mapping[str, Any]) -> None:
        auth = _static_mapping(channel.get("auth"))
        auth_type = auth.get("type") or "none"
        self._headers: list[tuple[str, Any, str]] = []
        seen: set[str] = set()
        for index, row in enumerate(channel.get("headers") or ()):
            name = _static_mapping(row).get("name")
            if header_name_problem(name) or name.lower() in seen:
                raise _StaticProblem
            if name.lower() == "authorization" and auth_type != "none":
                raise _StaticProblem
            seen.add(name.lower())
            value = self._part(row.get("value"))
            if type(value) is str:
                value = value.strip(" \t")
                if header_value_problem(value):
                    raise _StaticProblem
            self._headers.append((name, value, f"headers[{index}].value"))
        self._auth_type = auth_type
        if auth_type == "basic":
            self._auth = (self._part(auth.get("username")), self._part(auth.get("password")))
        elif auth_type == "bearer":
            self._auth = (self._part(auth.get("token")),)
        elif auth_type != "none":
            raise _StaticProblem
        if auth_type != "none" and all(type(p) is str for p in self._auth):
            try:  # static credentials: the Authorization header is a constant
                self._headers.append(("Authorization", _auth_header(auth_type, self._auth, {}), ""))
            except RenderError:
                raise _StaticProblem from None
            self._auth_type = "none"

    def _compile_body(self, body: Mapping[str, Any], method: str, content_type: str) -> None:
        mode = body.get("mode") or "default"
        self._mode = mode
        if mode == "raw":
            if method == "GET":
                raise _StaticProblem
            self._raw = self._part(body.get("template"))
            if type(self._raw) is str and content_type == "json":
                try:
                    json.loads(self._raw)
                except ValueError:
                    raise _StaticProblem from None
        elif mode == "mapping":
            self._fields = self._compile_fields(body.get("fields") or ())
        elif mode != "default":
            raise _StaticProblem

    def _compile_fields(self, fields: Any) -> list[tuple]:
        if not isinstance(fields, (list, tuple)):
            raise _StaticProblem
        compiled: list[tuple] = []
        names: list[str] = []
        for index, field in enumerate(fields):
            if not isinstance(field, Mapping):
                raise _StaticProblem
            name = field.get("name")
            if not isinstance(name, str) or not all(name.split(".")):
                raise _StaticProblem
            names.append(name)
            has_fallback, fallback = "fallback" in field, field.get("fallback")
            if "source" in field:
                source = field["source"]
                segments = _split_source_path(source) if isinstance(source, str) else None
                if segments is None:
                    raise _StaticProblem
                entry: tuple = (
                    _SOURCE,
                    segments,
                    source,
                    has_fallback,
                    fallback,
                    field.get("type"),
                )
            elif isinstance(field.get("value"), str) and "{" in field["value"]:
                entry = (
                    _TEMPLATE,
                    self._part(field["value"]),
                    has_fallback,
                    fallback,
                    field.get("type") or "string",
                )
            else:
                try:
                    value, type_name = _mapped_value(field, index, {}, {})
                    entry = (_CONSTANT, cast_value(value, type_name))
                except (RenderError, ValueError):
                    raise _StaticProblem from None
            compiled.append((entry, name.split("."), index))
        prefixes = {n.rsplit(".", depth)[0] for n in names for depth in range(1, n.count(".") + 1)}
        if len(set(names)) != len(names) or prefixes & set(names):
            raise _StaticProblem  # names that collide: _place decides, in order
        return compiled

    def render(self, variables: Mapping[str, Any]) -> RenderedRequest:
        """Render with ``variables``; raises ``RenderError`` exactly as ``render_request``."""
        if self._reference:
            return _render_uncompiled(self._channel, variables, self._settings)
        wrapped = wrap_variables(variables) if self._wrap else {}
        if self._budget:
            with RenderBudget(self._settings.time_limit_seconds):
                return self._render(variables, wrapped)
        return self._render(variables, wrapped)

    def _render(self, variables: Mapping[str, Any], wrapped: Mapping[str, Any]) -> RenderedRequest:
        url = self._url
        if type(url) is not str:
            url = _evaluate(url, wrapped, "url").strip()
            problem = url_problem(url, self._settings)
            if problem:
                raise RenderError(problem, location="url")
        headers = []
        for name, value, location in self._headers:
            if type(value) is not str:
                value = _evaluate(value, wrapped, location).strip(" \t")
                problem = header_value_problem(value)
                if problem:
                    raise RenderError(problem, location=location)
            headers.append((name, value))
        if self._auth_type != "none":
            headers.append(("Authorization", _auth_header(self._auth_type, self._auth, wrapped)))
        body_text, query = self._body(variables, wrapped)
        url = _with_query(url, query)
        body = _encoded_body(body_text)
        if self._content_type_header:
            headers.insert(0, ("Content-Type", CONTENT_TYPES[self._content_type]))
        return RenderedRequest(self._method, url, tuple(headers), body)

    def _body(self, variables: Mapping[str, Any], wrapped: Mapping[str, Any]) -> tuple[str, str]:
        if self._mode == "raw":
            text = _evaluate(self._raw, wrapped, "body.template")
            if type(self._raw) is not str and self._content_type == "json":
                try:
                    json.loads(text)
                except ValueError as exc:
                    raise RenderError(
                        f"the rendered body is not valid JSON ({exc})", location="body.template"
                    ) from None
            return text, ""
        if self._mode == "default":
            payload = default_payload(variables)
        else:
            payload = _compiled_payload(self._fields, variables, wrapped)
        if self._method == "GET":
            return "", urlencode(flatten_for_form(payload))
        if self._content_type == "form":
            return urlencode(flatten_for_form(payload)), ""
        return to_json(payload), ""


def _auth_header(auth_type: str, parts: tuple, wrapped: Mapping[str, Any]) -> str:
    if auth_type == "basic":
        username = _evaluate(parts[0], wrapped, "auth.username")
        password = _evaluate(parts[1], wrapped, "auth.password")
        return basic_authorization(username, password)
    return bearer_authorization(_evaluate(parts[0], wrapped, "auth.token"))


def _compiled_payload(fields: list[tuple], variables: Mapping, wrapped: Mapping) -> dict:
    payload: dict[str, Any] = {}
    for entry, segments, index in fields:
        kind = entry[0]
        if kind == _CONSTANT:
            value = entry[1]
        else:
            if kind == _SOURCE:
                _, path, source, has_fallback, fallback, type_name = entry
                value = resolve_source(variables, path)
                if value is _MISSING and not has_fallback:
                    raise RenderError(
                        f"{source} is missing and has no fallback",
                        location=f"body.fields[{index}].source",
                        variable=source,
                    )
                if has_fallback and (value is _MISSING or value is None or value == ""):
                    value = fallback
            else:
                _, part, has_fallback, fallback, type_name = entry
                try:
                    value = _evaluate(part, wrapped, f"body.fields[{index}].value")
                except RenderError as exc:
                    if not (has_fallback and exc.variable):
                        raise
                    value = fallback
                if has_fallback and value == "":
                    value = fallback
            if type_name is not None and value is not None:
                value = _cast_field(value, type_name, index)
        target = payload
        for segment in segments[:-1]:
            target = target.setdefault(segment, {})
        target[segments[-1]] = value
    return payload


def compile_channel(
    channel: Mapping[str, Any],
    settings: RenderSettings = RenderSettings(),
    *,
    constants: Mapping[str, Any] | None = None,
) -> CompiledChannel:
    """The channel read once for many renders (cached per recipe and settings).

    With ``constants`` (variables every render passes unchanged) the result is not cached:
    compile once per batch.
    """
    if constants:
        return CompiledChannel(channel, settings, constants)
    try:
        key = _CHANNEL_KEY(channel)
    except (TypeError, ValueError):
        return CompiledChannel(channel, settings)
    return _cached_compile(key, settings)


@functools.lru_cache(maxsize=256)
def _cached_compile(key: str, settings: RenderSettings) -> CompiledChannel:
    """Compiled from the key's own copy, so a caller mutating its dict cannot reach it."""
    return CompiledChannel(json.loads(key), settings)
