"""Renders per second of a realistic mapping channel: the engine against bare Jinja.

Both sides run in this process, side by side:

- engine: ``engine.templating.render.render_request`` (sandbox, cached compiled templates, checks).
- compiled: ``engine.templating.render.compile_channel`` once, then ``.render`` per row (batches).
- bare: a plain ``jinja2.Environment`` with the same templates compiled once, the same
  source lookups, fallbacks and casts done naively, ``json.dumps`` and base64 — the same
  request with none of the safety.

Prints both rates and the ratio engine/bare (target: at most 1.5).
Run: ``.venv/bin/python bench/bench_render.py``.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import jinja2

from engine.templating.render import compile_channel, render_request
from engine.templating.request import RenderSettings
from engine.templating.variables import build_variables

CHANNEL: dict[str, Any] = {
    "url": "https://api.example.com/v2/leads/{{ contact.external_id | urlencode }}?src=hookcast",
    "method": "POST",
    "content_type": "json",
    "headers": [
        {"name": "X-Source", "value": "{{ campaign.name }}"},
        {"name": "X-Event", "value": "{{ event.name | default('scheduled') }}"},
        {"name": "X-Request-Id", "value": "{{ notification.id }}"},
    ],
    "auth": {"type": "basic", "username": "{{ workspace.id }}", "password": "s3cret-pass"},
    "body": {
        "mode": "mapping",
        "fields": [
            {"name": "email", "source": "contact.email", "fallback": "unknown@example.com"},
            {"name": "first_name", "source": "contact.first_name", "fallback": "there"},
            {"name": "greeting", "value": "Hi {{ contact.first_name | default('there') }}!"},
            {"name": "plan", "source": "contact.plan", "fallback": "free"},
            {"name": "lead.score", "source": "event.properties.score", "type": "number",
             "fallback": 0},
            {"name": "lead.status", "source": "event.properties.status", "fallback": "new"},
            {"name": "lead.vip", "source": "contact.vip", "type": "boolean", "fallback": False},
            {"name": "campaign", "source": "campaign.name"},
            {"name": "source", "value": "webhook"},
            {"name": "sent_at", "source": "now"},
        ],
    },
}  # fmt: skip


def make_variables() -> dict[str, Any]:
    return build_variables(
        contact={"id": "con_01", "external_id": "lead/1042 ü", "attributes": {
            "email": "ada@example.com", "first_name": "Ada", "plan": "pro", "vip": "yes",
            "city": "Dublin", "tags": ["beta", "newsletter"]}},
        event={"id": "evt_01", "name": "lead.status.update",
               "occurred_at": datetime(2026, 11, 22, 9, 58, tzinfo=UTC),
               "properties": {"score": "42", "status": "qualified"}},
        campaign={"id": "cmp_01", "name": "Spring leads"},
        workspace={"id": "wsp_01", "name": "Acme"},
        notification_id="ntf_01",
        now=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
    )  # fmt: skip


class BareRenderer:
    """The same request built the unsafe, direct way with a bare ``jinja2.Environment``."""

    def __init__(self, channel: dict[str, Any]) -> None:
        env = jinja2.Environment(autoescape=False)  # noqa: S701  (baseline only)
        self.url = env.from_string(channel["url"])
        self.headers = [(h["name"], env.from_string(h["value"])) for h in channel["headers"]]
        self.username = env.from_string(channel["auth"]["username"])
        self.password = env.from_string(channel["auth"]["password"])
        self.fields = []
        for field in channel["body"]["fields"]:
            template = env.from_string(field["value"]) if "value" in field else None
            self.fields.append((field, template))

    def render(self, variables: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        url = self.url.render(variables)
        headers = [("Content-Type", "application/json")]
        headers += [(name, template.render(variables)) for name, template in self.headers]
        user = f"{self.username.render(variables)}:{self.password.render(variables)}"
        headers.append(("Authorization", "Basic " + base64.b64encode(user.encode()).decode()))
        payload: dict[str, Any] = {}
        for field, template in self.fields:
            if template is not None:
                value: Any = template.render(variables)
            else:
                value = variables
                for segment in field["source"].split("."):
                    value = value.get(segment) if isinstance(value, dict) else None
            if value in (None, "") and "fallback" in field:
                value = field["fallback"]
            if field.get("type") == "number":
                value = float(value) if "." in str(value) else int(value)
            elif field.get("type") == "boolean":
                value = str(value).lower() in ("true", "1", "yes", "on")
            target = payload
            *parents, last = field["name"].split(".")
            for parent in parents:
                target = target.setdefault(parent, {})
            target[last] = value
        return url, headers, json.dumps(payload, ensure_ascii=False).encode()


def rate(function: Any, seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(200):
            function()
        count += 200
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main(seconds: float = 2.0, rounds: int = 3) -> None:
    variables = make_variables()
    settings = RenderSettings()
    bare = BareRenderer(CHANNEL)
    engine_request = render_request(CHANNEL, variables, settings)
    _, _, bare_body = bare.render(variables)
    assert json.loads(engine_request.body) == json.loads(bare_body)

    compiled = compile_channel(CHANNEL, settings)  # what a batch (materialize) does
    assert compiled.render(variables) == engine_request

    engine_rates, compiled_rates, bare_rates = [], [], []
    for _ in range(rounds):  # interleaved, so both see the same machine state
        engine_rates.append(rate(lambda: render_request(CHANNEL, variables, settings), seconds))
        compiled_rates.append(rate(lambda: compiled.render(variables), seconds))
        bare_rates.append(rate(lambda: bare.render(variables), seconds))
    engine_best, bare_best = max(engine_rates), max(bare_rates)
    compiled_best = max(compiled_rates)
    print("realistic mapping channel: URL + urlencode, 3 headers, basic auth, 10 mapped fields")
    print(
        f"engine render_request : {engine_best:10,.0f} renders/s ({1e6 / engine_best:6.1f} us each)"
    )
    print(
        f"compiled channel .render: {compiled_best:8,.0f} renders/s "
        f"({1e6 / compiled_best:6.1f} us each)"
    )
    print(f"bare jinja2.Environment: {bare_best:10,.0f} renders/s ({1e6 / bare_best:6.1f} us each)")
    print(f"ratio engine/bare cost : {bare_best / engine_best:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
