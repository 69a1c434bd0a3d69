"""Channel pacing decisions (engine.delivery.pacing): rate slots, 429 pauses, the breaker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.delivery import pacing
from engine.delivery.pacing import Grant, Outcome, after_attempts, after_claim, grant
from engine.store.channel_states import IDLE, ChannelPace

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ({}, 10),
        ({"max_concurrency": 3}, 3),
        ({"max_concurrency": 0}, 1),
        ({"max_concurrency": 500}, 100),
        ({"max_concurrency": True}, 10),
        ({"max_concurrency": "7"}, 10),
    ],
)
def test_max_concurrency(channel, expected):
    assert pacing.max_concurrency(channel) == expected


@pytest.mark.parametrize(
    ("rate_limit", "expected"),
    [
        (None, None),
        ({"requests": 10, "per": "second"}, 0.1),
        ({"requests": 60, "per": "minute"}, 1.0),
        ({"requests": 1, "per": "hour"}, 3600.0),
        ({"requests": 0, "per": "second"}, None),
        ({"requests": 5, "per": "day"}, None),
    ],
)
def test_rate_interval(rate_limit, expected):
    assert pacing.rate_interval({"rate_limit": rate_limit}) == expected


def test_without_limits_the_room_is_granted():
    assert grant(IDLE, room=7, interval=None, now=NOW, probe_seconds=20) == Grant(7)


def test_rate_limit_hands_out_slots_one_interval_apart_within_the_horizon():
    given = grant(IDLE, room=50, interval=0.1, now=NOW, probe_seconds=20)
    assert given.take == 11  # now, +0.1 … +1.0 s
    assert given.slots[0] == NOW and given.slots[-1] == NOW + seconds(1.0)
    assert given.pace == ChannelPace(rate_next_at=NOW + seconds(1.1))


def test_rate_limit_continues_from_the_stored_slot():
    pace = ChannelPace(rate_next_at=NOW + seconds(0.5))
    given = grant(pace, room=50, interval=0.25, now=NOW, probe_seconds=20)
    assert given.slots == (NOW + seconds(0.5), NOW + seconds(0.75), NOW + seconds(1.0))


def test_rate_limit_beyond_the_horizon_waits_without_taking():
    pace = ChannelPace(rate_next_at=NOW + seconds(3600))
    given = grant(pace, room=5, interval=3600, now=NOW, probe_seconds=20)
    assert given.take == 0 and given.ready_at == NOW + seconds(3599)


def test_an_old_slot_does_not_allow_a_burst():
    pace = ChannelPace(rate_next_at=NOW - seconds(60))
    given = grant(pace, room=50, interval=1.0, now=NOW, probe_seconds=20)
    assert given.slots == (NOW, NOW + seconds(1))


def test_unused_slots_are_handed_back():
    given = grant(IDLE, room=50, interval=0.1, now=NOW, probe_seconds=20)
    assert after_claim(IDLE, given, 3) == ChannelPace(rate_next_at=NOW + seconds(0.3))
    assert after_claim(IDLE, given, 0) is None
    assert after_claim(IDLE, given, given.take) == given.pace


def test_a_pause_takes_nothing_until_it_ends():
    pace = ChannelPace(paused_until=NOW + seconds(30), pause_reason="retry_after", throttles=1)
    assert grant(pace, room=5, interval=None, now=NOW, probe_seconds=20) == Grant(
        0, ready_at=NOW + seconds(30)
    )


def test_an_open_breaker_lets_one_probe_through_and_pauses_behind_it():
    pace = ChannelPace(stalls=3, paused_until=NOW - seconds(1), pause_reason="breaker")
    given = grant(pace, room=8, interval=None, now=NOW, probe_seconds=20)
    assert given.take == 1 and given.probe
    assert given.pace == ChannelPace(
        stalls=3, paused_until=NOW + seconds(20), pause_reason="breaker"
    )


@pytest.mark.parametrize(
    ("before", "outcomes", "after"),
    [
        # two stalls: counted, no breaker yet
        (IDLE, ["timeout", "connection_error"], ChannelPace(stalls=2)),
        # the third in a row opens it: paused for the cooldown
        (
            ChannelPace(stalls=2),
            ["timeout"],
            ChannelPace(stalls=3, paused_until="cooldown", pause_reason="breaker"),
        ),
        # an answer of any status resets the count
        (ChannelPace(stalls=2), [500], IDLE),
        # a probe that gets through closes the breaker
        (ChannelPace(stalls=5, paused_until="later", pause_reason="breaker"), [200], IDLE),
        # a probe that stalls opens it again for the cooldown
        (
            ChannelPace(stalls=5, paused_until="later", pause_reason="breaker"),
            ["timeout"],
            ChannelPace(stalls=6, paused_until="cooldown", pause_reason="breaker"),
        ),
        # errors that are not stalls change nothing
        (ChannelPace(stalls=1), ["tls_error"], ChannelPace(stalls=1)),
    ],
)
def test_breaker(before, outcomes, after):
    later = NOW + seconds(15)
    cooldown = NOW + seconds(pacing.BREAKER_COOLDOWN_SECONDS)

    def instant(value):
        return {"later": later, "cooldown": cooldown}.get(value, value)

    before = ChannelPace(
        before.rate_next_at,
        instant(before.paused_until),
        before.pause_reason,
        before.stalls,
        before.throttles,
    )
    found = after_attempts(
        before,
        [
            Outcome(o, None)
            if isinstance(o, str)
            else Outcome("http_status" if o >= 300 else None, o)
            for o in outcomes
        ],
        NOW,
    )
    expected = ChannelPace(
        after.rate_next_at,
        instant(after.paused_until),
        after.pause_reason,
        after.stalls,
        after.throttles,
    )
    assert found == expected


def test_429_with_retry_after_pauses_the_channel_until_then():
    found = after_attempts(IDLE, [Outcome("http_status", 429, retry_after=30)], NOW)
    assert found == ChannelPace(
        paused_until=NOW + seconds(30), pause_reason="retry_after", throttles=1
    )


def test_429_without_retry_after_backs_off_doubling_with_each_in_a_row():
    first = after_attempts(IDLE, [Outcome("http_status", 429)], NOW)
    second = after_attempts(first, [Outcome("http_status", 429)], NOW)
    assert first.paused_until == NOW + seconds(5) and first.throttles == 1
    assert second.paused_until == NOW + seconds(10) and second.throttles == 2
    many = ChannelPace(throttles=40)
    assert after_attempts(many, [Outcome("http_status", 429)], NOW).paused_until == NOW + seconds(
        pacing.THROTTLE_MAX_PAUSE_SECONDS
    )


def test_an_answer_after_429s_resets_the_streak_but_keeps_the_pause():
    pace = ChannelPace(paused_until=NOW + seconds(20), pause_reason="retry_after", throttles=2)
    assert after_attempts(pace, [Outcome(None, 200)], NOW) == ChannelPace(
        paused_until=NOW + seconds(20), pause_reason="retry_after"
    )


def test_retry_after_is_capped_at_a_day():
    found = after_attempts(IDLE, [Outcome("http_status", 429, retry_after=10**9)], NOW)
    assert found.paused_until == NOW + seconds(86400)


@pytest.mark.parametrize(
    ("pace", "outcomes", "needed"),
    [
        (IDLE, [Outcome(None, 200)], False),
        (IDLE, [Outcome("http_status", 500)], False),
        (IDLE, [Outcome("timeout", None)], True),
        (IDLE, [Outcome("http_status", 429)], True),
        (ChannelPace(stalls=1), [Outcome(None, 200)], True),
        (ChannelPace(rate_next_at=NOW), [Outcome(None, 200)], False),
    ],
)
def test_settling_touches_the_stored_state_only_when_it_may_change(pace, outcomes, needed):
    assert pacing.needs_settling(pace, outcomes) is needed


@pytest.mark.parametrize(
    ("maximum", "workers", "shares"),
    [
        (10, 1, [10]),
        (10, 2, [5, 5]),
        (10, 3, [4, 3, 3]),
        (1, 2, [1, 0]),
        (2, 4, [1, 1, 0, 0]),
        (10, 0, [10]),
    ],
)
def test_max_concurrency_is_shared_out_exactly_among_live_workers(maximum, workers, shares):
    found = [pacing.concurrency_share(maximum, rank, workers) for rank in range(max(workers, 1))]
    assert found == shares and sum(found) == maximum
