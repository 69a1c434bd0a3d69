"""Channel recipe + variables → one exact request: every body mode, content type and method."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from engine.netguard import parse_networks
from engine.templating import checks
from engine.templating.body import flatten_for_form
from engine.templating.checks import METHODS, url_host, url_problem
from engine.templating.errors import RenderError
from engine.templating.render import compile_channel, render_request
from engine.templating.request import RenderedRequest, RenderSettings
from engine.templating.variables import build_variables, sample_variables

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
URL = "https://hooks.example.com/in"


def make_variables(**attributes: Any) -> dict[str, Any]:
    return build_variables(
        contact={
            "id": "con_1",
            "external_id": "lead-1",
            "attributes": {"first_name": "Ann", **attributes},
        },
        event={
            "id": "evt_1",
            "name": "lead.create",
            "occurred_at": NOW,
            "properties": {"score": 7},
        },
        campaign={"id": "cmp_1", "name": "Spring"},
        workspace={"id": "wsp_1", "name": "Acme"},
        notification_id="ntf_1",
        now=NOW,
    )


def make_channel(**overrides: Any) -> dict[str, Any]:
    return {"url": URL, "method": "POST", "content_type": "json", **overrides}


def render(channel: dict[str, Any], variables: dict[str, Any] | None = None, **settings: Any):
    return render_request(channel, variables or make_variables(), RenderSettings(**settings))


def render_error(
    channel: dict[str, Any],
    variables: dict | None = None,
    code: str = "render_error",
    **settings: Any,
):
    with pytest.raises(RenderError) as caught:
        render(channel, variables, **settings)
    error = caught.value
    assert error.code == code
    assert "Traceback" not in str(error) and " at 0x" not in str(error)
    return error


def decoded(request: RenderedRequest, content_type: str) -> Any:
    """The data a receiver sees: JSON body, form body, or the query string for GET."""
    if request.method == "GET":
        assert request.body == b""
        return dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
    if content_type == "form":
        return dict(parse_qsl(request.body.decode(), keep_blank_values=True, strict_parsing=True))
    return json.loads(request.body)


MAPPING_FIELDS = [
    {"name": "email", "source": "contact.email", "fallback": "unknown@example.com"},
    {"name": "campaign_name", "source": "campaign.name"},
    {"name": "source", "value": "webhook"},
    {"name": "lead.score", "source": "event.properties.score", "type": "number"},
    {"name": "lead.greeting", "value": "Hi {{ contact.first_name }}"},
]
MAPPED = {
    "email": "unknown@example.com",
    "campaign_name": "Spring",
    "source": "webhook",
    "lead": {"score": 7, "greeting": "Hi Ann"},
}
DEFAULT_PAYLOAD = {
    "id": "ntf_1",
    "event": "lead.create",
    "timestamp": "2026-11-22T10:00:00Z",
    "workspace_id": "wsp_1",
    "campaign": {"id": "cmp_1", "name": "Spring"},
    "contact": {"id": "con_1", "external_id": "lead-1", "first_name": "Ann"},
    "data": {"score": 7},
}
RAW = {
    "json": '{"name": {{ contact.first_name | tojson }}, "n": {{ event.properties.score }}}',
    "form": "name={{ contact.first_name | urlencode }}&n={{ event.properties.score }}",
}
RAW_DATA = {"json": {"name": "Ann", "n": 7}, "form": {"name": "Ann", "n": "7"}}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("content_type", ["json", "form"])
@pytest.mark.parametrize("mode", ["default", "mapping", "raw"])
def test_every_body_mode_content_type_and_method(mode: str, content_type: str, method: str) -> None:
    body = {
        "default": {"mode": "default"},
        "mapping": {"mode": "mapping", "fields": MAPPING_FIELDS},
        "raw": {"mode": "raw", "template": RAW[content_type]},
    }[mode]
    channel = make_channel(method=method, content_type=content_type, body=body)
    if mode == "raw" and method == "GET":
        assert render_error(channel).location == "body.mode"
        return
    request = render(channel)
    assert request.method == method
    headers = dict(request.headers)
    if method == "GET":
        assert "Content-Type" not in headers
    else:
        expected_type = {"json": "application/json", "form": "application/x-www-form-urlencoded"}
        assert headers["Content-Type"] == expected_type[content_type]
    expected = {"default": DEFAULT_PAYLOAD, "mapping": MAPPED, "raw": RAW_DATA[content_type]}[mode]
    if method == "GET" or (content_type == "form" and mode != "raw"):
        expected = dict(flatten_for_form(expected))
    assert decoded(request, content_type) == expected


def test_form_flattens_nested_objects_to_dotted_keys_and_lists_to_json() -> None:
    fields = [
        {"name": "a.b.c", "value": 1, "type": "number"},
        {"name": "tags", "source": "contact.tags"},
        {"name": "vip", "source": "contact.vip"},
        {"name": "none", "source": "contact.none"},
    ]
    variables = make_variables(tags=["x", "y"], vip=True, none=None)
    channel = make_channel(content_type="form", body={"mode": "mapping", "fields": fields})
    assert decoded(render(channel, variables), "form") == {
        "a.b.c": "1",
        "tags": '["x","y"]',
        "vip": "true",
        "none": "",
    }


def test_get_appends_mapped_fields_to_the_existing_query() -> None:
    fields = [{"name": "q", "value": "a b&c"}]
    channel = make_channel(
        url=URL + "?key=1#frag", method="GET", body={"mode": "mapping", "fields": fields}
    )
    assert render(channel).url == URL + "?key=1&q=a+b%26c"


# -- fallbacks ------------------------------------------------------------------------------------

FALLBACK_CASES = [
    # (stored attribute, field has fallback, expected value or the error variable)
    ("missing", False, RenderError),
    ("missing", True, "fb"),
    (None, False, None),
    (None, True, "fb"),
    ("", False, ""),
    ("", True, "fb"),
    ("Ann", False, "Ann"),
    ("Ann", True, "Ann"),
    (0, True, 0),
    (False, True, False),
]


@pytest.mark.parametrize(("stored", "has_fallback", "expected"), FALLBACK_CASES)
def test_source_fallbacks(stored: Any, has_fallback: bool, expected: Any) -> None:
    attributes = {} if stored == "missing" else {"nick": stored}
    field: dict[str, Any] = {"name": "nick", "source": "contact.nick"}
    if has_fallback:
        field["fallback"] = "fb"
    channel = make_channel(body={"mode": "mapping", "fields": [field]})
    variables = make_variables(**attributes)
    if expected is RenderError:
        error = render_error(channel, variables)
        assert (error.location, error.variable) == ("body.fields[0].source", "contact.nick")
        assert "contact.nick" in str(error)
    else:
        assert json.loads(render(channel, variables).body) == {"nick": expected}


@pytest.mark.parametrize(("stored", "has_fallback", "expected"), FALLBACK_CASES[:8])
def test_template_fallbacks(stored: Any, has_fallback: bool, expected: Any) -> None:
    attributes = {} if stored == "missing" else {"nick": stored}
    template = '{{ contact.nick | default("fb") }}' if has_fallback else "{{ contact.nick }}"
    channel = make_channel(headers=[{"name": "X-Nick", "value": template}])
    variables = make_variables(**attributes)
    if expected is RenderError:
        error = render_error(channel, variables)
        assert (error.location, error.variable) == ("headers[0].value", "contact.nick")
    else:
        assert dict(render(channel, variables).headers)["X-Nick"] == (expected or "")


@pytest.mark.parametrize(
    ("value", "fallback", "expected"),
    [
        ("Hi {{ contact.nick }}", "Hi there", "Hi there"),
        ("{{ contact.empty }}", "none", "none"),
        ("{{ contact.first_name }}", "none", "Ann"),
        (None, "none", "none"),
    ],
)
def test_value_field_fallback(value: Any, fallback: Any, expected: Any) -> None:
    fields = [{"name": "v", "value": value, "fallback": fallback}]
    request = render(
        make_channel(body={"mode": "mapping", "fields": fields}), make_variables(empty="")
    )
    assert json.loads(request.body) == {"v": expected}


def test_missing_event_on_schedule_runs() -> None:
    variables = build_variables(
        contact={"id": "c", "external_id": "x", "attributes": {}},
        event=None,
        campaign={"id": "cmp", "name": "n"},
        workspace={"id": "w", "name": "n"},
        notification_id="ntf",
        now=NOW,
    )
    payload = json.loads(render(make_channel(), variables).body)
    assert (payload["event"], payload["data"]) == (None, {})
    error = render_error(make_channel(url=URL + "/{{ event.name }}"), variables)
    assert (error.location, error.variable) == ("url", "event.name")
    ok = render(make_channel(url=URL + "/{{ event.name | default('none') }}"), variables)
    assert ok.url == URL + "/none"


# -- casts and nesting -------------------------------------------------------------------------

CASTS = [
    ("42", "number", 42),
    ("-4.5", "number", -4.5),
    (" 7 ", "number", 7),
    (3, "number", 3),
    ("abc", "number", RenderError),
    ("", "number", RenderError),
    ("1e999", "number", RenderError),
    (True, "number", RenderError),
    ("true", "boolean", True),
    ("No", "boolean", False),
    (1, "boolean", True),
    ("maybe", "boolean", RenderError),
    (12, "string", "12"),
    (False, "string", "false"),
    ({"a": 1}, "string", '{"a":1}'),
    ('{"a": [1, 2]}', "json", {"a": [1, 2]}),
    ("not json", "json", RenderError),
    ([1], "json", [1]),
    (None, "number", None),
]


@pytest.mark.parametrize(("stored", "type_name", "expected"), CASTS)
def test_casts(stored: Any, type_name: str, expected: Any) -> None:
    fields = [{"name": "v", "source": "contact.v", "type": type_name}]
    channel = make_channel(body={"mode": "mapping", "fields": fields})
    if expected is RenderError:
        assert render_error(channel, make_variables(v=stored)).location == "body.fields[0].type"
    else:
        assert json.loads(render(channel, make_variables(v=stored)).body) == {"v": expected}


def test_value_templates_default_to_string_and_sources_keep_their_type() -> None:
    fields = [
        {"name": "templated", "value": "{{ event.properties.score }}"},
        {"name": "sourced", "source": "event.properties.score"},
        {"name": "static", "value": 5},
        {"name": "whole", "source": "event.properties"},
        {"name": "listed", "source": "contact.tags.1"},
    ]
    request = render(
        make_channel(body={"mode": "mapping", "fields": fields}), make_variables(tags=["a", "b"])
    )
    assert json.loads(request.body) == {
        "templated": "7",
        "sourced": 7,
        "static": "5",
        "whole": {"score": 7},
        "listed": "b",
    }


@pytest.mark.parametrize(
    ("names", "location"),
    [
        (["a", "a"], "body.fields[1].name"),
        (["a", "a.b"], "body.fields[1].name"),
        (["a.b", "a"], "body.fields[1].name"),
        (["a..b"], "body.fields[0].name"),
    ],
)
def test_conflicting_field_names(names: list[str], location: str) -> None:
    fields = [{"name": name, "value": "x"} for name in names]
    assert (
        render_error(make_channel(body={"mode": "mapping", "fields": fields})).location == location
    )


def test_dotted_names_nest_deeply() -> None:
    fields = [
        {"name": "a.b.c", "value": "1"},
        {"name": "a.b.d", "value": "2"},
        {"name": "a.e", "value": "3"},
    ]
    body = render(make_channel(body={"mode": "mapping", "fields": fields})).body
    assert json.loads(body) == {"a": {"b": {"c": "1", "d": "2"}, "e": "3"}}


# -- data that tries to break the body -------------------------------------------------------------

NASTY = [
    'say "hi"',
    "it's",
    "line\nbreak\r\n",
    "tab\t",
    "emoji 🎉🚀",
    "</script><script>x</script>",
    "back\\slash",
    "a=b&c=d",
    "100% +1",
    "\u2028\u2029",
    "ünïcödé",
]


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("content_type", ["json", "form"])
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_nasty_data_never_breaks_the_body(text: str, content_type: str, method: str) -> None:
    fields = [
        {"name": "raw", "source": "contact.bio"},
        {"name": "tpl", "value": "<{{ contact.bio }}>"},
    ]
    channel = make_channel(
        method=method, content_type=content_type, body={"mode": "mapping", "fields": fields}
    )
    request = render(channel, make_variables(bio=text))
    assert decoded(request, content_type) == {"raw": text, "tpl": f"<{text}>"}


@pytest.mark.parametrize("text", NASTY)
def test_nasty_data_in_raw_json_with_tojson_and_default_payload(text: str) -> None:
    raw = make_channel(body={"mode": "raw", "template": '{"bio": {{ contact.bio | tojson }}}'})
    assert json.loads(render(raw, make_variables(bio=text)).body) == {"bio": text}
    payload = json.loads(render(make_channel(), make_variables(bio=text)).body)
    assert payload["contact"]["bio"] == text


def test_raw_json_must_parse() -> None:
    channel = make_channel(body={"mode": "raw", "template": '{"bio": "{{ contact.bio }}"}'})
    error = render_error(channel, make_variables(bio='a "quoted" word'))
    assert error.location == "body.template"
    assert "not valid JSON" in error.message


# -- URL, headers and auth -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "settings", "ok"),
    [
        ("https://api.example.com/x", {}, True),
        ("http://api.example.com/x", {}, False),
        ("http://api.example.com/x", {"require_https": False}, True),
        ("/relative", {}, False),
        ("ftp://api.example.com/", {}, False),
        ("https://user:pw@api.example.com/", {}, False),
        ("https://10.0.0.5/hook", {}, "ssrf_blocked"),
        ("https://127.0.0.1/hook", {}, "ssrf_blocked"),
        ("https://[::1]/hook", {}, "ssrf_blocked"),
        ("https://[::ffff:127.0.0.1]/hook", {}, "ssrf_blocked"),
        ("https://0x7f.1/hook", {}, "ssrf_blocked"),
        ("https://2130706433/hook", {}, "ssrf_blocked"),
        ("https://169.254.169.254/latest/meta-data", {}, "ssrf_blocked"),
        ("https://127.0.0.1:8443/hook", {"allowed_networks": parse_networks("127.0.0.0/8")}, True),
        ("https://[::127.0.0.1]/hook", {}, "ssrf_blocked"),
        ("https://[64:ff9b::a9fe:a9fe]/hook", {}, "ssrf_blocked"),
        ("https://[2002:c0a8:101::1]/hook", {}, "ssrf_blocked"),
        ("https://[64:ff9b::808:808]/hook", {}, True),
        ("https://{{ contact.host }}/hook", {}, "ssrf_blocked"),
        ("https://api.example.com/{{ contact.first_name }} x", {}, False),
        ("https://api.example.com/\r\nHost: evil", {}, False),
        ("https://api.example.com:99999/", {}, False),
    ],
)
def test_url_rules(url: str, settings: dict[str, Any], ok: bool | str) -> None:
    channel = make_channel(url=url)
    variables = make_variables(host="192.168.1.1")
    if ok is True:
        assert render(channel, variables, **settings).url == url
    else:
        code = ok or "render_error"
        assert render_error(channel, variables, code, **settings).location == "url"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/x?a=1#f",
        "HTTPS://API.Example.com:8443/x",
        "http://api.example.com",
        "https://user:pw@api.example.com/x",
        "https://[::1]/x",
        "https://[::1/x",
        "https://api.example.com:99999/x",
        "https://api.example.com:port/x",
        "https://10.0.0.5?x=https://api.example.com",
        "https://127.0.0.1:8443/hook",
        "ftp://api.example.com/",
        "https:///nohost",
        "mailto:ada@example.com",
    ],
)
def test_url_checks_cached_per_authority_match_a_full_parse(url: str) -> None:
    """Scheme, host and port are checked once per ``scheme://authority`` prefix."""
    settings = RenderSettings(allowed_networks=parse_networks("127.0.0.0/8"))
    for _ in range(2):  # the second call answers from the cache
        assert url_problem(url, settings) == checks._parts_problem(url, settings)
    if url_problem(url, settings) is None:
        assert url_host(url) == urlsplit(url).hostname


