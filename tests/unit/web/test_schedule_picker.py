"""The schedule picker reads a stored trigger back into its fields."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from web.builder.schedule_picker import picker_state, upcoming_runs


@pytest.mark.parametrize(
    ("trigger", "kind", "fields"),
    [
        ({"cron": "0 9 * * MON"}, "weekly", {"time": "09:00", "weekdays": [1]}),
        ({"cron": "30 7 * * *"}, "daily", {"time": "07:30"}),
        ({"cron": "5 18 * * 1-5"}, "weekly", {"weekdays": [1, 2, 3, 4, 5]}),
        ({"cron": "0 9 * * SAT,7"}, "weekly", {"weekdays": [0, 6]}),
        ({"cron": "0 8 15 * *"}, "monthly", {"monthday": 15, "time": "08:00"}),
        ({"cron": "*/5 * * * *"}, "advanced", {"cron": "*/5 * * * *"}),
        ({"cron": "0 9 1 * MON"}, "advanced", {}),
        ({"cron": "0 25 * * *"}, "advanced", {}),
        ({"at": "2026-12-01T09:00:00Z"}, "once", {}),
        (None, "weekly", {"time": "09:00", "weekdays": [1]}),
    ],
)
def test_picker_state(trigger, kind, fields) -> None:
    state = picker_state(trigger)
    assert state["kind"] == kind
    assert {name: state[name] for name in fields} == fields


def test_upcoming_runs_in_the_campaigns_time_zone() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a Tuesday
    runs = upcoming_runs({"cron": "30 7 * * 1,3", "timezone": "Europe/Dublin"}, now, 3)
    assert [r["at"] for r in runs] == [
        datetime(2026, 12, 2, 7, 30, tzinfo=UTC),
        datetime(2026, 12, 7, 7, 30, tzinfo=UTC),
        datetime(2026, 12, 9, 7, 30, tzinfo=UTC),
    ]
    assert runs[0]["local"] == "Wed 02 Dec 2026 07:30 GMT"
    assert upcoming_runs({"at": "2026-11-01T00:00:00Z"}, now) == []
    assert upcoming_runs({"cron": "bad"}, now) == []
