"""Where a problem is, in the editor's words: ``webhook.headers[1].value`` reads
"Content > Header 2 > value" (with a right-pointing angle quote). The page still places
each message by its path; people read these."""

from __future__ import annotations

import re
from collections.abc import Iterable

SEP = " \u203a "
_TABS = (("webhook", "Content"), ("contact", "Test"), ("event", "Test"))
_NAMES = {
    "name": "Campaign name",
    "trigger": "When it sends",
    "trigger.type": "When it sends",
    "trigger.events": "Events",
    "trigger.conditions": "Event conditions",
    "trigger.at": "Date and time",
    "trigger.cron": "Schedule",
    "trigger.timezone": "Time zone",
    "audience": "Audience",
    "audience.conditions": "Audience conditions",
    "audience.test_contacts": "Test contacts",
    "frequency_cap": "Frequency cap",
    "webhook": "Webhook",
    "webhook.url": "URL",
    "webhook.method": "Method",
    "webhook.content_type": "Content type",
    "webhook.headers": "Headers",
    "webhook.auth": "Authentication",
    "webhook.auth.type": "Authentication",
    "webhook.auth.username": "Username",
    "webhook.auth.password": "Password",
    "webhook.auth.token": "Bearer token",
    "webhook.body": "Body",
    "webhook.body.mode": "Body type",
    "webhook.body.fields": "Body fields",
    "webhook.body.template": "Raw body",
    "webhook.secret": "Signing secret",
    "webhook.timeout_seconds": "Timeout",
    "webhook.retry": "Retries",
    "webhook.disable_after_failures": "Disable after failures",
    "webhook.max_concurrency": "Max concurrent requests",
    "webhook.rate_limit": "Rate limit",
    "webhook.rate_limit.requests": "Rate limit",
    "webhook.rate_limit.per": "Rate limit",
    "contact": "Test contact",
    "event": "Sample event",
}
_PARTS = {
    "name": "name",
    "value": "value",
    "source": "variable",
    "fallback": "fallback",
    "type": "type",
}
_ROW = re.compile(r"^(webhook\.headers|webhook\.body\.fields)\[(\d+)\](?:\.(\w+))?")


def tab_of(path: str) -> str:
    for prefix, tab in _TABS:
        if path == prefix or path.startswith((prefix + ".", prefix + "[")):
            return tab
    return "Setup"


def field_label(path: str) -> str:
    """The tab and the field a problem's path points at, as the page names them."""
    if not path or path == "_schema":
        return ""
    row = _ROW.match(path)
    if row:
        kind = "Header" if row.group(1) == "webhook.headers" else "Body field"
        label = f"{kind} {int(row.group(2)) + 1}"
        if row.group(3):
            label += SEP + _PARTS.get(row.group(3), row.group(3))
    else:
        key = path
        while key not in _NAMES and re.search(r"[.\[]", key):
            key = key[: max(key.rfind("."), key.rfind("["))]
        label = _NAMES.get(key, path)
        if key in ("trigger.conditions", "audience.conditions") and path != key:
            label += SEP + "a rule"
    return tab_of(path) + SEP + label


def field_labels(paths: Iterable[str]) -> dict[str, str]:
    return {path: field_label(path) for path in paths if field_label(path)}
