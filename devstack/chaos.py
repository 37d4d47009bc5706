"""A platform of real processes for fault injection (chaos tests, bench): its own broker, database, services.

Each service runs as `qualityloop serve <service>` in its own process (so it can be SIGKILLed, as the
kernel's out-of-memory killer would), with the settings `make run` gives it, on free ports; a second
instance of a consumer service joins the same consumer group.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devstack.processes import Child, free_port, start_broker, start_database, wait_until_ready
from shared.auth import ensure_signing_key, issue_token

SERVICES = ("feedback", "scoring", "alerts", "improvement")
ORG = "chaos"
REGION = "r"
# Unhappy branches of the organisation the faults are tried on: each must end with one alert and one action.
BAD = 4
BATCH = 100


@dataclass
class ChaosPlatform:
    """The broker, the database and service instances, and how to hurt and heal them."""

    work: Path
    broker_port: int = field(default_factory=free_port)
    database_port: int = field(default_factory=free_port)
    children: dict[str, Child] = field(default_factory=dict)
    servers: dict[str, Child] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.private_key, self.public_key = ensure_signing_key(self.work / "keys")
        self.group = f"chaos-{secrets.token_hex(4)}"
        self.token = issue_token(self.private_key.read_bytes(), org=ORG, roles=["admin"])

    @property
    def auth(self) -> dict[str, str]:
        """Headers of an admin of the chaos organisation."""
        return {"Authorization": f"Bearer {self.token}"}

    def start_servers(self) -> None:
        """The broker and the database."""
        self.servers["broker"] = start_broker(self.broker_port, self.work / "broker.log")
        self.servers["database"] = start_database(self.database_port, self.work / "db", self.work / "database.log")

    def restart_broker(self) -> None:
        """Stop the broker and start a new one on the same port: it has forgotten every topic and offset."""
        self.servers["broker"].stop()
        self.servers["broker"] = start_broker(self.broker_port, self.work / "broker.log")

    def environment(self, service: str, port: int) -> dict[str, str]:
        """The settings `make run` would give the service."""
        return {
            **os.environ,
            "QL_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.broker_port}",
            "QL_MONGO_URI": f"mongodb://127.0.0.1:{self.database_port}/?directConnection=true",
            "QL_AUTH_PUBLIC_KEY_FILE": str(self.public_key),
            "QL_FEEDBACK_PSEUDONYM_KEY": "chaos-key",
            "QL_CONSUMER_GROUP_PREFIX": self.group,
            "QL_RELAY_SWEEP_SECONDS": "1",
            f"QL_{service.upper()}_PORT": str(port),
            f"QL_{service.upper()}_DATABASE": f"chaos_{service}",
        }

    def start(self, service: str, instance: int = 0) -> Child:
        """One instance of a service, ready; a second instance shares the first's database and group."""
        name = f"{service}-{instance}"
        port = free_port()
        log = (self.work / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack.cli", "serve", service],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.environment(service, port),
            start_new_session=True,
        )
        child = Child(name, process, port)
        self.children[name] = child
        wait_until_ready(child)
        return child

    def kill(self, name: str) -> None:
        """SIGKILL an instance: no shutdown, no flush, as the out-of-memory killer does."""
        child = self.children.pop(name)
        os.kill(child.process.pid, signal.SIGKILL)
        child.process.wait()

    def url(self, service: str) -> str:
        """The first live instance of a service."""
        child = next(c for n, c in self.children.items() if n.startswith(f"{service}-"))
        return f"http://127.0.0.1:{child.port}"

    def api(self, service: str, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """A REST call to a service; raises on an error answer."""
        response = httpx.request(
            method, self.url(service) + path, json=body, params=params or None, headers=self.auth, timeout=30
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def stop_all(self) -> None:
        """Every instance, then the servers."""
        for child in reversed(list(self.children.values())):
            child.stop()
        for child in reversed(list(self.servers.values())):
            child.stop()


def set_up_organisation(platform: ChaosPlatform, branches: int, bad: int) -> list[str]:
    """A region of branches, a CSAT rule grouping per branch, an owner; the branch ids (the first ``bad`` are bad)."""
    units = [f"{REGION}-{i:03d}" for i in range(branches)]
    rows = [{"id": REGION, "name": "region", "kind": "region"}]
    rows += [{"id": u, "name": u, "kind": "branch", "parent_id": REGION} for u in units]
    platform.api("feedback", "POST", "/api/v1/units/import", {"units": rows})
    rule = {"name": "floor", "indicator": "csat", "threshold": 60, "min_samples": 5, "level": "red"}
    platform.api("alerts", "POST", "/api/v1/rules", {**rule, "unit_kinds": ["branch"], "group_depth": 2})
    platform.api("improvement", "POST", "/api/v1/responsibilities", {"scope": REGION, "responsible": "owner"})
    return units


def feedback_for(units: list[str], bad: int, count: int) -> list[dict[str, Any]]:
    """``count`` feedback spread over the branches: unhappy at the first ``bad`` ones, happy elsewhere."""
    return [
        {"unit_id": units[i % len(units)], "channel": "kiosk", "ratings": {"csat": 1 if i % len(units) < bad else 5}}
        for i in range(count)
    ]


def final_counts(platform: ChaosPlatform) -> dict[str, Any]:
    """What the platform ended with: the region's sample, alerts and actions per unit."""
    score = platform.api("scoring", "GET", f"/api/v1/scores/{REGION}", period="all")
    alerts = _all(platform, "alerts", "/api/v1/alerts")
    actions = _all(platform, "improvement", "/api/v1/actions")
    return {
        "sample_size": score["sample_size"],
        "alerts": Counter(a["unit_id"] for a in alerts),
        "actions": Counter(a["alert_id"] for a in actions if a.get("alert_id")),
    }


def _all(platform: ChaosPlatform, service: str, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = platform.api(service, "GET", path, **params)
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def stream(platform: ChaosPlatform, bodies: list[dict[str, Any]], faults: dict[int, Callable[[], None]]) -> int:
    """POST the feedback in batches; run each fault when the stream reaches its batch; how many were accepted."""
    accepted = 0
    for index, offset in enumerate(range(0, len(bodies), BATCH)):
        if index in faults:
            faults[index]()
        accepted += _post_batch(platform, bodies[offset : offset + BATCH])
    return accepted


def _post_batch(platform: ChaosPlatform, items: list[dict[str, Any]], timeout: float = 120) -> int:
    """A batch, retried while the platform says to come back later (503 with Retry-After)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.post(
                platform.url("feedback") + "/api/v1/feedback/batch",
                json={"items": items},
                headers=platform.auth,
                timeout=30,
            )
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code < 300:
            return int(response.json()["accepted"])
        if time.monotonic() > deadline:
            raise AssertionError(f"the batch was never taken: {response and response.text}")
        time.sleep(1)


def settle(platform: ChaosPlatform, accepted: int, timeout: float = 180) -> dict[str, Any]:
    """Wait until the scores count every accepted feedback and each bad branch has its alert and action."""
    deadline = time.monotonic() + timeout
    counts: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            counts = final_counts(platform)
        except httpx.HTTPError:
            time.sleep(1)
            continue
        if counts["sample_size"] >= accepted and len(counts["alerts"]) >= BAD and len(counts["actions"]) >= BAD:
            time.sleep(3)  # anything duplicated would show up now
            return final_counts(platform)
        time.sleep(1)
    raise AssertionError(f"not settled after {timeout} s: {counts}")
