"""Campaign triggers: validation, schedule fire times, and a human description.

An event trigger is ``{"type": "event", "events": [...], "conditions": {...}}``. A
schedule trigger is ``{"type": "schedule", "at": "2026-12-01T09:00:00Z"}`` (a naive ``at``
is read in ``timezone``, default UTC) or ``{"type": "schedule", "cron": "0 9 * * MON",
"timezone": "Europe/Dublin"}``; either may carry ``misfire_grace_seconds`` (default 3600).

Cron is the standard five fields (minute hour day-of-month month day-of-week) with crontab
weekday numbers: 0 and 7 are Sunday, 1 is Monday. APScheduler 3 numbers weekdays from
Monday = 0 and ``CronTrigger.from_crontab`` does not translate, so the weekday field is
translated to names here. Classic cron fires when *either* a restricted day-of-month or a
restricted day-of-week matches while APScheduler needs both; rather than surprise anyone,
restricting both is refused. Fire times come from APScheduler's ``CronTrigger`` and
``DateTrigger``. Across DST changes: a wall-clock time that does not exist that day (01:30
in Dublin on the spring change) fires an hour later in wall time (02:30, APScheduler's
rule); a fixed-hour time that happens twice (autumn) fires once, at its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from engine.rules.conditions import RuleProblem, validate_conditions
from engine.rules.patterns import validate_event_patterns

DEFAULT_MISFIRE_GRACE_SECONDS = 3600
MAX_MISFIRE_GRACE_SECONDS = 7 * 86400
MAX_FIRE_TIMES = 1000

_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_WEEKDAY_TITLES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_TITLES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_WEEKDAY_ITEM = re.compile(r"(\*|[0-7]|[a-z]{3})(?:-([0-7]|[a-z]{3}))?(?:/([0-9]{1,2}))?")


def validate_trigger(trigger: Any, *, path: str = "trigger") -> list[RuleProblem]:
    """Every problem with an event or schedule trigger, each at its path."""
    if not isinstance(trigger, Mapping):
        return [RuleProblem(path, "must be an object")]
    kind = trigger.get("type")
    if kind == "event":
        problems = _unknown_keys(trigger, {"type", "events", "conditions"}, path)
        problems += validate_event_patterns(trigger.get("events"), path=f"{path}.events")
        problems += validate_conditions(trigger.get("conditions"), path=f"{path}.conditions")
        return problems
    if kind == "schedule":
        return _validate_schedule(trigger, path)
    return [RuleProblem(f"{path}.type", 'must be "event" or "schedule"')]


def _unknown_keys(trigger: Mapping, known: set[str], path: str) -> list[RuleProblem]:
    return [RuleProblem(f"{path}.{key}", "unknown key") for key in sorted(set(trigger) - known)]


def _validate_schedule(trigger: Mapping, path: str) -> list[RuleProblem]:
    known = {"type", "at", "cron", "timezone", "misfire_grace_seconds"}
    problems = _unknown_keys(trigger, known, path)
    zone_name = trigger.get("timezone", "UTC")
    zone_ok = _zone(zone_name) is not None
    if not zone_ok:
        problems.append(RuleProblem(f"{path}.timezone", "must be an IANA time zone name"))
    grace = trigger.get("misfire_grace_seconds", DEFAULT_MISFIRE_GRACE_SECONDS)
    if (
        not isinstance(grace, int)
        or isinstance(grace, bool)
        or not 0 <= grace <= MAX_MISFIRE_GRACE_SECONDS
    ):
        problems.append(
            RuleProblem(
                f"{path}.misfire_grace_seconds",
                f"must be a whole number of seconds from 0 to {MAX_MISFIRE_GRACE_SECONDS}",
            )
        )
    has_at, has_cron = "at" in trigger, "cron" in trigger
    if has_at == has_cron:
        problems.append(RuleProblem(path, 'needs exactly one of "at" or "cron"'))
        return problems
    if not zone_ok:
        return problems
    if has_at:
        if _parse_at(trigger["at"], zone_name) is None:
            problems.append(
                RuleProblem(f"{path}.at", "must be an ISO 8601 date-time such as 2026-12-01T09:00Z")
            )
        return problems
    problem = _cron_problem(trigger["cron"], zone_name)
    if problem:
        problems.append(RuleProblem(f"{path}.cron", problem))
    return problems


def _zone(name: Any) -> tzinfo | None:
    if not isinstance(name, str) or not name or len(name) > 64:
        return None
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _parse_at(value: Any, zone_name: str) -> datetime | None:
    if not isinstance(value, str) or not 10 < len(value) <= 64:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(zone_name) or UTC)
    return moment.astimezone(UTC)


def _cron_problem(expression: Any, zone_name: str) -> str | None:
    if not isinstance(expression, str) or len(expression) > 128:
        return "must be a five-field cron expression such as 0 9 * * MON"
    fields = expression.split()
    if len(fields) != 5:
        return f"must have five fields (minute hour day month weekday), not {len(fields)}"
    if fields[2] not in ("*", "?") and fields[4] not in ("*", "?"):
        return "restrict either the day of the month or the day of the week, not both"
    try:
        _cron_trigger(expression, _zone(zone_name) or UTC)
    except ValueError as exc:
        return f"invalid cron expression: {exc}"
    return None


def crontab_weekdays(field: str) -> list[int] | None:
    """Crontab weekday field → sorted weekday numbers (0 = Sunday), None for ``*``."""
    field = field.lower()
    if field in ("*", "?"):
        return None
    days: set[int] = set()
    for item in field.split(","):
        match = _WEEKDAY_ITEM.fullmatch(item)
        if not match:
            raise ValueError(f"bad day of week {item!r}")
        start_text, end_text, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError("a step must be at least 1")
        if start_text == "*":
            if end_text:
                raise ValueError(f"bad day of week {item!r}")
            start, end = 0, 6
        else:
            start = _weekday_number(start_text)
            end = _weekday_number(end_text) if end_text else (6 if step_text else start)
        if end < start:
            raise ValueError(f"day-of-week range {item!r} runs backwards")
        days.update(day % 7 for day in range(start, end + 1, step))
    return sorted(days)


def _weekday_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text not in _WEEKDAY_NAMES:
        raise ValueError(f"unknown day of week {text!r}")
    return _WEEKDAY_NAMES.index(text)


def _cron_trigger(expression: str, zone: tzinfo) -> CronTrigger:
    minute, hour, day, month, weekday = expression.lower().split()
    days = crontab_weekdays(weekday)
    day_of_week = "*" if days is None else ",".join(_WEEKDAY_NAMES[number] for number in days)
    return CronTrigger(
        minute=minute,
        hour=hour,
        day="*" if day == "?" else day,
        month=month,
        day_of_week=day_of_week,
        timezone=zone,
    )


def misfire_grace_seconds(trigger: Mapping) -> int:
    """How late a missed fire time may still run (SPEC §6)."""
    return int(trigger.get("misfire_grace_seconds", DEFAULT_MISFIRE_GRACE_SECONDS))


def schedule_trigger(trigger: Mapping) -> CronTrigger | DateTrigger:
    """The APScheduler trigger for a valid schedule trigger."""
    zone_name = trigger.get("timezone", "UTC")
    zone = _zone(zone_name) or UTC
    if "at" in trigger:
        moment = _parse_at(trigger["at"], zone_name)
        if moment is None:
            raise ValueError("invalid schedule: bad 'at'")
        return DateTrigger(run_date=moment, timezone=UTC)
    return _cron_trigger(trigger["cron"], zone)


def fire_times(
    trigger: Mapping, *, after: datetime, until: datetime, limit: int = MAX_FIRE_TIMES
) -> list[datetime]:
    """Fire times in ``(after, until]`` as aware UTC datetimes, at most ``limit`` of them."""
    until = _aware(until)
    times: list[datetime] = []
    for moment in _fire_times_after(trigger, _aware(after)):
        if moment > until or len(times) >= limit:
            break
        times.append(moment)
    return times


def next_fire_time(trigger: Mapping, *, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (aware UTC), or None if there is none."""
    return next(_fire_times_after(trigger, _aware(after)), None)