def test_url_with_urlencode_filter() -> None:
    channel = make_channel(url=URL + "/{{ contact.external_id | urlencode }}")
    variables = make_variables()
    variables["contact"]["external_id"] = "a/../b c?"
    assert render(channel, variables).url == URL + "/a%2F..%2Fb%20c%3F"


@pytest.mark.parametrize(
    "evil",
    [
        "x\r\nX-Injected: 1",
        "x\nX-Injected: 1",
        "x\rY",
        "x\x00y",
        "x\x7fy",
        "x\x85X-Injected: 1",  # C1 NEL
        "x\x9by",  # C1 CSI
        "x\x80y",
        "🎉",
    ],
)
def test_header_injection_is_refused(evil: str) -> None:
    channel = make_channel(headers=[{"name": "X-Name", "value": "{{ contact.evil }}"}])
    error = render_error(channel, make_variables(evil=evil))
    assert error.location == "headers[0].value"
    assert "X-Name header" in error.message
    compiled = compile_channel(channel, RenderSettings())
    with pytest.raises(RenderError, match="X-Name header"):
        compiled.render(make_variables(evil=evil))


def test_latin_1_text_that_is_not_a_control_character_is_sent() -> None:
    channel = make_channel(headers=[{"name": "X-Name", "value": "{{ contact.evil }}"}])
    request = render(channel, make_variables(evil="caf\xe9 \xa0\xff\ttab"))
    assert dict(request.headers)["X-Name"] == "caf\xe9 \xa0\xff\ttab"


