"""Retry policies as tables: the exact waits of SPEC §4, Retry-After, and the attempt limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.delivery.retry import (
    RetryDecision,
    policy_from_config,
    validate_retry_config,
)

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
DAY = 86400


@pytest.mark.parametrize(
    ("attempts_made", "delay"),
    [
        (1, 12),
        (2, 2 * 60 + 28),
        (3, 30 * 60 + 8),
        (4, 6 * 3600 + 7 * 60 + 6),
        (5, DAY),
        (6, DAY),
        (9, DAY),
        (10, None),
        (11, None),
    ],
)
def test_standard_policy_waits(attempts_made, delay):
    policy = policy_from_config({"policy": "standard"})
    assert policy.max_attempts == 10
    assert policy.next_delay(attempts_made) == delay


def test_no_config_means_standard():
    assert policy_from_config(None).delays() == policy_from_config({"policy": "standard"}).delays()


def test_standard_policy_lists_nine_waits():
    assert policy_from_config({"policy": "standard"}).delays() == [
        12,
        148,
        1808,
        22026,
        DAY,
        DAY,
        DAY,
        DAY,
        DAY,
    ]


@pytest.mark.parametrize(
    ("attempts_made", "delay"),
    [(1, 6), (2, 21), (3, 86), (4, 261), (10, 10005), (14, 38421), (15, None)],
)
def test_exponential_policy_waits(attempts_made, delay):
    policy = policy_from_config({"policy": "exponential"})
    assert policy.max_attempts == 15
    assert policy.next_delay(attempts_made) == delay


def test_none_policy_never_retries():
    policy = policy_from_config({"policy": "none"})
    assert policy.max_attempts == 1
    assert policy.next_delay(1) is None
    assert policy.decide(attempts_made=1, now=NOW).give_up
    assert policy.delays() == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"schedule": [1, 5, 30], "max_attempts": 6}, [1, 5, 30, 30, 30]),
        ({"schedule": [2], "max_attempts": 3}, [2, 2]),
        ({"schedule": [10, 20, 30, 40], "max_attempts": 3}, [10, 20]),
        ({"schedule": [1, 2]}, [1, 2]),  # max_attempts defaults to len + 1
        ({"policy": "custom", "schedule": [1.5], "max_attempts": 2}, [1.5]),
        ({"schedule": [3], "max_attempts": 1}, []),
    ],
)
def test_custom_schedule_repeats_its_last_wait(config, expected):
    policy = policy_from_config(config)
    assert policy.delays() == expected
    assert policy.next_delay(policy.max_attempts) is None


def test_decide_returns_a_time():
    policy = policy_from_config({"schedule": [30], "max_attempts": 3})
    assert policy.decide(attempts_made=1, now=NOW) == RetryDecision(NOW + timedelta(seconds=30))
    decision = policy.decide(attempts_made=3, now=NOW)
    assert decision.give_up and decision.retry_at is None


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [
        (None, 30),
        (120, 120),  # the receiver asks for longer: wait that long
        (5, 30),  # shorter than the policy: the policy's wait stands
        (0, 30),
        (-10, 30),
        (3 * DAY, DAY),  # capped at 24 h
        (float("inf"), 30),
        (float("nan"), 30),
    ],
)
def test_retry_after_raises_the_wait_up_to_a_day(retry_after, delay):
    policy = policy_from_config({"schedule": [30], "max_attempts": 5})
    decision = policy.decide(attempts_made=2, now=NOW, retry_after=retry_after)
    assert decision.retry_at == NOW + timedelta(seconds=delay)


def test_retry_after_never_grants_an_extra_attempt():
    policy = policy_from_config({"schedule": [30], "max_attempts": 2})
    assert policy.decide(attempts_made=2, now=NOW, retry_after=60).give_up


def test_attempts_made_starts_at_one():
    with pytest.raises(ValueError):
        policy_from_config(None).next_delay(0)


@pytest.mark.parametrize(
    "config",
    [
        None,
        {"policy": "standard"},
        {"policy": "exponential"},
        {"policy": "none"},
        {"schedule": [1]},
        {"schedule": [1, 60, 3600], "max_attempts": 100},
        {"policy": "custom", "schedule": [604800], "max_attempts": 2},
    ],
)
def test_valid_configs(config):
    assert validate_retry_config(config) == []


@pytest.mark.parametrize(
    ("config", "problem_path"),
    [
        ("standard", "retry"),
        ([1, 2], "retry"),
        ({}, "retry.policy"),
        ({"policy": "linear"}, "retry.policy"),
        ({"policy": "standard", "max_attempts": 3}, "retry.max_attempts"),
        ({"policy": "none", "schedule": [1]}, "retry.schedule"),
        ({"policy": "custom"}, "retry.schedule"),
        ({"max_attempts": 3}, "retry.schedule"),
        ({"schedule": []}, "retry.schedule"),
        ({"schedule": "1,2"}, "retry.schedule"),
        ({"schedule": [1, 0.5]}, "retry.schedule[1]"),
        ({"schedule": [1, "5"]}, "retry.schedule[1]"),
        ({"schedule": [True]}, "retry.schedule[0]"),
        ({"schedule": [8 * DAY]}, "retry.schedule[0]"),
        ({"schedule": [1], "max_attempts": 0}, "retry.max_attempts"),
        ({"schedule": [1], "max_attempts": 101}, "retry.max_attempts"),
        ({"schedule": [1], "max_attempts": 2.5}, "retry.max_attempts"),
        ({"schedule": [1] * 100}, "retry.schedule"),
        ({"policy": "standard", "every": 5}, "retry.every"),
    ],
)
def test_invalid_configs_name_the_problem(config, problem_path):
    problems = validate_retry_config(config)
    assert problem_path in [path for path, _ in problems]
    assert all(message for _, message in problems)
    with pytest.raises(ValueError, match=problem_path.replace("[", r"\[").replace("]", r"\]")):
        policy_from_config(config)


def test_validation_uses_the_given_path():
    assert validate_retry_config({"schedule": [0]}, path="channel.retry") == [
        ("channel.retry.schedule[0]", "must be a number of seconds from 1 to 604800 (7 days)")
    ]
