"""Trigger validation, schedule fire times (APScheduler 3) and their descriptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.rules.triggers import (
    crontab_weekdays,
    describe_schedule,
    fire_times,
    misfire_grace_seconds,
    next_fire_time,
    validate_trigger,
)

DUBLIN = ZoneInfo("Europe/Dublin")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def cron(expression: str, zone: str = "Europe/Dublin") -> dict:
    return {"type": "schedule", "cron": expression, "timezone": zone}


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "trigger",
    [
        {"type": "event", "events": ["lead.create", "campaign.email.*", "lead.**"]},
        {
            "type": "event",
            "events": ["lead.*"],
            "conditions": {"field": "event.properties.score", "op": "gt", "value": 5},
        },
        {"type": "schedule", "at": "2026-12-01T09:00:00Z"},
        {"type": "schedule", "at": "2026-12-01T09:00:00", "timezone": "Europe/Dublin"},
        {"type": "schedule", "at": "2026-12-01 09:00+01:00", "misfire_grace_seconds": 0},
        {"type": "schedule", "cron": "0 9 * * MON", "timezone": "Europe/Dublin"},
        {"type": "schedule", "cron": "*/15 8-18 * * 1-5", "misfire_grace_seconds": 600},
        {"type": "schedule", "cron": "0 9 1 jan,jul *", "timezone": "UTC"},
        {"type": "schedule", "cron": "0 9 ? * sun"},
    ],
)
def test_valid_triggers(trigger):
    assert validate_trigger(trigger) == []


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ("x", [("trigger", "must be an object")]),
        ({"type": "webhook"}, [("trigger.type", 'must be "event" or "schedule"')]),
        (
            {"type": "event"},
            [("trigger.events", "must be a non-empty list of event names or patterns")],
        ),
        (
            {"type": "event", "events": ["a*"], "cron": "0 9 * * *"},
            [
                ("trigger.cron", "unknown key"),
                ("trigger.events[0]", "a wildcard must be a whole segment: * or **"),
            ],
        ),
        (
            {"type": "event", "events": ["a"], "conditions": {"any": [{"field": "x.y"}]}},
            [
                (
                    "trigger.conditions.any[0].field",
                    "must start with one of: campaign, contact, event",
                ),
                ("trigger.conditions.any[0].op", "unknown operator None"),
            ],
        ),
        ({"type": "schedule"}, [("trigger", 'needs exactly one of "at" or "cron"')]),
        (
            {"type": "schedule", "at": "2026-12-01T09:00Z", "cron": "0 9 * * *"},
            [("trigger", 'needs exactly one of "at" or "cron"')],
        ),
        (
            {"type": "schedule", "at": "tomorrow"},
            [("trigger.at", "must be an ISO 8601 date-time such as 2026-12-01T09:00Z")],
        ),
        (
            {"type": "schedule", "at": "2026-12-01"},
            [("trigger.at", "must be an ISO 8601 date-time such as 2026-12-01T09:00Z")],
        ),
        (
            {"type": "schedule", "cron": "0 9 * *"},
            [("trigger.cron", "must have five fields (minute hour day month weekday), not 4")],
        ),
        (
            {"type": "schedule", "cron": "0 25 * * *"},
            [
                (
                    "trigger.cron",
                    "invalid cron expression: Error validating expression '25': "
                    "the last value (25) is higher than the maximum value (23)",
                )
            ],
        ),
        (
            {"type": "schedule", "cron": "0 9 * * funday"},
            [("trigger.cron", "invalid cron expression: bad day of week 'funday'")],
        ),
        (
            {"type": "schedule", "cron": "0 9 * * fun"},
            [("trigger.cron", "invalid cron expression: unknown day of week 'fun'")],
        ),
        (
            {"type": "schedule", "cron": "0 9 * * 8"},
            [("trigger.cron", "invalid cron expression: bad day of week '8'")],
        ),
        (
            {"type": "schedule", "cron": "0 9 1 * MON"},
            [
                (
                    "trigger.cron",
                    "restrict either the day of the month or the day of the week, not both",
                )
            ],
        ),
        (
            {"type": "schedule", "cron": 5},
            [("trigger.cron", "must be a five-field cron expression such as 0 9 * * MON")],
        ),
        (
            {"type": "schedule", "cron": "0 9 * * *", "timezone": "Mars/Olympus"},
            [("trigger.timezone", "must be an IANA time zone name")],
        ),
        (
            {"type": "schedule", "cron": "0 9 * * *", "misfire_grace_seconds": -1},
            [
                (
                    "trigger.misfire_grace_seconds",
                    "must be a whole number of seconds from 0 to 604800",
                )
            ],
        ),
        (
            {"type": "schedule", "cron": "0 9 * * *", "misfire_grace_seconds": True},
            [
                (
                    "trigger.misfire_grace_seconds",
                    "must be a whole number of seconds from 0 to 604800",
                )
            ],
        ),
        (
            {"type": "schedule", "cron": "0 9 * * *", "audience": {}},
            [("trigger.audience", "unknown key")],
        ),
    ],
)
def test_trigger_problems(trigger, expected):
    assert [(p.path, p.message) for p in validate_trigger(trigger)] == expected


def test_misfire_grace_default():
    assert misfire_grace_seconds(cron("0 9 * * *")) == 3600
    assert misfire_grace_seconds({**cron("0 9 * * *"), "misfire_grace_seconds": 60}) == 60


# --------------------------------------------------------------------------- weekdays


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("*", None),
        ("1", [1]),
        ("0", [0]),
        ("7", [0]),
        ("MON", [1]),
        ("sun", [0]),
        ("1-5", [1, 2, 3, 4, 5]),
        ("mon-fri", [1, 2, 3, 4, 5]),
        ("5-7", [0, 5, 6]),
        ("*/2", [0, 2, 4, 6]),
        ("1-5/2", [1, 3, 5]),
        ("0,6", [0, 6]),
        ("sat,sun", [0, 6]),
    ],
)
def test_crontab_weekday_numbers(field, days):
    assert crontab_weekdays(field) == days


@pytest.mark.parametrize(
    ("expression", "weekdays"),
    [
        ("0 9 * * 1", {"Monday"}),
        ("0 9 * * MON", {"Monday"}),
        ("0 9 * * 0", {"Sunday"}),
        ("0 9 * * 7", {"Sunday"}),
        ("0 9 * * 1-5", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}),
        ("0 9 * * 6,0", {"Saturday", "Sunday"}),
    ],
)
def test_crontab_weekdays_fire_on_those_days(expression, weekdays):
    times = fire_times(cron(expression), after=utc(2026, 1, 1), until=utc(2026, 1, 31))
    assert times
    assert {moment.astimezone(DUBLIN).strftime("%A") for moment in times} == weekdays


# --------------------------------------------------------------------------- fire times


def test_monday_nine_in_dublin_across_the_spring_change():
    times = fire_times(cron("0 9 * * 1"), after=utc(2026, 3, 20), until=utc(2026, 4, 10))
    # Clocks go forward on Sunday 29 March: 09:00 GMT, then 09:00 IST = 08:00 UTC.
    assert times == [utc(2026, 3, 23, 9), utc(2026, 3, 30, 8), utc(2026, 4, 6, 8)]
    assert all(moment.tzinfo is UTC for moment in times)


def test_daily_nine_in_dublin_across_the_autumn_change():
    times = fire_times(cron("0 9 * * *"), after=utc(2026, 10, 24), until=utc(2026, 10, 27))
    assert times == [utc(2026, 10, 24, 8), utc(2026, 10, 25, 9), utc(2026, 10, 26, 9)]


def test_a_time_that_does_not_exist_fires_an_hour_later_in_wall_time():
    times = fire_times(cron("30 1 * * *"), after=utc(2026, 3, 28), until=utc(2026, 3, 31))
    # 01:30 on 29 March does not exist in Dublin; it fires at 02:30 IST (01:30 UTC).
    assert times == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]


def test_a_repeated_fixed_time_fires_once_when_clocks_go_back():
    times = fire_times(cron("30 1 * * *"), after=utc(2026, 10, 24), until=utc(2026, 10, 27))
    assert times == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    assert next_fire_time(cron("30 1 * * *"), after=utc(2026, 10, 25, 0, 30)) == utc(
        2026, 10, 26, 1, 30
    )


def test_an_interval_keeps_going_through_the_repeated_hour():
    times = fire_times(
        cron("*/30 * * * *"), after=utc(2026, 10, 24, 23, 50), until=utc(2026, 10, 25, 2)
    )
    assert times == [utc(2026, 10, 25, 0) + timedelta(minutes=30 * n) for n in range(5)]


def test_fire_times_are_in_the_open_closed_window():
    trigger = cron("0 9 * * *", "UTC")
    times = fire_times(trigger, after=utc(2026, 1, 1, 9), until=utc(2026, 1, 3, 9))
    assert times == [utc(2026, 1, 2, 9), utc(2026, 1, 3, 9)]
    assert next_fire_time(trigger, after=utc(2026, 1, 1, 9)) == utc(2026, 1, 2, 9)
    assert next_fire_time(trigger, after=utc(2026, 1, 1, 8, 59, 59)) == utc(2026, 1, 1, 9)


def test_fire_times_are_capped():
    every_minute = cron("* * * * *", "UTC")
    assert len(fire_times(every_minute, after=utc(2026, 1, 1), until=utc(2027, 1, 1))) == 1000
    assert len(fire_times(every_minute, after=utc(2026, 1, 1), until=utc(2027, 1, 1), limit=5)) == 5


def test_naive_bounds_are_read_as_utc():
    times = fire_times(
        cron("0 9 * * *", "UTC"), after=datetime(2026, 1, 1), until=datetime(2026, 1, 2)
    )
    assert times == [utc(2026, 1, 1, 9)]


def test_one_off_schedule():
    trigger = {"type": "schedule", "at": "2026-12-01T09:00:00Z"}
    assert fire_times(trigger, after=utc(2026, 1, 1), until=utc(2027, 1, 1)) == [
        utc(2026, 12, 1, 9)
    ]
    assert fire_times(trigger, after=utc(2026, 12, 1, 9), until=utc(2027, 1, 1)) == []
    assert fire_times(trigger, after=utc(2026, 1, 1), until=utc(2026, 12, 1, 8)) == []
    assert next_fire_time(trigger, after=utc(2026, 1, 1)) == utc(2026, 12, 1, 9)
    assert next_fire_time(trigger, after=utc(2026, 12, 1, 9)) is None


def test_a_naive_at_is_read_in_the_trigger_time_zone():
    summer = {"type": "schedule", "at": "2026-07-01T09:00:00", "timezone": "Europe/Dublin"}
    assert next_fire_time(summer, after=utc(2026, 1, 1)) == utc(2026, 7, 1, 8)
    plain = {"type": "schedule", "at": "2026-07-01T09:00:00"}
    assert next_fire_time(plain, after=utc(2026, 1, 1)) == utc(2026, 7, 1, 9)


# --------------------------------------------------------------------------- description


@pytest.mark.parametrize(
    ("trigger", "text"),
    [
        (cron("0 9 * * MON"), "every Monday at 09:00 (Europe/Dublin)"),
        (cron("0 9 * * 1"), "every Monday at 09:00 (Europe/Dublin)"),
        (cron("0 9 * * 5,1"), "every Monday and Friday at 09:00 (Europe/Dublin)"),
        (cron("30 8 * * 1-5", "UTC"), "every weekday (Monday to Friday) at 08:30 (UTC)"),
        (cron("0 10 * * 0,6", "UTC"), "every Saturday and Sunday at 10:00 (UTC)"),
        (cron("0 9 * * *", "UTC"), "every day at 09:00 (UTC)"),
        (cron("0 9,17 * * *", "UTC"), "every day at 09:00 and 17:00 (UTC)"),
        (cron("0 8,12,18 * * 3", "UTC"), "every Wednesday at 08:00, 12:00 and 18:00 (UTC)"),
        (cron("* * * * *", "UTC"), "every minute (UTC)"),
        (cron("*/15 * * * *", "UTC"), "every 15 minutes (UTC)"),
        (cron("0 * * * *", "UTC"), "every hour on the hour (UTC)"),
        (cron("30 * * * *", "UTC"), "every hour at minute 30 (UTC)"),
        (cron("0 */2 * * *", "UTC"), "every 2 hours on the hour (UTC)"),
        (cron("0 9 1 * *", "UTC"), "on the 1st of every month at 09:00 (UTC)"),
        (cron("0 9 22 * *", "UTC"), "on the 22nd of every month at 09:00 (UTC)"),
        (cron("0 9 13 * *", "UTC"), "on the 13th of every month at 09:00 (UTC)"),
        (cron("0 9 25 12 *", "UTC"), "every year on 25 December at 09:00 (UTC)"),
        (cron("0 9-17 * * *"), "cron 0 9-17 * * * (Europe/Dublin)"),
        (cron("0 9 * * MON"), "every Monday at 09:00 (Europe/Dublin)"),
        ({"type": "schedule", "cron": "0 9 * * MON"}, "every Monday at 09:00 (UTC)"),
        (
            {"type": "schedule", "at": "2026-12-01T09:00:00Z"},
            "once on 1 December 2026 at 09:00 UTC",
        ),
        (
            {"type": "schedule", "at": "2026-12-01T09:00:00Z", "timezone": "Europe/Dublin"},
            "once on 1 December 2026 at 09:00 (Europe/Dublin)",
        ),
        (
            {"type": "schedule", "at": "2026-07-01T08:00:00Z", "timezone": "Europe/Dublin"},
            "once on 1 July 2026 at 09:00 (Europe/Dublin)",
        ),
    ],
)
def test_describe_schedule(trigger, text):
    assert describe_schedule(trigger) == text