@pytest.mark.parametrize(
    ("auth", "location"),
    [
        ({"type": "basic", "username": "{{ contact.evil }}", "password": "p"}, "auth.username"),
        ({"type": "basic", "username": "a:b", "password": "p"}, "auth.username"),
        ({"type": "basic", "username": "u", "password": "{{ contact.evil }}"}, "auth.password"),
        ({"type": "bearer", "token": "{{ contact.evil }}"}, "auth.token"),
        ({"type": "bearer", "token": ""}, "auth.token"),
    ],
)
def test_auth_injection_is_refused(auth: dict[str, str], location: str) -> None:
    channel = make_channel(auth=auth)
    assert render_error(channel, make_variables(evil="x\r\nX: 1")).location == location


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "content-length",
        "User-Agent",
        "webhook-id",
        "Webhook-Signature",
        "Transfer-Encoding",
        "bad name",
        "X:Y",
        "",
        "X-\u00e9",
    ],
)
def test_reserved_and_invalid_header_names(name: str) -> None:
    channel = make_channel(headers=[{"name": name, "value": "v"}])
    assert render_error(channel).location == "headers[0].name"


def test_authorization_header_conflicts_with_auth() -> None:
    channel = make_channel(
        auth={"type": "bearer", "token": "t"}, headers=[{"name": "Authorization", "value": "x"}]
    )
    assert render_error(channel).location == "headers[0].name"