def _fire_times_after(trigger: Mapping, after: datetime) -> Iterator[datetime]:
    """Fire times strictly after ``after``, in order. In the hour repeated when DST ends,
    a cron with fixed hours fires once (at the first occurrence), as classic cron does."""
    schedule = schedule_trigger(trigger)
    if isinstance(schedule, DateTrigger):
        if schedule.run_date.astimezone(UTC) > after:
            yield schedule.run_date.astimezone(UTC)
        return
    once_per_wall_time = _numbers(str(trigger["cron"]).split()[1])
    zone = schedule.timezone
    moment = after
    stalls = 0
    while True:
        # APScheduler 3 is asked afresh each time: passing previous_fire_time loops on the
        # repeated hour with zoneinfo time zones.
        upcoming = schedule.get_next_fire_time(None, moment + timedelta(microseconds=1))
        if upcoming is None:
            return
        upcoming = upcoming.astimezone(UTC)
        if upcoming <= moment:  # never go backwards, whatever the trigger says
            stalls += 1
            if stalls > 7200:
                return
            moment += timedelta(seconds=1)
            continue
        stalls = 0
        moment = upcoming
        if once_per_wall_time and _second_occurrence(upcoming, zone):
            continue
        yield upcoming


def _second_occurrence(moment: datetime, zone: tzinfo) -> bool:
    local = moment.astimezone(zone)
    return bool(local.fold) and local.replace(fold=0).astimezone(UTC) != moment


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --------------------------------------------------------------------------- description


