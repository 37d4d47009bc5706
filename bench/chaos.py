"""Chaos rows: for each fault, how long the platform took to get back to no lag, and what it ended with.

Each fault gets a platform of its own (devstack/chaos.py: its own broker, database and service
processes), a stream of feedback and the fault in the middle of it. "Back to no lag" is the moment every
accepted feedback is counted in the scores and every unhappy branch has its alert and its action,
measured from the fault. The counts say whether the end state was exact.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.measure import log
from bench.report import Figure, Report
from devstack.chaos import BAD, SERVICES, ChaosPlatform, feedback_for, set_up_organisation, settle, stream

BRANCHES = 40


def _kill_and_restart(platform: ChaosPlatform, service: str) -> Callable[[], None]:
    def fault() -> None:
        platform.kill(f"{service}-0")
        platform.start(service)

    return fault


def _database_away(platform: ChaosPlatform, seconds: float = 3) -> Callable[[], None]:
    def fault() -> None:
        pid = platform.servers["database"].process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)

    return fault


FAULTS: dict[str, Callable[[ChaosPlatform], Callable[[], None]]] = {
    "scoring killed": lambda p: _kill_and_restart(p, "scoring"),
    "alerts killed": lambda p: _kill_and_restart(p, "alerts"),
    "improvement killed": lambda p: _kill_and_restart(p, "improvement"),
    "broker restarted": lambda p: p.restart_broker,
    "database away 3 s": _database_away,
}


@dataclass(frozen=True)
class Outcome:
    """How one fault ended: seconds from the fault to no lag, and the end state's counts."""

    seconds: float
    accepted: int
    counted: int
    alerts: int
    actions: int
    exact: bool


def run_fault(name: str, count: int) -> Outcome:
    """One fault on a fresh platform: seconds from the fault to no lag, and the end state."""
    with tempfile.TemporaryDirectory(prefix="qualityloop-chaos-") as work:
        platform = ChaosPlatform(Path(work))
        try:
            platform.start_servers()
            for service in SERVICES:
                platform.start(service)
            units = set_up_organisation(platform, BRANCHES, BAD)
            injected: list[float] = []
            fault = FAULTS[name](platform)

            def timed() -> None:
                injected.append(time.monotonic())
                fault()

            accepted = stream(platform, feedback_for(units, BAD, count), {count // 200: timed})
            counts = settle(platform, accepted)
            recovered = time.monotonic() - injected[0]
        finally:
            platform.stop_all()
    exact = (
        counts["sample_size"] == accepted
        and dict(counts["alerts"]) == {u: 1 for u in units[:BAD]}
        and sorted(counts["actions"].values()) == [1] * BAD
    )
    return Outcome(
        seconds=recovered,
        accepted=accepted,
        counted=counts["sample_size"],
        alerts=sum(counts["alerts"].values()),
        actions=sum(counts["actions"].values()),
        exact=exact,
    )


async def measure_chaos(report: Report, *, count: int) -> None:
    """Every fault in turn, each on its own platform; a row each."""
    results: dict[str, dict[str, object]] = {}
    for name in FAULTS:
        log(f"chaos: {name} in the middle of {count:,} feedback")
        try:
            result = await asyncio.to_thread(run_fault, name, count)
        except (AssertionError, RuntimeError, TimeoutError) as error:
            report.add(Figure(f"chaos.{name}", f"chaos: {name}: back to no lag after", None, "s", note=str(error)))
            continue
        results[name] = asdict(result)
        note = (
            f"{result.counted}/{result.accepted} feedback counted, {result.alerts} alerts, "
            f"{result.actions} actions for {BAD} bad branches: {'exact' if result.exact else 'NOT exact'}"
        )
        report.add(Figure(f"chaos.{name}", f"chaos: {name}: back to no lag after", result.seconds, "s", note=note))
    report.details["chaos"] = results