def test_basic_and_bearer_auth_headers_and_masked_snapshot() -> None:
    basic = make_channel(
        auth={"type": "basic", "username": "{{ campaign.id }}", "password": "pä:ss"},
        headers=[
            {"name": "X-Api-Key", "value": "k-123"},
            {"name": "X-Plain", "value": "{{ now }}"},
        ],
    )
    request = render(basic)
    headers = dict(request.headers)
    scheme, _, token = headers["Authorization"].partition(" ")
    assert scheme == "Basic" and base64.b64decode(token).decode() == "cmp_1:pä:ss"
    snapshot = request.masked()
    masked = {h["name"]: h["value"] for h in snapshot["headers"]}
    assert masked["Authorization"] == "Basic ****"
    assert masked["X-Api-Key"] == "****"
    assert masked["X-Plain"] == "2026-11-22T10:00:00Z"
    assert "k-123" not in json.dumps(snapshot) and token not in json.dumps(snapshot)
    assert request.secret_headers() == {
        "Authorization": headers["Authorization"],
        "X-Api-Key": "k-123",
    }
    restored = RenderedRequest.from_snapshot(
        json.loads(json.dumps(snapshot)), request.secret_headers()
    )
    assert restored == request

    bearer = render(make_channel(auth={"type": "bearer", "token": " {{ workspace.id }}-t "}))
    assert dict(bearer.headers)["Authorization"] == "Bearer wsp_1-t"
    assert bearer.masked()["headers"][-1]["value"] == "Bearer ****"


