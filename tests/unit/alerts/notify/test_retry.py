"""The retry schedule: exponential backoff with jitter, a cap, and a last attempt."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from services.alerts.notify import MAX_ATTEMPTS, next_retry_delay


@pytest.mark.parametrize(("attempt", "step"), [(1, 5), (2, 10), (3, 20), (4, 40), (8, 640), (9, 1280)])
def test_next_retry_delay__doubles_from_five_seconds_with_jitter_between_half_and_all(attempt, step):
    rng = random.Random(attempt)
    delays = [delay for _ in range(200) if (delay := next_retry_delay(attempt, rng=rng)) is not None]
    assert len(delays) == 200
    assert all(timedelta(seconds=step / 2) <= delay <= timedelta(seconds=step) for delay in delays)
    assert len(set(delays)) > 1  # jittered, so deliveries that failed together spread out


def test_next_retry_delay__never_waits_more_than_an_hour(monkeypatch):
    monkeypatch.setattr("services.alerts.notify.delivery.MAX_ATTEMPTS", 30)
    delay = next_retry_delay(25, rng=random.Random(1))
    assert delay is not None and timedelta(minutes=30) <= delay <= timedelta(hours=1)


def test_next_retry_delay__gives_up_after_the_last_attempt():
    assert next_retry_delay(MAX_ATTEMPTS - 1) is not None
    assert next_retry_delay(MAX_ATTEMPTS) is None


def test_next_retry_delay__counts_attempts_from_one():
    with pytest.raises(ValueError):
        next_retry_delay(0)


def test_next_retry_delay__waits_at_least_what_the_receiver_asked():
    delay = next_retry_delay(1, retry_after_seconds=120, rng=random.Random(1))
    assert delay == timedelta(seconds=120)


def test_next_retry_delay__caps_a_receivers_request_at_an_hour():
    assert next_retry_delay(1, retry_after_seconds=86400) == timedelta(hours=1)
