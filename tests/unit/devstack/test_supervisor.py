"""The supervisor on real child processes: a dead part is restarted after a backoff, one that keeps dying stops all."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from devstack.processes import Child
from devstack.supervisor import GIVE_UP_AFTER, GaveUp, Part, Supervisor


def _sleeper(name: str) -> Child:
    return Child(name, subprocess.Popen(["sleep", "60"]), 0)


def _crasher(name: str) -> Child:
    process = subprocess.Popen(["false"])
    process.wait()
    return Child(name, process, 0)


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    lines: list[str] = []
    supervisor = Supervisor(log=lines.append)
    yield supervisor
    supervisor.stop_all()


def _kill(part: Part) -> None:
    assert part.child is not None
    part.child.process.kill()
    part.child.process.wait()


def test_a_killed_part__is_down_then_restarted_after_its_backoff(supervisor: Supervisor) -> None:
    supervisor.start(Part("scoring", lambda: _sleeper("scoring")))
    supervisor.start(Part("alerts", lambda: _sleeper("alerts")))
    scoring = supervisor.parts[0]
    first_pid = scoring.child.process.pid

    _kill(scoring)
    supervisor.check(now=1000.0)
    code, body = supervisor.readiness()
    assert (code, body["down"]) == (503, ["scoring"])
    assert body["parts"]["alerts"]["state"] == "ready"

    supervisor.check(now=1000.5)  # the first backoff is one second
    assert scoring.state == "down"
    supervisor.check(now=1001.0)

    assert scoring.state == "ready" and scoring.restarts == 1
    assert scoring.child.process.pid != first_pid and scoring.child.process.poll() is None
    assert supervisor.readiness()[0] == 200


def test_a_part_that_keeps_dying__makes_the_supervisor_give_up(supervisor: Supervisor) -> None:
    supervisor.start(Part("feedback", lambda: _sleeper("feedback")))
    part = supervisor.parts[0]
    part.start = lambda: _crasher("feedback")
    _kill(part)

    now = 0.0
    with pytest.raises(GaveUp, match="feedback exited 5 times"):
        for _ in range(GIVE_UP_AFTER * 2):
            supervisor.check(now=now)
            now += 20.0


def test_deaths_spread_over_more_than_the_window__never_give_up(supervisor: Supervisor) -> None:
    supervisor.start(Part("broker", lambda: _sleeper("broker")))
    part = supervisor.parts[0]
    for round_ in range(GIVE_UP_AFTER + 2):
        _kill(part)
        now = round_ * 400.0
        supervisor.check(now=now)
        supervisor.check(now=now + 60)
    assert part.state == "ready" and part.restarts == GIVE_UP_AFTER + 2