def test_custom_content_type_header_replaces_the_default() -> None:
    channel = make_channel(headers=[{"name": "Content-Type", "value": "application/vnd.api+json"}])
    headers = render(channel).headers
    assert [v for n, v in headers if n.lower() == "content-type"] == ["application/vnd.api+json"]


# -- bounds and escapes ----------------------------------------------------------------------------


def test_body_size_bound() -> None:
    fields = [{"name": "big", "source": "contact.big"}]
    channel = make_channel(body={"mode": "mapping", "fields": fields})
    assert render(channel, make_variables(big="x" * 200_000)).body
    assert render_error(channel, make_variables(big="x" * 270_000)).location == "body"
    raw = make_channel(body={"mode": "raw", "template": "{{ 'x' * 200000 }}{{ 'y' * 100000 }}"})
    assert "256 KiB" in render_error(raw).message


def test_time_bound() -> None:
    loop = "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}"
    channel = make_channel(headers=[{"name": "X-Slow", "value": loop * 10}])
    error = render_error(channel, time_limit_seconds=0.05)
    assert (error.location, "too long" in error.message) == ("headers[0].value", True)


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''|attr('format') }}",
        "{{ self._TemplateReference__context }}",
        "{{ lipsum.__globals__ }}",
        "{{ cycler }}",
        "{{ 'a' * 10**9 }}",
        "{{ x | nofilter }}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "{{ 1 / 0 }}",
        "{% include 'x' %}",
    ],
)
def test_escapes_and_failures_become_clean_render_errors(template: str) -> None:
    error = render_error(make_channel(body={"mode": "raw", "template": template}))
    assert error.location == "body.template"


