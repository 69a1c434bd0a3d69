"""The schedule picker's state for a stored trigger: once, every day, every week (on
chosen weekdays) or every month (on a day), at a time in a time zone; any other cron is
"advanced". The page builds the cron back from the picker (``builder.js``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine.rules.triggers import crontab_weekdays, fire_times

#: Monday first, as the checkboxes are shown; crontab numbers (0 = Sunday).
WEEKDAYS = (
    (1, "Mon"),
    (2, "Tue"),
    (3, "Wed"),
    (4, "Thu"),
    (5, "Fri"),
    (6, "Sat"),
    (0, "Sun"),
)
_SIMPLE = re.compile(r"(\d{1,2}) (\d{1,2}) (\*|\d{1,2}) \* (\S+)")


def picker_state(trigger: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"kind", "time", "weekdays", "monthday", "cron"}`` for the picker's fields."""
    trigger = trigger or {}
    state: dict[str, Any] = {
        "kind": "weekly",
        "time": "09:00",
        "weekdays": [1],
        "monthday": 1,
        "cron": str(trigger.get("cron") or "0 9 * * 1"),
    }
    if "at" in trigger:
        return {**state, "kind": "once"}
    match = _SIMPLE.fullmatch(state["cron"].strip())
    if not match:
        return {**state, "kind": "advanced"}
    minute, hour, monthday, weekdays = match.groups()
    if int(minute) > 59 or int(hour) > 23:
        return {**state, "kind": "advanced"}
    state["time"] = f"{int(hour):02d}:{int(minute):02d}"
    try:
        days = crontab_weekdays(weekdays)
    except ValueError:
        return {**state, "kind": "advanced"}
    if monthday == "*" and days is None:
        return {**state, "kind": "daily"}
    if monthday == "*":
        return {**state, "kind": "weekly", "weekdays": days}
    if days is None and 1 <= int(monthday) <= 31:
        return {**state, "kind": "monthly", "monthday": int(monthday)}
    return {**state, "kind": "advanced"}


def upcoming_runs(
    trigger: Mapping[str, Any], now: datetime, count: int = 5
) -> list[dict[str, Any]]:
    """The next ``count`` fire times within a year: ``{"at" (UTC), "local" (words)}``."""
    try:
        zone = ZoneInfo(str(trigger.get("timezone") or "UTC"))
        times = fire_times(trigger, after=now, until=now + timedelta(days=366), limit=count)
    except (ValueError, KeyError):
        return []
    return [
        {"at": moment, "local": moment.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")}
        for moment in times
    ]
