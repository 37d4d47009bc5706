"""The bad day: services killed mid-stream, the broker restarted, the database away, an instance lost.

Every test streams thousands of feedback into a platform of real processes, hurts it in the middle,
lets it heal, and then insists on exact counts: every feedback counted once in the scores, exactly one
alert and one action for each branch that went bad, none for the others.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.chaos import BAD, SERVICES, ChaosPlatform, feedback_for, set_up_organisation, settle, stream

pytestmark = pytest.mark.chaos

BRANCHES = 40
COUNT = 2000


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[ChaosPlatform]:
    platform = ChaosPlatform(tmp_path)
    try:
        platform.start_servers()
        for service in SERVICES:
            platform.start(service)
        yield platform
    finally:
        platform.stop_all()


def assert_exact(counts: dict[str, Any], accepted: int, units: list[str]) -> None:
    """Every feedback counted once; one alert and one action per bad branch, none elsewhere."""
    assert counts["sample_size"] == accepted
    assert dict(counts["alerts"]) == {unit: 1 for unit in units[:BAD]}
    assert sorted(counts["actions"].values()) == [1] * BAD


def test_each_consumer_service_killed_in_turn__every_feedback_counted_once_nothing_duplicated(platform):
    units = set_up_organisation(platform, BRANCHES, BAD)

    def kill_and_restart(service: str) -> Callable[[], None]:
        def hurt() -> None:
            platform.kill(f"{service}-0")
            time.sleep(1)
            platform.start(service)

        return hurt

    faults = {3: kill_and_restart("scoring"), 8: kill_and_restart("alerts"), 13: kill_and_restart("improvement")}
    accepted = stream(platform, feedback_for(units, BAD, COUNT), faults)

    assert accepted == COUNT
    assert_exact(settle(platform, accepted), accepted, units)


def test_broker_restarted_mid_stream__the_outboxes_publish_again_and_the_state_is_exact(platform):
    units = set_up_organisation(platform, BRANCHES, BAD)

    accepted = stream(platform, feedback_for(units, BAD, COUNT), {10: platform.restart_broker})

    assert_exact(settle(platform, accepted), accepted, units)


def test_database_away_for_a_while__not_ready_503_then_nothing_lost(platform):
    units = set_up_organisation(platform, BRANCHES, BAD)
    database = platform.servers["database"]
    seen_while_away: dict[str, Any] = {}

    def take_the_database_away() -> None:
        os.kill(database.process.pid, signal.SIGSTOP)
        try:
            time.sleep(3)
            seen_while_away["ready"] = httpx.get(platform.url("feedback") + "/readyz", timeout=10).status_code
        finally:
            os.kill(database.process.pid, signal.SIGCONT)

    accepted = stream(platform, feedback_for(units, BAD, COUNT), {10: take_the_database_away})

    assert seen_while_away["ready"] == 503
    assert accepted == COUNT
    assert_exact(settle(platform, accepted), accepted, units)


def test_two_instances_of_each_consumer_one_killed_during_the_stream__still_exact(platform):
    for service in ("scoring", "alerts", "improvement"):
        platform.start(service, instance=1)
    units = set_up_organisation(platform, BRANCHES, BAD)

    def kill_second_instances() -> None:
        for service in ("scoring", "alerts", "improvement"):
            platform.kill(f"{service}-1")

    accepted = stream(platform, feedback_for(units, BAD, COUNT), {8: kill_second_instances})

    assert_exact(settle(platform, accepted), accepted, units)