# -- variables ------------------------------------------------------------------------------------


def test_build_variables() -> None:
    variables = build_variables(
        contact={"id": "con_1", "external_id": "x-1", "attributes": {"id": "spoof", "plan": "pro"}},
        event={"id": "e", "name": "a.b", "occurred_at": "2026-01-01T00:00:00Z", "properties": None},
        campaign={"id": "c", "name": "C"},
        workspace={"id": "w", "name": "W"},
        notification_id="n",
        now=datetime(2026, 11, 22, 11, 0, 0, 123456, tzinfo=UTC),
    )
    assert variables["contact"] == {"id": "con_1", "external_id": "x-1", "plan": "pro"}
    assert variables["event"]["properties"] == {}
    assert variables["now"] == "2026-11-22T11:00:00Z"
    assert variables["notification"] == {"id": "n"}
    assert make_variables()["event"]["occurred_at"] == "2026-11-22T10:00:00Z"


def test_sample_variables_render_the_spec_example() -> None:
    channel = {
        "url": "https://api.example.com/leads/{{ contact.external_id | urlencode }}",
        "method": "POST",
        "content_type": "json",
        "headers": [{"name": "X-Source", "value": "{{ campaign.name }}"}],
        "auth": {"type": "basic", "username": "api", "password": "s3cret"},
        "body": {"mode": "mapping", "fields": MAPPING_FIELDS[:4]},
    }
    request = render_request(channel, sample_variables())
    assert request.url == "https://api.example.com/leads/lead-1042"
    assert json.loads(request.body)["lead"] == {"score": 42}


# -- one render path: a recipe compiles once; a problem every render hits fails in its place ----

_FIELDS_OK = [
    {"name": "email", "source": "contact.email", "fallback": "none"},
    {"name": "lead.score", "source": "event.properties.score", "type": "string"},
    {"name": "lead.hi", "value": "Hi {{ contact.first_name }}", "type": "string"},
    {"name": "fixed", "value": "7", "type": "number"},
    {"name": "missing", "value": "{{ contact.nope }}", "fallback": "fb"},
]
_JSON = ("Content-Type", "application/json")
_FORM = ("Content-Type", "application/x-www-form-urlencoded")
_DEFAULT_BODY = json.dumps(DEFAULT_PAYLOAD, ensure_ascii=False, separators=(",", ":")).encode()
_MAPPED_QUERY = "email=none&lead.score=7&lead.hi=Hi+Ann&fixed=7&missing=fb"
_MISSING_NOPE = "contact.nope is missing and has no fallback (add | default(...))"


def _failed(message: str, location: str, variable: str | None = None) -> tuple:
    return ("error", message, location, variable)