def describe_schedule(trigger: Mapping) -> str:
    """Human text for the builder, e.g. ``every Monday at 09:00 (Europe/Dublin)``."""
    zone_name = trigger.get("timezone", "UTC")
    zone = _zone(zone_name) or UTC
    zone_label = "UTC" if zone is UTC else zone_name
    if "at" in trigger:
        moment = _parse_at(trigger["at"], zone_name)
        if moment is None:
            return f"once at {trigger['at']}"
        local = moment.astimezone(zone)
        when = f"{local.day} {_MONTH_TITLES[local.month - 1]} {local.year} at {local:%H:%M}"
        return f"once on {when} {'UTC' if zone is UTC else f'({zone_label})'}"
    expression = str(trigger.get("cron", ""))
    try:
        text = _describe_cron(expression)
    except ValueError:
        text = None
    return f"{text or f'cron {expression}'} ({zone_label})"


def _describe_cron(expression: str) -> str | None:
    fields = expression.lower().split()
    if len(fields) != 5:
        return None
    minute, hour, day, month, weekday = fields
    minute_step = _step(minute)
    if minute_step and (hour, day, month, weekday) == ("*", "*", "*", "*"):
        return "every minute" if minute_step == 1 else f"every {minute_step} minutes"
    if not minute.isdigit():
        return None
    hour_step = _step(hour)
    if hour_step and (day, month, weekday) == ("*", "*", "*"):
        every = "every hour" if hour_step == 1 else f"every {hour_step} hours"
        return f"{every} at minute {int(minute)}" if int(minute) else f"{every} on the hour"
    hours = [int(part) for part in hour.split(",")] if _numbers(hour) else None
    if hours is None:
        return None
    clock = _join([f"{h:02d}:{int(minute):02d}" for h in hours])
    if (day, month) == ("*", "*"):
        days = crontab_weekdays(weekday)
        return f"{_describe_weekdays(days)} at {clock}"
    if weekday != "*" or not day.isdigit():
        return None
    ordinal = _ordinal(int(day))
    if month == "*":
        return f"on the {ordinal} of every month at {clock}"
    if month.isdigit() and 1 <= int(month) <= 12:
        return f"every year on {int(day)} {_MONTH_TITLES[int(month) - 1]} at {clock}"
    return None


def _describe_weekdays(days: list[int] | None) -> str:
    if days is None or len(days) == 7:
        return "every day"
    if days == [1, 2, 3, 4, 5]:
        return "every weekday (Monday to Friday)"
    if days == [0, 6]:
        return "every Saturday and Sunday"
    ordered = sorted(days, key=lambda number: (number + 6) % 7)  # Monday first
    return "every " + _join([_WEEKDAY_TITLES[number] for number in ordered])


def _step(field: str) -> int | None:
    if field == "*":
        return 1
    if field.startswith("*/") and field[2:].isdigit() and int(field[2:]) > 0:
        return int(field[2:])
    return None


def _numbers(field: str) -> bool:
    return all(part.isdigit() for part in field.split(","))


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"