RECIPE_CASES: list[tuple[dict[str, Any], Any]] = [
    (make_channel(), RenderedRequest("POST", URL, (_JSON,), _DEFAULT_BODY)),
    (make_channel(url=URL + "/{{ contact.external_id | urlencode }}"),
     RenderedRequest("POST", URL + "/lead-1", (_JSON,), _DEFAULT_BODY)),
    (make_channel(method="GET", body={"mode": "mapping", "fields": _FIELDS_OK}),
     RenderedRequest("GET", f"{URL}?{_MAPPED_QUERY}", (), b"")),
    (make_channel(content_type="form", body={"mode": "mapping", "fields": _FIELDS_OK}),
     RenderedRequest("POST", URL, (_FORM,), _MAPPED_QUERY.encode())),
    (make_channel(body={"mode": "mapping", "fields": _FIELDS_OK}),
     RenderedRequest("POST", URL, (_JSON,), b'{"email":"none","lead":{"score":"7","hi":"Hi Ann"},'
                                            b'"fixed":7,"missing":"fb"}')),
    (make_channel(body={"mode": "raw", "template": '{"a": {{ contact.first_name | tojson }}}'}),
     RenderedRequest("POST", URL, (_JSON,), b'{"a": "Ann"}')),
    (make_channel(body={"mode": "raw", "template": "{{ contact.first_name }}"}),
     _failed("the rendered body is not valid JSON (Expecting value: line 1 column 1 (char 0))",
             "body.template")),
    (make_channel(body={"mode": "raw", "template": "{% for x in range(3) %}{{ x }}{% endfor %}"}),
     _failed("the rendered body is not valid JSON (Extra data: line 1 column 2 (char 1))",
             "body.template")),
    (make_channel(auth={"type": "basic", "username": "u", "password": "p"}),
     RenderedRequest("POST", URL, (_JSON, ("Authorization", "Basic dTpw")), _DEFAULT_BODY)),
    (make_channel(auth={"type": "basic", "username": "{{ contact.id }}", "password": "p"}),
     RenderedRequest("POST", URL, (_JSON, ("Authorization", "Basic Y29uXzE6cA==")),
                     _DEFAULT_BODY)),
    (make_channel(auth={"type": "bearer", "token": "{{ contact.first_name }} x"}),
     _failed("the bearer token is empty or contains spaces", "auth.token")),
    (make_channel(auth={"type": "bearer", "token": ""}),
     _failed("the bearer token is empty or contains spaces", "auth.token")),
    (make_channel(auth={"type": "magic"}),
     _failed("auth.type must be none, basic or bearer", "auth.type")),
    (make_channel(headers=[{"name": "X-A", "value": "{{ contact.first_name }}"},
                           {"name": "Content-Type", "value": "text/plain"}]),
     RenderedRequest("POST", URL, (("X-A", "Ann"), ("Content-Type", "text/plain")),
                     _DEFAULT_BODY)),
    (make_channel(headers=[{"name": "X-A", "value": "{{ contact.nope }}"},
                           {"name": "X-A", "value": "1"}]),
     _failed(_MISSING_NOPE, "headers[0].value", "contact.nope")),
    (make_channel(url="{{ contact.nope }}", headers=[{"name": "Host", "value": "x"}]),
     _failed(_MISSING_NOPE, "url", "contact.nope")),
    (make_channel(url="{{ contact.first_name", method="PUT"),
     _failed("template error on line 1: unexpected end of template, "
             "expected 'end of print statement'.", "url")),
    (make_channel(method="TRACE"),
     _failed("method must be one of GET, POST, PUT, PATCH, DELETE", "method")),
    (make_channel(body={"mode": "mapping", "fields": [
        {"name": "a", "source": "contact.first_name", "type": "number"},
        {"name": "a.b", "value": "1"}]}),
     _failed('cannot cast: "Ann" is not a number', "body.fields[0].type")),
    (make_channel(body={"mode": "mapping", "fields": [
        {"name": "a", "source": "event.properties", "type": "json"},
        {"name": "a.b", "value": "1"}]}),
     RenderedRequest("POST", URL, (_JSON,), b'{"a":{"score":7,"b":"1"}}')),
    (make_channel(body={"mode": "mapping", "fields": [
        {"name": "x", "source": "contact.nope"}, {"name": "", "value": "1"}]}),
     _failed("contact.nope is missing and has no fallback", "body.fields[0].source",
             "contact.nope")),
    (make_channel(body={"mode": "mapping", "fields": [
        {"name": "x", "value": "y", "type": "json"}]}),
     _failed('cannot cast: "y" is not valid JSON', "body.fields[0].type")),
    (make_channel(body={"mode": "mapping", "fields": [
        {"name": "x", "source": "contact.first_name", "type": "weird"}]}),
     _failed("cannot cast: unknown type 'weird'", "body.fields[0].type")),
]  # fmt: skip


def _outcome(function: Any) -> Any:
    try:
        return function()
    except RenderError as exc:
        return ("error", exc.message, exc.location, exc.variable)


@pytest.mark.parametrize(("channel", "expected"), RECIPE_CASES)
def test_a_recipe_renders_one_request_or_its_first_error(channel, expected):
    """Errors come in recipe order, data-dependent or not (a missing value before a bad name)."""
    settings = RenderSettings()  # fresh variables each time: a nesting field may write into them
    compiled = compile_channel(channel, settings)
    for _ in range(2):  # compiled once, rendered again
        assert _outcome(lambda: compiled.render(make_variables())) == expected
    assert _outcome(lambda: render_request(channel, make_variables(), settings)) == expected


def test_compiled_channel_is_not_changed_by_mutating_the_callers_channel():
    channel = make_channel(headers=[{"name": "X-A", "value": "1"}])
    first = render(channel)
    channel["headers"][0]["value"] = "2"
    assert dict(render(channel).headers)["X-A"] == "2"
    assert dict(first.headers)["X-A"] == "1"


_BAD_HEADER = _failed(
    "the X-C header must not contain line breaks or control characters (found U+000A)",
    "headers[0].value",
)
CONSTANT_CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (make_channel(headers=[{"name": "X-C", "value": "{{ campaign.name | upper }}"}],
                  auth={"type": "basic", "username": "{{ workspace.id }}", "password": "p"}),
     {"Spring": RenderedRequest("POST", URL, (_JSON, ("X-C", "SPRING"),
                                              ("Authorization", "Basic d3NwXzE6cA==")),
                                _DEFAULT_BODY),
      "bad\nname": _BAD_HEADER}),
    (make_channel(url=URL + "/{{ workspace.id }}", body={"mode": "mapping", "fields": [
        {"name": "c", "value": "{{ campaign.nope }}", "fallback": "fb"},
        {"name": "n", "value": "{{ campaign.name }}"}]}),
     {"Spring": RenderedRequest("POST", URL + "/wsp_1", (_JSON,), b'{"c":"fb","n":"Spring"}'),
      "bad\nname": RenderedRequest("POST", URL + "/wsp_1", (_JSON,),
                                   b'{"c":"fb","n":"bad\\nname"}')}),
    (make_channel(url="{{ contact.nope }}", headers=[{"name": "X-C", "value": "{{ campaign.x }}"}]),
     dict.fromkeys(["Spring", "bad\nname"], _failed(_MISSING_NOPE, "url", "contact.nope"))),
    (make_channel(headers=[{"name": "X-C", "value": "{{ campaign.nope }}"}]),
     dict.fromkeys(["Spring", "bad\nname"], _failed(
         "campaign.nope is missing and has no fallback (add | default(...))",
         "headers[0].value", "campaign.nope"))),
    (make_channel(headers=[{"name": "X-C", "value": "{{ campaign.name ~ contact.id }}"}]),
     {"Spring": RenderedRequest("POST", URL, (_JSON, ("X-C", "Springcon_1")), _DEFAULT_BODY),
      "bad\nname": _BAD_HEADER}),
]  # fmt: skip


@pytest.mark.parametrize("campaign_name", ["Spring", "bad\nname"])
@pytest.mark.parametrize(("channel", "expected"), CONSTANT_CASES)
def test_templates_reading_only_constants_render_once_with_the_same_result(
    channel, expected, campaign_name
):
    def variables() -> dict[str, Any]:
        return {**make_variables(), "campaign": {"id": "cmp_1", "name": campaign_name}}

    constants = {"campaign": variables()["campaign"], "workspace": variables()["workspace"]}
    settings = RenderSettings()
    compiled = compile_channel(channel, settings, constants=constants)
    outcome = expected[campaign_name]
    assert _outcome(lambda: compiled.render(variables())) == outcome
    assert _outcome(lambda: render_request(channel, variables(), settings)) == outcome


def test_nesting_under_a_dict_from_the_data_leaves_the_data_unchanged() -> None:
    """``a`` placed from event data, then ``a.b`` nested under it: the event keeps its dict."""
    properties = {"address": {"city": "Cork"}}
    variables = build_variables(
        contact={"id": "con_1", "external_id": "c1", "attributes": {}},
        event={
            "id": "evt_1",
            "name": "x.y",
            "occurred_at": "2026-11-22T10:00:00Z",
            "properties": properties,
        },
        campaign={"id": "cmp_1", "name": "C"},
        workspace={"id": "ws_1", "name": "W"},
        notification_id="msg_1",
        now=datetime(2026, 11, 22, tzinfo=UTC),
    )
    channel = {
        "url": "https://api.example.com/hook",
        "method": "POST",
        "content_type": "json",
        "body": {
            "mode": "mapping",
            "fields": [
                {"name": "address", "source": "event.properties.address"},
                {"name": "address.country", "value": "IE"},
            ],
        },
    }
    request = render_request(channel, variables)
    assert json.loads(request.body) == {"address": {"city": "Cork", "country": "IE"}}
    assert properties == {"address": {"city": "Cork"}}
